// Package mapping turns raw source rows into typed records according to a YAML
// mapping file: which columns become which fields, with what type, transforms,
// defaults and checks. A mapping is compiled once when the config loads, so every
// mistake in it is reported with its file and line before any row is read.
package mapping

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// File is the YAML shape of a mapping.
type File struct {
	Entity string `yaml:"entity" required:"true" doc:"What the records are: lower-case letters, digits and '_'. It names tables and subjects downstream (current_dossier, egov.events.dossier.…)." example:"dossier"`
	// Key values joined form Record.Key.
	Key []string `yaml:"key" required:"true" doc:"The fields that identify a record; a record without them cannot be tracked, so they are required." example:"[code]"`
	// One source may serve several agencies.
	AgencyField string               `yaml:"agency_field" doc:"Take each record's agency from this field instead of the source's agency." example:"unit"`
	Fields      map[string]FieldSpec `yaml:"fields" required:"true" doc:"The record's fields, in the order written: field name -> where its value comes from and what it must be."`
	// Computed fields are stored state, so they may not read the clock (see
	// timeIndependent).
	Computed  map[string]string    `yaml:"computed" doc:"Fields computed from the fields (and earlier computed fields) with an expression (expr-lang), in file order. They are stored, so they may not read the clock: judge overdue at query time." example:"on_time: 'finished_at != nil && finished_at <= due_at'"`
	Rules     []RuleSpec           `yaml:"rules" doc:"Named events fired when a condition over before/after holds, with an optional message to citizens."`
	Templates map[string]string    `yaml:"templates" doc:"Messages for rules' notify: Go text/template over the record's fields, with helpers date, time, datetime (in the mapping's zone), label, upper, lower, default." example:"result_ready: 'Hồ sơ {{.code}} đã có kết quả.'"`
	Tables    map[string]TableSpec `yaml:"tables" doc:"Lookup tables for transform steps ({lookup: name}) and templates ({{label \"name\" .field}}): inline values or two columns of a CSV file."`
	Figures   *FiguresSpec         `yaml:"figures" doc:"Which fields the steering figures count: the store keeps these facts per record, indexed, and judges overdue and due soon at query time."`
}

// Columns is a field's source: one column name, or a list of columns whose values
// are joined (family and given names kept apart by an agency).
type Columns []string

// SpecOption describes the two forms of from: for the reference and the schema.
func (Columns) SpecOption() config.Option {
	return config.Option{Kind: config.KindList, Elem: &config.Option{Kind: config.KindString}, Schema: map[string]any{"anyOf": []any{
		map[string]any{"type": "string"},
		map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1},
	}}}
}

// UnmarshalYAML accepts a single name or a list of names.
func (c *Columns) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*c = Columns{n.Value}
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		if len(list) == 0 {
			return fmt.Errorf("want at least one column")
		}
		*c = list
		return nil
	}
	return fmt.Errorf("want a column name or a list of column names")
}

// TableSpec is a lookup table: inline values, or two columns of a CSV file.
type TableSpec struct {
	Values  map[string]string `yaml:"values" doc:"The table inline: key -> value. Give values or csv." example:"{ '1': trực tiếp, '2': trực tuyến }"`
	CSV     string            `yaml:"csv" doc:"A CSV file (with a header) relative to the mapping. Give values or csv." example:"communes.csv"`
	Key     string            `yaml:"key" doc:"The CSV column of the keys; required with csv."`
	Value   string            `yaml:"value" doc:"The CSV column of the values; required with csv."`
	Fold    bool              `yaml:"fold" doc:"Match keys ignoring case, diacritics and extra spaces (citizen-typed names and places)."`
	Default *string           `yaml:"default" doc:"The value of a key the table lacks; without it the lookup step leaves the value blank and a template's label shows the key."`
}

// FieldSpec describes one field of the record.
type FieldSpec struct {
	From      Columns          `yaml:"from" default:"the field's name" doc:"The source column, or a list of columns whose non-blank values are joined with join." example:"[HoDem, Ten]"`
	Join      *string          `yaml:"join" default:"one space" doc:"The separator for several from columns."`
	Type      string           `yaml:"type" enum:"string,int,decimal,bool,time,phone_vn,mark" default:"string" doc:"The value's type; see the type pages."`
	Required  bool             `yaml:"required" doc:"No value quarantines the row (key fields always are required)."`
	Transform []transform.Step `yaml:"transform" doc:"Steps applied in order to the value as text, before typing; see the transform pages." example:"[trim, upper]"`
	Default   any              `yaml:"default" doc:"The value when there is none (missing, blank, or blanked by the transforms), written as the field holds it (typed, not transformed)."`
	Map       map[string]any   `yaml:"map" doc:"Replaces raw values (as text, trimmed) before the transforms; a replacement of ~ is no value." example:"{ 'Y': true, 'N': false }"`
	In        []any            `yaml:"in" doc:"The allowed values, written as the field holds them (for a field with a lookup, the looked-up values); any other quarantines the row with the field, the value and the list." example:"[1, 2, 3]"`
	Layout    string           `yaml:"layout" doc:"For type time: the layout the source writes, Go (2006-01-02) or yyyyMMddHHmmss style." example:"dd/MM/yyyy"`
	Zone      string           `yaml:"zone" default:"the source's zone" doc:"For type time: the zone of zone-less times."`
	Mask      string           `yaml:"mask" enum:"id,name,phone" doc:"Citizen data: the value is masked wherever rows are shown or logged (quarantine, previews, CLI output), never in what is delivered. phone_vn fields are masked as phones without it."`
	// null suits a field the record is useful without (a dossier with a mistyped
	// phone number).
	Invalid string `yaml:"invalid" enum:"reject,null" noun:"choice" default:"reject" doc:"What an unreadable value does: reject quarantines the row; null keeps the record with the field's default or no value, counted in egov_dropped_values_total{source,field} (not with required)."`
}

