// Package mapping turns raw source rows into typed records according to a YAML
// mapping file: which columns become which fields, with what type, transforms,
// defaults and checks. A mapping is compiled once when the config loads, so every
// mistake in it is reported with its file and line before any row is read.
package mapping

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// File is the YAML shape of a mapping.
type File struct {
	Entity string `yaml:"entity" required:"true"`
	// Key names the fields that identify a record; their values joined form Record.Key.
	Key []string `yaml:"key" required:"true"`
	// AgencyField, when set, takes the record's agency from that field instead of the
	// source's static agency (one source may serve several agencies).
	AgencyField string               `yaml:"agency_field"`
	Fields      map[string]FieldSpec `yaml:"fields" required:"true"`
}

// FieldSpec describes one field of the record.
type FieldSpec struct {
	From      string         `yaml:"from"`      // source column; defaults to the field's name
	Type      string         `yaml:"type"`      // string (default), int, decimal, bool, time
	Required  bool           `yaml:"required"`  // a missing or blank value rejects the row
	Transform []string       `yaml:"transform"` // applied in order to text: trim, upper, lower
	Default   any            `yaml:"default"`   // used when the value is missing or blank
	Map       map[string]any `yaml:"map"`       // raw value (as text) to replacement, before typing
	In        []any          `yaml:"in"`        // allowed values after typing
	Layout    string         `yaml:"layout"`    // time layout: Go ("2006-01-02") or yyyyMMddHHmmss style
	Zone      string         `yaml:"zone"`      // zone for zone-less times; defaults to the source's
}

// Options are what the source contributes to a mapping.
type Options struct {
	Zone *time.Location // zone-less times are read in it; default Asia/Ho_Chi_Minh
}

// Mapping is a compiled mapping, safe for concurrent use.
type Mapping struct {
	Entity    string
	File      string
	keyIdx    []int
	agencyIdx int
	fields    []*field
}

// Load reads and compiles a mapping file. All mistakes come back together as
// config.Errors, each with file:line and the field path.
func Load(path string, opts Options) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, config.Errors{{File: path, Msg: fmt.Sprintf("cannot read mapping: %v", err)}}
	}
	return Compile(path, data, opts)
}

