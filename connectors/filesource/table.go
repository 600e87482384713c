package filesource

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/xuri/excelize/v2"

	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// table is one file read: the output column of each sheet column ("" where a
// column has no header), and the data rows.
type table struct {
	columns []string
	rows    []dataRow
}

type dataRow struct {
	num   int   // 1-based row (or line) in the file, for messages
	cells []any // per column: string, or time.Time for a date
}

// compact is a header's matching key: folded (no case, no diacritics), letters
// and digits only, so "Họ tên", "HỌ TÊN" and "HoTen" all give "hoten".
func compact(s string) string {
	f := transform.Fold(s)
	var b strings.Builder
	for _, r := range f {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// reader turns raw cells into a table with the source's column rules.
type reader struct {
	o     *Options
	zone  *time.Location
	names map[string]string // compact header -> column
	dates map[string]bool   // columns whose numbers are serial dates
}

func newReader(o *Options, zone *time.Location) *reader {
	r := &reader{o: o, zone: zone, names: map[string]string{}, dates: map[string]bool{}}
	for _, c := range o.Columns {
		r.names[compact(c)] = c
	}
	for k, as := range o.Aliases {
		for _, c := range o.Columns {
			if strings.EqualFold(c, k) {
				for _, a := range as {
					r.names[compact(a)] = c
				}
			}
		}
	}
	for _, d := range o.Dates {
		for _, c := range o.Columns {
			if strings.EqualFold(c, d) {
				r.dates[c] = true
			}
		}
	}
	return r
}

// header names the columns of a header row; listed columns must all be there.
func (r *reader) header(cells []string, where string) ([]string, error) {
	out := make([]string, len(cells))
	found := map[string]int{}
	taken := map[string]bool{}
	for i, h := range cells {
		h = transform.CollapseSpaces(transform.NFC(h))
		if h == "" {
			continue
		}
		name, listed := r.names[compact(h)]
		if listed {
			if j, dup := found[name]; dup {
				return nil, fmt.Errorf("%s: headers %q (column %d) and %q (column %d) both match %s", where, cells[j], j+1, h, i+1, name)
			}
			found[name] = i
		} else {
			name = h
			for n := 2; taken[name]; n++ {
				name = fmt.Sprintf("%s (%d)", h, n)
			}
		}
		taken[name] = true
		out[i] = name
	}
	var missing []string
	for _, c := range r.o.Columns {
		if _, ok := found[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: no header matches %s (headers: %s)", where, strings.Join(missing, ", "), quoteList(cells))
	}
	return out, nil
}

func quoteList(cells []string) string {
	var q []string
	for _, c := range cells {
		if c = strings.TrimSpace(c); c != "" {
			if r := []rune(c); len(r) > 40 {
				c = string(r[:40]) + "…"
			}
			q = append(q, strconv.Quote(c))
		}
		if len(q) == 20 {
			q = append(q, "…")
			break
		}
	}
	return strings.Join(q, ", ")
}

// filled counts the non-blank cells of a row.
func filled(cells []string) int {
	n := 0
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			n++
		}
	}
	return n
}

// serial turns an Excel serial date into the instant it names in the zone.
func (r *reader) serial(v string, date1904 bool) (time.Time, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	t, err := excelize.ExcelDateToTime(f, date1904)
	if err != nil {
		return time.Time{}, false
	}
	t = t.Round(time.Millisecond)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), r.zone).UTC(), true
}

// readCSV reads a CSV file.
func (r *reader) readCSV(data []byte, name string) (*table, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = []rune(r.o.Delimiter)[0]
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	t := &table{}
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if t.columns == nil {
			if r.o.HeaderRow > 0 && n < r.o.HeaderRow || r.o.HeaderRow == 0 && filled(rec) < 2 {
				continue
			}
			if t.columns, err = r.header(rec, fmt.Sprintf("%s line %d", name, line)); err != nil {
				return nil, err
			}
			continue
		}
		if filled(rec) == 0 {
			continue
		}
		row := dataRow{num: line, cells: make([]any, len(t.columns))}
		for i, c := range t.columns {
			v := ""
			if i < len(rec) {
				v = rec[i]
			}
			row.cells[i] = v
			if r.dates[c] {
				if at, ok := r.serial(v, false); ok {
					row.cells[i] = at
				}
			}
		}
		t.rows = append(t.rows, row)
	}
	if t.columns == nil {
		return nil, fmt.Errorf("%s: no header row", name)
	}
	return t, nil
}