// Options are what the source contributes to a mapping.
type Options struct {
	Zone  *time.Location   // zone-less times are read in it; default Asia/Ho_Chi_Minh
	Clock func() time.Time // now() in expressions; default time.Now
}

// Mapping is a compiled mapping, safe for concurrent use.
type Mapping struct {
	Entity    string
	File      string
	keyIdx    []int
	agencyIdx int
	fields    []*field
	computed  []*computed
	rules     []*rule
	zone      *time.Location
	clock     func() time.Time
	sorted    []string          // every field and computed name, sorted, for Record.Sorted
	pos       map[string]string // field name -> file:line of its columns
	figures   *figures
}

type computed struct {
	name string
	prog *program
	typ  string // the field type its result is kept as, for Typed
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
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	d := config.NewDecoder(file)
	var f File
	root := d.DecodeDocument(data, &f)
	// Decoding mistakes (unknown keys, wrong types) do not stop the semantic checks,
	// so one run reports every mistake; only what failed to decode is left out of
	// them, so it is not reported twice.
	broken := brokenPaths(d.Errs())
	if root == nil || root.Kind != yaml.MappingNode || broken("fields", true) {
		return nil, d.Err()
	}
	m := &Mapping{Entity: f.Entity, File: file, agencyIdx: -1, zone: opts.Zone, clock: opts.Clock, pos: map[string]string{}}
	now := func() time.Time { return m.clock() } // read at call time: SetClock may swap it
	tables := loadTables(d, f.Tables, broken)
	names := orderedKeys(root, "fields", f.Fields)
	index := map[string]int{}
	for _, name := range names {
		if broken("fields."+name, false) {
			continue
		}
		fl, ok := compileField(d, "fields."+name, name, f.Fields[name], opts, tables)
		if !ok {
			continue
		}
		index[name] = len(m.fields)
		m.fields = append(m.fields, fl)
		m.pos[name] = fieldPos(d, file, name)
	}
	if !validIdent(f.Entity) && !broken("entity", false) {
		d.Errorf("entity", "entity %q must be lower-case letters, digits and '_', such as dossier or exam_thpt (it names tables and subjects downstream)", f.Entity)
	}
	if len(f.Key) == 0 && d.Has("key") && !broken("key", false) {
		d.Errorf("key", "name at least one key field")
	}
	for i, k := range f.Key {
		if broken(fmt.Sprintf("key[%d]", i), false) {
			continue
		}
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
	fieldTypes := map[string]string{}
	sample := map[string]any{}
	for name := range f.Fields { // fields that failed to compile too: no cascade of "unknown field"
		fieldTypes[name] = typeBroken
		sample[name] = nil
	}
	for _, fl := range m.fields {
		fieldTypes[fl.name] = fl.typ
		sample[fl.name] = zeroOf(fl.typ)
	}
	for _, name := range orderedKeys(root, "computed", f.Computed) {
		p := "computed." + name
		if broken(p, false) {
			fieldTypes[name], sample[name] = typeBroken, nil
			continue
		}
		if _, clash := f.Fields[name]; clash {
			d.Errorf(p, "%q is already a field", name)
			continue
		}
		prog, err := compileExpr(f.Computed[name], sample, now, false)
		if err == nil {
			err = timeIndependent(prog)
		}
		if err != nil {
			if !readsAny(f.Computed[name], func(n string) bool { return fieldTypes[n] == typeBroken }) {
				d.Errorf(p, "%v", err)
			}
			fieldTypes[name], sample[name] = typeBroken, nil // reported once, not again where it is used
			continue
		}
		c := &computed{name: name, prog: prog, typ: typeOfKind(prog.prog.Node().Type())}
		m.computed = append(m.computed, c)
		fieldTypes[name] = c.typ
		sample[name] = zeroOf(c.typ)
	}
	templates := compileTemplates(d, f.Templates, sample, fieldTypes, opts.Zone, tables, broken)
	m.rules = compileRules(d, f.Rules, fieldTypes, sample, templates, f.Templates, now, broken)
	m.figures = compileFigures(d, f.Figures, fieldTypes, broken)
	if err := d.Err(); err != nil {
		return nil, err
	}
	for _, fl := range m.fields {
		m.sorted = append(m.sorted, fl.name)
	}
	for _, c := range m.computed {
		m.sorted = append(m.sorted, c.name)
	}
	slices.Sort(m.sorted)
	return m, nil
}

// brokenPaths returns a test of whether a path failed to decode: exactly that
// path (exact) or it or anything under it.
func brokenPaths(errs config.Errors) func(path string, exact bool) bool {
	paths := make([]string, 0, len(errs))
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	return func(path string, exact bool) bool {
		for _, p := range paths {
			if p == path {
				return true
			}
			if !exact && len(p) > len(path) && strings.HasPrefix(p, path) && (p[len(path)] == '.' || p[len(path)] == '[') {
				return true
			}
		}
		return false
	}
}

// typeBroken marks a field that failed to compile: already reported, so checks of
// its type are skipped rather than cascading.
const typeBroken = "!"

// typeName shows a field type in messages.
func typeName(typ string) string {
	if typ == "" {
		return "unknown until run time (a computed value)"
	}
	return typ
}

// typeOfKind names the field type an expression's static result type maps to.
func typeOfKind(t reflect.Type) string {
	if t == nil {
		return ""
	}
	switch t.Kind() {
	case reflect.Bool:
		return TypeBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return TypeInt
	case reflect.Float32, reflect.Float64:
		return TypeDecimal
	case reflect.String:
		return TypeString
	}
	if t == reflect.TypeOf(time.Time{}) {
		return TypeTime
	}
	return ""
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

// SetClock replaces the clock that now() reads; call it before the mapping is used.
func (m *Mapping) SetClock(clock func() time.Time) { m.clock = clock }

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
	rec := pipeline.Record{Entity: m.Entity, Agency: agency, Fields: make(map[string]any, len(m.sorted)), Sorted: m.sorted}
	var rowErr *RowError
	for _, f := range m.fields {
		v, err := f.value(row)
		if err == errDropped {
			rec.Dropped = append(rec.Dropped, f.name)
			err = nil
		}
		if err != nil {
			if rowErr == nil {
				rowErr = &RowError{}
			}
			fe := FieldError{Field: f.name, Column: f.from, Value: rawText(f.raw(row)), Msg: err.Error()}
			if f.mask != nil && strings.TrimSpace(fe.Value) != "" {
				masked := f.mask(strings.TrimSpace(fe.Value))
				fe.Msg = strings.ReplaceAll(fe.Msg, strings.TrimSpace(fe.Value), masked)
				fe.Value = masked
			}
			rowErr.Fields = append(rowErr.Fields, fe)
			continue
		}
		rec.Fields[f.name] = v
	}
	parts := make([]string, len(m.keyIdx))
	for i, idx := range m.keyIdx {
		parts[i] = textOf(rec.Fields[m.fields[idx].name])
		if parts[i] == "" {
			parts[i] = rawText(m.fields[idx].raw(row))
		}
	}
	rec.Key = pipeline.JoinKey(parts...)
	if rowErr == nil {
		for _, c := range m.computed {
			v, err := c.prog.run(rec.Fields)
			if err != nil {
				rowErr = &RowError{Fields: []FieldError{{Field: c.name, Msg: err.Error()}}}
				break
			}
			rec.Fields[c.name] = normalise(v)
		}
	}
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
		parts[i] = strings.TrimSpace(rawText(m.fields[idx].raw(row)))
	}
	return pipeline.JoinKey(parts...)
}

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