// Compile compiles mapping YAML; file is used in error messages.
func Compile(file string, data []byte, opts Options) (*Mapping, error) {
	if opts.Zone == nil {
		opts.Zone = defaultZone()
	}
	d := config.NewDecoder(file)
	root := d.Parse(data)
	if root == nil {
		return nil, d.Err()
	}
	var f File
	d.Decode(root, "", &f)
	if err := d.Err(); err != nil {
		return nil, err
	}
	m := &Mapping{Entity: f.Entity, File: file, agencyIdx: -1}
	names := orderedKeys(root, "fields", f.Fields)
	index := map[string]int{}
	for _, name := range names {
		fl, ok := compileField(d, "fields."+name, name, f.Fields[name], opts)
		if !ok {
			continue
		}
		index[name] = len(m.fields)
		m.fields = append(m.fields, fl)
	}
	if !validIdent(f.Entity) {
		d.Errorf("entity", "entity %q must be a lower-case name such as dossier or outage", f.Entity)
	}
	if len(f.Key) == 0 && d.Has("key") {
		d.Errorf("key", "name at least one key field")
	}
	for i, k := range f.Key {
		idx, ok := index[k]
		if !ok {
			if _, declared := f.Fields[k]; !declared {
				d.Errorf(fmt.Sprintf("key[%d]", i), "key field %q is not among the fields", k)
			}
			continue
		}
		m.fields[idx].required = true // a record without its key cannot be tracked
		m.keyIdx = append(m.keyIdx, idx)
	}
	if f.AgencyField != "" {
		idx, ok := index[f.AgencyField]
		if !ok {
			d.Errorf("agency_field", "agency_field %q is not among the fields", f.AgencyField)
		}
		m.agencyIdx = idx
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// orderedKeys returns the keys of a mapping node in file order, so records and
// previews list fields as the integrator wrote them.
func orderedKeys[V any](root *yaml.Node, key string, m map[string]V) []string {
	var out []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key && root.Content[i+1].Kind == yaml.MappingNode {
			n := root.Content[i+1]
			for j := 0; j+1 < len(n.Content); j += 2 {
				out = append(out, n.Content[j].Value)
			}
		}
	}
	if len(out) != len(m) { // aliases or merges: fall back to sorted names
		out = out[:0]
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
	}
	return out
}

// FieldNames lists the record's fields in mapping order.
func (m *Mapping) FieldNames() []string {
	out := make([]string, len(m.fields))
	for i, f := range m.fields {
		out[i] = f.name
	}
	return out
}

// FieldError is one field's problem with one row.
type FieldError struct {
	Field  string
	Column string
	Value  string // the offending raw value, as text
	Msg    string
}

func (e FieldError) Error() string {
	if e.Column != "" && e.Column != e.Field {
		return fmt.Sprintf("%s (column %s): %s", e.Field, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Msg)
}

// RowError lists every field error of a rejected row; the row goes to quarantine
// with this as its reason.
type RowError struct {
	Key    string // the row's key as far as it could be read
	Fields []FieldError
}

func (e *RowError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

// Apply maps one row. A row that breaks the mapping returns a *RowError naming
// every bad field; it never panics on input.
func (m *Mapping) Apply(row pipeline.Row, agency string) (pipeline.Record, error) {
	rec := pipeline.Record{Entity: m.Entity, Agency: agency, Fields: make(map[string]any, len(m.fields))}
	var rowErr *RowError
	for _, f := range m.fields {
		v, err := f.value(row)
		if err != nil {
			if rowErr == nil {
				rowErr = &RowError{}
			}
			rowErr.Fields = append(rowErr.Fields, FieldError{Field: f.name, Column: f.from, Value: rawText(row[f.from]), Msg: err.Error()})
			continue
		}
		rec.Fields[f.name] = v
	}
	parts := make([]string, len(m.keyIdx))
	for i, idx := range m.keyIdx {
		parts[i] = textOf(rec.Fields[m.fields[idx].name])
		if parts[i] == "" {
			parts[i] = rawText(row[m.fields[idx].from])
		}
	}
	rec.Key = pipeline.JoinKey(parts...)
	if rowErr != nil {
		rowErr.Key = rec.Key
		return rec, rowErr
	}
	if m.agencyIdx >= 0 {
		if a := textOf(rec.Fields[m.fields[m.agencyIdx].name]); a != "" {
			rec.Agency = a
		}
	}
	return rec, nil
}

// RowKey reads a row's key for quarantine messages without typing the other fields.
func (m *Mapping) RowKey(row pipeline.Row) string {
	parts := make([]string, len(m.keyIdx))
	for i, idx := range m.keyIdx {
		parts[i] = strings.TrimSpace(rawText(row[m.fields[idx].from]))
	}
	return pipeline.JoinKey(parts...)
}

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

func defaultZone() *time.Location {
	z, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		return time.FixedZone("ICT", 7*3600) // Vietnam has no daylight saving time
	}
	return z
}

// Typed restores field values that went through JSON (the stored snapshot) to the
// types the mapping gives them, so that a stored "before" compares and renders like a
// freshly mapped "after". Unknown fields are kept as they are.
func (m *Mapping) Typed(fields map[string]any) map[string]any {
	out := make(map[string]any, len(fields))
	for k, v := range fields {
		out[k] = v
	}
	for _, f := range m.fields {
		v, ok := out[f.name]
		if !ok || v == nil {
			continue
		}
		if n, isNum := v.(json.Number); isNum {
			v = string(n)
		}
		if tv, err := f.retype(v); err == nil {
			out[f.name] = tv
		}
	}
	return out
}
