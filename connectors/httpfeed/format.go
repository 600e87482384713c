package httpfeed

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// ErrUnknownShape is a page the source cannot read as configured: the records are
// not where the config says, or an HTML page has none and does not say there are
// none. The poll fails, so nothing is counted as gone.
var ErrUnknownShape = errors.New("answer in an unknown shape")

// page is what one answer holds.
type page struct {
	rows []pipeline.Row
	next string // the next link, unresolved; "" when none
}

// parser reads one answer in the configured format.
type parser interface {
	parse(body []byte) (page, error)
}

type jsonParser struct {
	records []string // dot path, split
	next    []string // dot path of the next link (pagination next)
}

func (p jsonParser) parse(body []byte) (page, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return page{}, fmt.Errorf("%w: not JSON: %v (starts %s)", ErrUnknownShape, err, quoteStart(body))
	}
	at, ok := walk(doc, p.records)
	if !ok {
		return page{}, fmt.Errorf("%w: no %q in the JSON answer (top-level keys: %s)", ErrUnknownShape, strings.Join(p.records, "."), topKeys(doc))
	}
	list, ok := at.([]any)
	if !ok {
		return page{}, fmt.Errorf("%w: %q is %s, want a list of records", ErrUnknownShape, pathText(p.records), jsonKind(at))
	}
	var pg page
	for i, item := range list {
		obj, ok := item.(map[string]any)
		if !ok {
			return page{}, fmt.Errorf("%w: record %d at %q is %s, want an object", ErrUnknownShape, i+1, pathText(p.records), jsonKind(item))
		}
		row := pipeline.Row{}
		flatten(row, "", obj)
		pg.rows = append(pg.rows, row)
	}
	if p.next != nil {
		if v, ok := walk(doc, p.next); ok {
			if s, ok := v.(string); ok {
				pg.next = strings.TrimSpace(s)
			}
		}
	}
	return pg, nil
}

func pathText(p []string) string {
	if len(p) == 0 {
		return "(the answer itself)"
	}
	return strings.Join(p, ".")
}

func splitPath(p string) []string {
	if p = strings.TrimSpace(p); p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// walk follows a dot path through objects (and list indexes).
func walk(v any, path []string) (any, bool) {
	for _, step := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[step]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// flatten puts an object's values into row; nested objects become "a.b" columns,
// lists their JSON text, numbers int64 when whole, else float64.
func flatten(row pipeline.Row, prefix string, obj map[string]any) {
	for k, v := range obj {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch x := v.(type) {
		case map[string]any:
			flatten(row, name, x)
		case []any:
			b, _ := json.Marshal(x)
			row[name] = string(b)
		case json.Number:
			if n, err := x.Int64(); err == nil {
				row[name] = n
			} else if f, err := x.Float64(); err == nil {
				row[name] = f
			} else {
				row[name] = x.String()
			}
		default:
			row[name] = x // string, bool or nil
		}
	}
}

// topKeys names an answer's top-level keys (never its values, which may be
// citizen data) for an error message.
func topKeys(doc any) string {
	obj, ok := doc.(map[string]any)
	if !ok {
		return jsonKind(doc)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, strconv.Quote(k))
	}
	slices.Sort(keys)
	if len(keys) > 10 {
		keys = append(keys[:10], "…")
	}
	return strings.Join(keys, ", ")
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "text"
	case json.Number:
		return "a number"
	case bool:
		return "true or false"
	}
	return fmt.Sprintf("%T", v)
}

type htmlField struct {
	name string
	sel  cascadia.Selector // nil: the record itself
	attr string
}

type htmlParser struct {
	records cascadia.Selector
	fields  []htmlField
	empty   []string // folded
	next    cascadia.Selector
}

