package transform

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"
)

// Table is a lookup table for the lookup step: agency codes to names, commune
// names to codes, status codes to labels.
type Table struct {
	m map[string]string
	// Default, when set, is the value for keys the table does not hold.
	Default *string
	// Fold makes keys match ignoring case, diacritics and extra spaces (see
	// Fold), so "Thị trấn Cần Giuộc" finds "thi tran can giuoc". It is fixed
	// when the table is built; the keys are stored folded.
	Fold bool
}

// TableFromMap builds a table from m. Keys are trimmed and, with fold, folded;
// values are normalised to NFC. When two keys of m become the same key, the one
// that sorts first wins (LoadCSV reports that case as an error instead).
func TableFromMap(m map[string]string, fold bool) Table {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := Table{m: make(map[string]string, len(m)), Fold: fold}
	for _, k := range keys {
		nk := t.key(k)
		if _, dup := t.m[nk]; !dup {
			t.m[nk] = NFC(m[k])
		}
	}
	return t
}

// key is how the table stores and looks up k.
func (t Table) key(k string) string {
	if t.Fold {
		return Fold(k)
	}
	return NFC(strings.TrimSpace(k))
}

// Lookup returns the value for k, or the table's Default when k is not in it;
// ok is false when there is neither. Surrounding spaces never matter.
func (t Table) Lookup(k string) (v string, ok bool) {
	if v, ok := t.m[t.key(k)]; ok {
		return v, true
	}
	if t.Default != nil {
		return *t.Default, true
	}
	return "", false
}

// Len is the number of keys in the table.
func (t Table) Len() int { return len(t.m) }

// maxTableErrors bounds how many mistakes LoadCSV lists before it stops.
const maxTableErrors = 20

// LoadCSV reads a lookup table from a UTF-8 CSV file whose first row names the
// columns; keyCol and valueCol name the key and value columns (matched ignoring
// case and diacritics when no column has the exact name). A byte order mark is
// skipped, and the separator is the comma unless the header has more semicolons
// or tabs: Excel in a Vietnamese locale writes semicolons. Cells are trimmed and
// normalised to NFC; wholly blank rows are skipped.
//
// Errors name the file and line: a row too short to hold both columns, a blank
// key, a key that comes twice with different values (the same value twice is
// fine), text that is not UTF-8.
func LoadCSV(path string, keyCol, valueCol string, fold bool) (Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Table{}, fmt.Errorf("lookup table: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:firstInvalid(data)], []byte("\n"))
		return Table{}, fmt.Errorf("%s:%d: not UTF-8 text; save the file as \"CSV UTF-8\"", path, line)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = separator(data)
	r.FieldsPerRecord = -1 // short rows are reported below, with their line
	r.ReuseRecord = true

	header, err := r.Read()
	if err == io.EOF {
		return Table{}, fmt.Errorf("%s: the file is empty; its first row must name the columns", path)
	}
	if err != nil {
		return Table{}, csvError(path, err)
	}
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = NFC(strings.TrimSpace(h))
	}
	ki, err := column(path, names, keyCol)
	if err != nil {
		return Table{}, err
	}
	vi, err := column(path, names, valueCol)
	if err != nil {
		return Table{}, err
	}

	t := Table{m: map[string]string{}, Fold: fold}
	type origin struct {
		key  string
		line int
	}
	seen := map[string]origin{}
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...)))
	}
	for len(errs) < maxTableErrors {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, csvError(path, err))
			continue
		}
		line, _ := r.FieldPos(0)
		if blankRow(rec) {
			continue
		}
		if need := max(ki, vi) + 1; len(rec) < need {
			fail(line, "the row has %d fields; column %q is field %d", len(rec), names[max(ki, vi)], need)
			continue
		}
		key, val := NFC(strings.TrimSpace(rec[ki])), NFC(strings.TrimSpace(rec[vi]))
		if key == "" {
			fail(line, "the key (column %q) is blank", names[ki])
			continue
		}
		nk := t.key(key)
		if old, dup := t.m[nk]; dup {
			if old != val {
				o := seen[nk]
				same := ""
				if o.key != key {
					same = fmt.Sprintf(" (as %s)", quote(o.key))
				}
				fail(line, "key %s comes again with value %s; line %d%s gave %s", quote(key), quote(val), o.line, same, quote(old))
			}
			continue
		}
		t.m[nk] = val
		seen[nk] = origin{key, line}
	}
	if len(errs) == maxTableErrors {
		errs = append(errs, fmt.Errorf("%s: stopped after %d mistakes", path, maxTableErrors))
	}
	if len(errs) > 0 {
		return Table{}, errors.Join(errs...)
	}
	return t, nil
}

func csvError(path string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: %v", path, pe.Line, pe.Err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// column finds a column by name: exactly, else ignoring case and diacritics.
func column(path string, names []string, want string) (int, error) {
	for i, n := range names {
		if n == want {
			return i, nil
		}
	}
	for i, n := range names {
		if Fold(n) == Fold(want) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%s:1: no column %q in the header (columns: %s)", path, want, strings.Join(names, ", "))
}

// separator picks the field separator from the header line.
func separator(data []byte) rune {
	first := data
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		first = data[:i]
	}
	best, n := ',', bytes.Count(first, []byte(","))
	for _, c := range []rune{';', '\t'} {
		if m := bytes.Count(first, []byte(string(c))); m > n {
			best, n = c, m
		}
	}
	return best
}

func blankRow(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}