func defaultZone() *time.Location { return transform.DefaultZone() }

func loadTables(d *config.Decoder, specs map[string]TableSpec, broken func(string, bool) bool) map[string]transform.Table {
	out := map[string]transform.Table{}
	for name, ts := range specs {
		p := "tables." + name
		if broken(p, false) {
			out[name] = transform.TableFromMap(nil, false) // reported: an empty stand-in, so uses of it are not
			continue
		}
		switch {
		case len(ts.Values) > 0 && ts.CSV != "":
			d.Errorf(p, "give values or csv, not both")
			continue
		case ts.CSV != "":
			if ts.Key == "" || ts.Value == "" {
				d.Errorf(p, "a csv table needs key: and value: (the column names)")
				continue
			}
			t, err := transform.LoadCSV(d.Resolve(ts.CSV), ts.Key, ts.Value, ts.Fold)
			if err != nil {
				d.Errorf(p+".csv", "%v", err)
				continue
			}
			t.Default = ts.Default
			out[name] = t
		case len(ts.Values) > 0:
			t := transform.TableFromMap(ts.Values, ts.Fold)
			t.Default = ts.Default
			out[name] = t
		default:
			d.Errorf(p, "an empty table: give values: or csv:")
		}
	}
	return out
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
		retypeInto(out, f.name, f)
	}
	for _, c := range m.computed {
		if c.typ != "" {
			retypeInto(out, c.name, &field{typ: c.typ, zone: m.zone})
		}
	}
	return out
}

func retypeInto(out map[string]any, name string, f *field) {
	v, ok := out[name]
	if !ok || v == nil {
		return
	}
	if n, isNum := v.(json.Number); isNum {
		v = string(n)
	}
	if tv, err := f.retype(v); err == nil {
		out[name] = tv
	}
}

// normalise keeps computed values in the record's value types.
func normalise(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case time.Time:
		return x.UTC()
	}
	return v
}
