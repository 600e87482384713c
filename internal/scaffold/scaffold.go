// Package scaffold writes a starting mapping and its test cases for an agency's
// table (`egov-bridge init`): one field per column with a type guessed from the
// column's type, citizen data (phones, names, id numbers) marked for masking, a
// cursor guessed from the timestamp columns and the primary key, and the first rows
// as test cases with their citizen data replaced.
package scaffold

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Column is one column of the table as the database describes it.
type Column struct {
	Name       string
	DBType     string // information_schema's data_type, e.g. "timestamp without time zone"
	PrimaryKey bool
}

// Table is what init read: the columns in order and the first rows.
type Table struct {
	Schema, Name string
	Columns      []Column
	Rows         []pipeline.Row // values as the driver returns them
}

// Field is a guessed mapping field.
type Field struct {
	Name     string // the field's name: the column's, lower-case snake
	Column   string
	Type     string // a mapping field type
	Mask     string // phone, name or id: citizen data
	Zoneless bool   // a time column without a zone (read in the source's zone)
	DateOnly bool
}

// Result is the scaffold: the mapping's fields, its key and cursor, and the two
// files' contents.
type Result struct {
	Entity    string
	Fields    []Field
	Key       string // the key field's column (the primary key)
	CursorCol string // "" when no column suits
	CursorWhy string
	Mapping   []byte
	Tests     []byte
	Warnings  []string
}

var (
	phoneName = regexp.MustCompile(`(?i)(phone|mobile|sdt|so_?dt|dien_?thoai|dienthoai|di_?dong|tel)`)
	nameName  = regexp.MustCompile(`(?i)(^|_)(ho_?ten|hoten|ten|name|full_?name|chu_?ho_?so|nguoi_?nop|cong_?dan|ho_?va_?ten)($|_)`)
	idName    = regexp.MustCompile(`(?i)(cccd|cmnd|can_?cuoc|dinh_?danh|so_?giay_?to|id_?number|identity|passport|ho_?chieu)`)
	updName   = regexp.MustCompile(`(?i)(updat|modif|cap_?nhat|capnhat|changed|sua|last)`)
	nonIdent  = regexp.MustCompile(`[^a-z0-9_]+`)
)

// Guess builds the mapping and its test file for a table. mappingName is the
// mapping's file name, which the test file names; header and testHeader are first
// lines for the two files (the schema comments), or "".
func Guess(t Table, mappingName, header, testHeader string) (*Result, error) {
	r := &Result{Entity: ident(t.Name)}
	var keys []string
	for _, c := range t.Columns {
		f := Field{Name: ident(c.Name), Column: c.Name, Type: guessType(c.DBType)}
		if f.Type == mapping.TypeTime {
			f.Zoneless = !strings.Contains(c.DBType, "with time zone")
			f.DateOnly = c.DBType == "date"
		}
		if f.Type == mapping.TypeString {
			switch {
			case phoneName.MatchString(c.Name) || looksLikePhones(t.Rows, c.Name):
				f.Type, f.Mask = mapping.TypePhoneVN, "phone"
			case idName.MatchString(c.Name):
				f.Mask = "id"
			case nameName.MatchString(c.Name):
				f.Mask = "name"
			}
		}
		if c.PrimaryKey {
			keys = append(keys, c.Name)
		}
		r.Fields = append(r.Fields, f)
	}
	switch len(keys) {
	case 1:
		r.Key = keys[0]
	case 0:
		return nil, fmt.Errorf("%s.%s has no primary key: a mapping needs a key that identifies each row", t.Schema, t.Name)
	default:
		return nil, fmt.Errorf("%s.%s has a primary key of %d columns (%s): the sql source needs a one-column key",
			t.Schema, t.Name, len(keys), strings.Join(keys, ", "))
	}
	r.CursorCol, r.CursorWhy = guessCursor(t.Columns, r.Key)
	if r.CursorCol == "" {
		r.Warnings = append(r.Warnings, "no timestamp or integer column suits as a cursor: name cursor.column in the source yourself (the column updated on every change)")
	}
	r.Mapping = r.mappingYAML(t, header)
	tests, err := r.testYAML(t, mappingName, testHeader)
	if err != nil {
		return nil, err
	}
	r.Tests = tests
	return r, nil
}