// readXLSX reads one worksheet of an .xlsx file.
func (r *reader) readXLSX(data []byte, name string) (*table, error) {
	limit := r.o.MaxBytes
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: limit * 8, UnzipXMLSizeLimit: limit})
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable .xlsx file (still being written?): %w", name, err)
	}
	defer f.Close()
	sheet := r.o.Sheet
	if sheet == "" {
		list := f.GetSheetList()
		if len(list) == 0 {
			return nil, fmt.Errorf("%s: no worksheet", name)
		}
		sheet = list[0]
	} else if idx, err := f.GetSheetIndex(sheet); err != nil || idx < 0 {
		return nil, fmt.Errorf("%s: no sheet %q (sheets: %s)", name, sheet, quoteList(f.GetSheetList()))
	}
	cells, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, fmt.Errorf("%s sheet %q: %w", name, sheet, err)
	}
	titles, err := titleRows(f, sheet)
	if err != nil {
		return nil, fmt.Errorf("%s sheet %q: %w", name, sheet, err)
	}
	date1904 := false
	if p, err := f.GetWorkbookProps(); err == nil && p.Date1904 != nil {
		date1904 = *p.Date1904
	}
	styles := styleDates{f: f}
	t := &table{}
	for i, rec := range cells {
		num := i + 1
		if t.columns == nil {
			if r.o.HeaderRow > 0 && num < r.o.HeaderRow || r.o.HeaderRow == 0 && (filled(rec) < 2 || titles.only(num, rec)) {
				continue
			}
			if t.columns, err = r.header(rec, fmt.Sprintf("%s sheet %q row %d", name, sheet, num)); err != nil {
				return nil, err
			}
			continue
		}
		if filled(rec) == 0 || titles.only(num, rec) {
			continue
		}
		row := dataRow{num: num, cells: make([]any, len(t.columns))}
		for c, col := range t.columns {
			v := ""
			if c < len(rec) {
				v = rec[c]
			}
			row.cells[c] = v
			if col == "" || v == "" {
				continue
			}
			if r.dates[col] || styles.isDate(sheet, c+1, num) {
				if at, ok := r.serial(v, date1904); ok {
					row.cells[c] = at
				}
			}
		}
		t.rows = append(t.rows, row)
	}
	if t.columns == nil {
		return nil, fmt.Errorf("%s sheet %q: no header row", name, sheet)
	}
	return t, nil
}

// merged knows, per row, the column spans of merges across two or more columns.
type merged map[int][][2]int

// titleRows finds the merges that span columns: a title ("KẾT QUẢ THI TỐT NGHIỆP
// THPT NĂM 2026") or a section row ("Hội đồng thi 49") written across the table.
func titleRows(f *excelize.File, sheet string) (merged, error) {
	list, err := f.GetMergeCells(sheet, true)
	if err != nil {
		return nil, err
	}
	m := merged{}
	for _, mc := range list {
		c1, r1, err1 := excelize.CellNameToCoordinates(mc.GetStartAxis())
		c2, r2, err2 := excelize.CellNameToCoordinates(mc.GetEndAxis())
		if err := errors.Join(err1, err2); err != nil || c2 <= c1 {
			continue
		}
		for row := r1; row <= r2; row++ {
			m[row] = append(m[row], [2]int{c1, c2})
		}
	}
	return m, nil
}

// only reports whether every filled cell of the row lies in a merge across columns.
func (m merged) only(row int, cells []string) bool {
	spans := m[row]
	if len(spans) == 0 {
		return false
	}
	for i, c := range cells {
		if strings.TrimSpace(c) == "" {
			continue
		}
		in := false
		for _, s := range spans {
			if i+1 >= s[0] && i+1 <= s[1] {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// styleDates tells whether a cell is formatted as a date, caching per style.
type styleDates struct {
	f     *excelize.File
	cache map[int]bool
}

func (s *styleDates) isDate(sheet string, col, row int) bool {
	cell, err := excelize.CoordinatesToCellName(col, row)
	if err != nil {
		return false
	}
	idx, err := s.f.GetCellStyle(sheet, cell)
	if err != nil || idx == 0 {
		return false
	}
	if s.cache == nil {
		s.cache = map[int]bool{}
	}
	if d, ok := s.cache[idx]; ok {
		return d
	}
	d := false
	if st, err := s.f.GetStyle(idx); err == nil {
		d = dateFormat(st.NumFmt, st.CustomNumFmt)
	}
	s.cache[idx] = d
	return d
}

// dateFormat: the built-in date formats, or a custom format with a day or year.
func dateFormat(id int, custom *string) bool {
	if custom != nil && *custom != "" {
		code := strings.ToLower(stripQuoted(*custom))
		return strings.ContainsAny(code, "dy")
	}
	switch {
	case id >= 14 && id <= 17, id == 22, id >= 27 && id <= 36, id >= 50 && id <= 58:
		return true
	}
	return false
}

// stripQuoted drops "text", [colour] and \x parts of a number format.
func stripQuoted(s string) string {
	var b strings.Builder
	inQuote, inBracket := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote:
			inQuote = c != '"'
		case inBracket:
			inBracket = c != ']'
		case c == '"':
			inQuote = true
		case c == '[':
			inBracket = true
		case c == '\\':
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