func newHTMLParser(o HTMLOptions, next string) (htmlParser, error) {
	p := htmlParser{}
	var err error
	if p.records, err = cascadia.Compile(o.Records); err != nil {
		return p, fmt.Errorf("html.records: %w", err)
	}
	for name, spec := range o.Fields {
		f := htmlField{name: name}
		sel, attr, _ := strings.Cut(spec, "@")
		f.attr = attr
		if s := strings.TrimSpace(sel); s != "" && s != "." {
			if f.sel, err = cascadia.Compile(s); err != nil {
				return p, fmt.Errorf("html.fields.%s: %w", name, err)
			}
		}
		p.fields = append(p.fields, f)
	}
	for _, e := range o.Empty {
		p.empty = append(p.empty, transform.Fold(e))
	}
	if next != "" {
		if p.next, err = cascadia.Compile(next); err != nil {
			return p, fmt.Errorf("pagination.next: %w", err)
		}
	}
	return p, nil
}

func (p htmlParser) parse(body []byte) (page, error) {
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		return page{}, fmt.Errorf("%w: not HTML: %v", ErrUnknownShape, err)
	}
	var pg page
	doc.FindMatcher(p.records).Each(func(_ int, rec *goquery.Selection) {
		row := pipeline.Row{}
		for _, f := range p.fields {
			s := rec
			if f.sel != nil {
				s = rec.FindMatcher(f.sel).First()
			}
			var v string
			if f.attr != "" {
				v, _ = s.Attr(f.attr)
			} else {
				v = s.Text()
			}
			row[f.name] = transform.CollapseSpaces(transform.NFC(v))
		}
		pg.rows = append(pg.rows, row)
	})
	if p.next != nil {
		if href, ok := doc.FindMatcher(p.next).First().Attr("href"); ok {
			pg.next = strings.TrimSpace(href)
		}
	}
	return pg, nil
}

// saysEmpty reports whether the page says it has no records.
func (p htmlParser) saysEmpty(body []byte) bool {
	if len(p.empty) == 0 {
		return false
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		return false
	}
	text := transform.Fold(transform.NFC(doc.Text()))
	for _, e := range p.empty {
		if strings.Contains(text, e) {
			return true
		}
	}
	return false
}

type csvParser struct {
	comma     rune
	headerRow int
}

func (p csvParser) parse(body []byte) (page, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(body)) == 0 {
		return page{}, fmt.Errorf("%w: an empty answer, want at least a header line", ErrUnknownShape)
	}
	r := csv.NewReader(bytes.NewReader(body))
	r.Comma = p.comma
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	var header []string
	var pg page
	for n := 1; ; n++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return page{}, fmt.Errorf("%w: CSV: %v", ErrUnknownShape, err)
		}
		line, _ := r.FieldPos(0)
		switch {
		case n < p.headerRow:
			continue
		case header == nil:
			if header, err = csvHeader(rec); err != nil {
				return page{}, fmt.Errorf("%w: CSV header (line %d): %v", ErrUnknownShape, line, err)
			}
			continue
		}
		if blank(rec) {
			continue
		}
		if len(rec) > len(header) {
			return page{}, fmt.Errorf("%w: CSV line %d has %d fields, the header %d", ErrUnknownShape, line, len(rec), len(header))
		}
		row := make(pipeline.Row, len(header))
		for i, h := range header {
			if i < len(rec) {
				row[h] = rec[i]
			} else {
				row[h] = ""
			}
		}
		pg.rows = append(pg.rows, row)
	}
	if header == nil {
		return page{}, fmt.Errorf("%w: CSV has no header line %d", ErrUnknownShape, p.headerRow)
	}
	return pg, nil
}

func csvHeader(rec []string) ([]string, error) {
	out := make([]string, len(rec))
	seen := map[string]bool{}
	for i, h := range rec {
		h = transform.CollapseSpaces(transform.NFC(h))
		if h == "" {
			return nil, fmt.Errorf("column %d has no name", i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("column %q appears twice", h)
		}
		seen[h] = true
		out[i] = h
	}
	return out, nil
}

func blank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// quoteStart quotes the start of an answer for an error message.
func quoteStart(b []byte) string {
	const n = 60
	s := string(b)
	if len([]rune(s)) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return strconv.Quote(s)
}