func guessType(dbType string) string {
	t := strings.ToLower(dbType)
	switch {
	case strings.HasPrefix(t, "timestamp"), t == "date", t == "datetime", t == "datetime2", t == "datetimeoffset", t == "smalldatetime":
		return mapping.TypeTime
	case t == "smallint", t == "integer", t == "bigint", t == "int", t == "tinyint":
		return mapping.TypeInt
	case t == "numeric", t == "decimal", t == "real", t == "double precision", t == "money", t == "float":
		return mapping.TypeDecimal
	case t == "boolean", t == "bit":
		return mapping.TypeBool
	}
	return mapping.TypeString
}

// looksLikePhones: every non-blank sample value of a text column is a Vietnamese
// mobile number (and there is at least one).
func looksLikePhones(rows []pipeline.Row, col string) bool {
	seen := 0
	for _, row := range rows {
		s := strings.TrimSpace(text(row[col]))
		if s == "" {
			continue
		}
		if _, err := transform.PhoneVN(s); err != nil {
			return false
		}
		seen++
	}
	return seen > 0
}

// guessCursor prefers a timestamp column named like "updated" (ngay_cap_nhat,
// modified_at, …), then the only timestamp column; without one, an integer primary
// key cannot be its own tie-breaker, so no cursor is guessed.
func guessCursor(cols []Column, key string) (string, string) {
	var stamps []string
	for _, c := range cols {
		if guessType(c.DBType) == mapping.TypeTime && c.Name != key && c.DBType != "date" {
			stamps = append(stamps, c.Name)
		}
	}
	for _, s := range stamps {
		if updName.MatchString(s) {
			return s, "its name says it is updated on every change"
		}
	}
	switch len(stamps) {
	case 0:
		return "", ""
	case 1:
		return stamps[0], "the table's only timestamp column"
	}
	return stamps[len(stamps)-1], "the last of the timestamp columns (" + strings.Join(stamps, ", ") + "): check that it changes on every update"
}

// ident makes a column or table name a field or entity name.
func ident(s string) string {
	s = strings.ToLower(transform.Fold(s))
	s = strings.Trim(nonIdent.ReplaceAllString(s, "_"), "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "f_" + s
	}
	return s
}

func (r *Result) mappingYAML(t Table, header string) []byte {
	var b bytes.Buffer
	if header != "" {
		b.WriteString(header + "\n")
	}
	fmt.Fprintf(&b, "# A starting mapping for %s.%s, written by egov-bridge init: one field per column, types\n", t.Schema, t.Name)
	b.WriteString("# guessed from the column types. Rename fields, drop the ones nobody needs, add rules.\n")
	fmt.Fprintf(&b, "entity: %s\n", r.Entity)
	fmt.Fprintf(&b, "key: [%s]\n", ident(r.Key))
	b.WriteString("fields:\n")
	for _, f := range r.Fields {
		parts := []string{"from: " + yamlScalar(f.Column)}
		if f.Type != mapping.TypeString {
			parts = append(parts, "type: "+f.Type)
		}
		if f.Column == r.Key {
			parts = append(parts, "required: true")
		}
		if f.Type == mapping.TypeString && f.Column == r.Key {
			parts = append(parts, "transform: [trim]")
		}
		if f.Type == mapping.TypePhoneVN {
			parts = append(parts, "invalid: \"null\"") // a mistyped phone should not hold the record back
		}
		if f.Mask != "" && f.Type != mapping.TypePhoneVN {
			parts = append(parts, "mask: "+f.Mask)
		}
		fmt.Fprintf(&b, "  %s: { %s }\n", f.Name, strings.Join(parts, ", "))
	}
	return b.Bytes()
}

func yamlScalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// testNow is the clock of the generated cases: fixed, so they pass at any hour.
const testNow = "2026-01-01T08:00:00+07:00"

func (r *Result) testYAML(t Table, mappingName, header string) ([]byte, error) {
	m, err := mapping.Compile(mappingName, r.Mapping, mapping.Options{})
	if err != nil {
		return nil, fmt.Errorf("the generated mapping does not compile: %w", err)
	}
	var b bytes.Buffer
	if header != "" {
		b.WriteString(header + "\n")
	}
	fmt.Fprintf(&b, "# Test cases for %s, from the first rows of %s.%s with citizen data replaced.\n", mappingName, t.Schema, t.Name)
	b.WriteString("# Run them with: egov-bridge test <this file's folder>\n")
	fmt.Fprintf(&b, "mapping: %s\nnow: %s\ncases:\n", mappingName, testNow)
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("%s.%s has no rows to make test cases from", t.Schema, t.Name)
	}
	for i, raw := range t.Rows {
		row := r.caseRow(raw, i)
		rec, err := m.Apply(row, "")
		if err != nil {
			return nil, fmt.Errorf("row %d is rejected by the generated mapping: %w", i+1, err)
		}
		name := fmt.Sprintf("row %d of %s", i+1, t.Name)
		rowNode := &yaml.Node{Kind: yaml.MappingNode}
		for _, col := range t.Columns {
			rowNode.Content = append(rowNode.Content, str(col.Name), valueNode(row[col.Name]))
		}
		recNode := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range r.Fields {
			recNode.Content = append(recNode.Content, str(f.Name), valueNode(shown(rec.Fields[f.Name])))
		}
		caseNode := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			str("name"), str(name),
			str("row"), rowNode,
			str("expect"), {Kind: yaml.MappingNode, Content: []*yaml.Node{
				str("record"), recNode,
				str("events"), {Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{str("created")}},
			}},
		}}
		list := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{caseNode}}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(list); err != nil {
			return nil, err
		}
		for _, line := range strings.SplitAfter(buf.String(), "\n") {
			if line != "" {
				b.WriteString("  " + line)
			}
		}
	}
	return b.Bytes(), nil
}

// caseRow is a database row as a test case writes it: times as text (zone-less
// ones without a zone, as the source reads them), numbers and booleans as such,
// and citizen data replaced: phones by made-up numbers, names and id numbers by
// their masked form.
func (r *Result) caseRow(raw pipeline.Row, i int) pipeline.Row {
	row := pipeline.Row{}
	for _, f := range r.Fields {
		v := raw[f.Column]
		switch x := v.(type) {
		case []byte:
			v = string(x)
		case time.Time:
			switch {
			case f.DateOnly:
				v = x.Format("2006-01-02")
			case f.Zoneless:
				v = x.Format("2006-01-02 15:04:05.999999")
			default:
				v = x.Format(time.RFC3339Nano)
			}
		case int32:
			v = int64(x)
		case int:
			v = int64(x)
		case float32:
			v = float64(x)
		}
		if s, ok := v.(string); ok && strings.TrimSpace(s) != "" {
			switch f.Mask {
			case "phone":
				v = fakePhone(i)
			case "name":
				v = transform.MaskName(s)
			case "id":
				v = transform.MaskID(s)
			}
		}
		row[f.Column] = v
	}
	return row
}

// fakePhone is a valid mobile number that is nobody's in particular: 0912 000 00n.
func fakePhone(i int) string { return fmt.Sprintf("0912%06d", i+1) }

// shown is a record value as the test file states it.
func shown(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return v
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// valueNode writes a value with the YAML tag that reads back as the same Go value.
func valueNode(v any) *yaml.Node {
	switch x := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(x)}
	case int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(x, 10)}
	case float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: strconv.FormatFloat(x, 'f', -1, 64)}
	case string:
		return str(x)
	}
	return str(fmt.Sprint(v))
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
