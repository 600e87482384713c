// Package mappingtest runs the test cases integrators write beside their mappings:
// input rows, an optional previous row, and the record, events and messages they
// expect. `egov-bridge test` is its command line; failures print a readable diff.
package mappingtest

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
)

// Suffix marks a test file; it lives beside its mapping.
const Suffix = ".test.yaml"

// File is the YAML shape of a test file.
type File struct {
	Mapping string `yaml:"mapping" required:"true" doc:"The mapping under test, relative to the test file." example:"dossier-dvcqg.yaml"`
	Now     string `yaml:"now" default:"2026-01-01T08:00:00+07:00" doc:"The clock now() reads, RFC 3339."`
	Zone    string `yaml:"zone" default:"Asia/Ho_Chi_Minh" doc:"The source's zone: zone-less times in rows are read in it."`
	Agency  string `yaml:"agency" doc:"The source's agency."`
	Source  string `yaml:"source" default:"test" doc:"The source name events carry."`
	Cases   []Case `yaml:"cases" required:"true" doc:"The test cases, run in order, each on its own."`
}

// Case is one test case.
type Case struct {
	Name     string    `yaml:"name" required:"true" doc:"What the case shows; FAIL lines name it."`
	Previous yaml.Node `yaml:"previous" doc:"The row as it was before (column -> value); omit for a new record. Anchors and <<: merges let cases share a base row."`
	Row      yaml.Node `yaml:"row" required:"true" doc:"The source row: column -> value. Numbers and booleans keep their type, dates stay text as written, null is no value."`
	Snapshot bool      `yaml:"snapshot" doc:"The change happens during the source's first sync (rules stay silent unless on_snapshot)."`
	Deleted  bool      `yaml:"deleted" doc:"The record read from row then disappears from its source: the change is its deletion (before is the record, no after), as a full-set poll or a reconcile makes it."`
	Expect   Expect    `yaml:"expect" required:"true" doc:"What the case must produce; parts left out are not checked."`
}

// Expect is what a case must produce. Omitted parts are not checked.
type Expect struct {
	Record     map[string]yaml.Node `yaml:"record" doc:"A subset of the record's fields and their values (times as RFC 3339 instants)."`
	Events     []string             `yaml:"events" doc:"The event types and rule names, in order; [] means none." example:"[updated, dossier.result_ready]"`
	Changed    []string             `yaml:"changed" doc:"The change event's changed fields."`
	Messages   []MessageExpect      `yaml:"messages" doc:"The rendered messages, in order: each a text, or a mapping with text, phone, user_id, template; [] means none."`
	Quarantine string               `yaml:"quarantine" doc:"The row is rejected, with a reason containing this."`
	// TooOld names the rules whose condition held but that were held back by their
	// max_age, in order.
	TooOld []string `yaml:"too_old" doc:"The rules whose condition held but that their max_age held back, in order."`
}

// MessageExpect is a message's text, or a mapping with text, phone, user_id, template.
type MessageExpect struct {
	Text     string `yaml:"text" doc:"The message's whole text."`
	Phone    string `yaml:"phone" doc:"The phone it goes to (84xxxxxxxxx)."`
	UserID   string `yaml:"user_id" doc:"The Zalo user id it goes to."`
	Template string `yaml:"template" doc:"The template it was rendered from."`
}

// SpecOption describes the two forms of an expected message for the schema.
func (MessageExpect) SpecOption() config.Option {
	type fields MessageExpect // the same keys, without this method
	obj := config.Describe(&fields{})
	return config.Option{Kind: config.KindAny, Schema: map[string]any{"anyOf": []any{
		map[string]any{"type": "string"}, obj.JSONSchema(),
	}}}
}

// UnmarshalYAML accepts a plain string as the text.
func (m *MessageExpect) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		m.Text = n.Value
		return nil
	}
	type plain MessageExpect
	return n.Decode((*plain)(m))
}

// Result is one case's outcome.
type Result struct {
	File string
	Line int
	Name string
	Diff []string // empty when the case passed
}

// Passed reports whether the case passed.
func (r Result) Passed() bool { return len(r.Diff) == 0 }

// Find lists the test files under the given paths (files or folders), sorted.
func Find(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, Suffix) {
				out = append(out, path)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return out, nil
}

// RunFile loads a test file and its mapping and runs every case. A broken test file
// or mapping is an error (config.Errors with places), not a failed case.
func RunFile(path string) ([]Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := config.NewDecoder(path)
	var f File
	d.DecodeDocument(data, &f)
	if err := d.Err(); err != nil {
		return nil, err
	}
	now := time.Date(2026, 1, 1, 8, 0, 0, 0, time.FixedZone("ICT", 7*3600))
	if f.Now != "" {
		if now, err = time.Parse(time.RFC3339, f.Now); err != nil {
			d.Errorf("now", "want an RFC 3339 time such as 2026-11-27T09:00:00+07:00, got %q", f.Now)
		}
	}
	zone, err := time.LoadLocation(cmpOr(f.Zone, "Asia/Ho_Chi_Minh"))
	if err != nil {
		d.Errorf("zone", "unknown time zone %q", f.Zone)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	m, err := mapping.Load(d.Resolve(f.Mapping), mapping.Options{Zone: zone, Clock: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	source := cmpOr(f.Source, "test")
	var out []Result
	for i, c := range f.Cases {
		line := 0
		if n := d.Node(fmt.Sprintf("cases[%d]", i)); n != nil {
			line = n.Line
		}
		r := Result{File: path, Line: line, Name: c.Name}
		check := checks{
			events:   d.Has(fmt.Sprintf("cases[%d].expect.events", i)),
			messages: d.Has(fmt.Sprintf("cases[%d].expect.messages", i)),
			tooOld:   d.Has(fmt.Sprintf("cases[%d].expect.too_old", i)),
		}
		r.Diff = runCase(m, c, source, f.Agency, now, check)
		out = append(out, r)
	}
	return out, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checks says which optional expectations a case gives (an empty list is one).
type checks struct{ events, messages, tooOld bool }

func runCase(m *mapping.Mapping, c Case, source, agency string, now time.Time, check checks) []string {
	var diff []string
	var prior *pipeline.Prior
	if c.Previous.Kind != 0 && c.Previous.Tag != "!!null" {
		prev, err := m.Apply(rowOf(&c.Previous), agency)
		if err != nil {
			return []string{fmt.Sprintf("previous row is rejected by the mapping: %v", err)}
		}
		prior = &pipeline.Prior{Hash: prev.Hash(), Version: 1, Fields: prev.Fields}
	}
	rec, err := m.Apply(rowOf(&c.Row), agency)
	if c.Expect.Quarantine != "" {
		switch {
		case err == nil:
			return []string{fmt.Sprintf("want the row quarantined (reason containing %q), but it was accepted", c.Expect.Quarantine)}
		case !strings.Contains(err.Error(), c.Expect.Quarantine):
			return []string{"quarantine reason:", "  - want (contains): " + c.Expect.Quarantine, "  + got:             " + err.Error()}
		}
		return nil
	}
	if err != nil {
		return []string{fmt.Sprintf("row is quarantined: %v", err)}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Expect.Record)) {
		want := c.Expect.Record[name]
		got, ok := rec.Fields[name]
		if !ok {
			diff = append(diff, fmt.Sprintf("record.%s: no such field", name))
			continue
		}
		if !sameAs(got, &want) {
			diff = append(diff, fmt.Sprintf("record.%s:", name), "  - want: "+show(want.Value, want.Tag == "!!null"), "  + got:  "+showValue(got))
		}
	}

	var events []*pipeline.Event
	var tooOld []string
	ev := pipeline.Diff(source, prior, rec, rec.Hash(), c.Snapshot, now.UTC())
	if c.Deleted {
		if prior != nil {
			return []string{"deleted: true takes no previous row: the row is the record as last known"}
		}
		ev = pipeline.Deletion(source, rec.Entity, rec.Key, rec.Agency,
			pipeline.Prior{Hash: rec.Hash(), Version: 1, Fields: rec.Fields}, now.UTC())
		ev.Snapshot = c.Snapshot
	}
	if ev != nil {
		events = append(events, ev)
		fired := m.Fire(ev)
		for _, f := range fired.Failed {
			diff = append(diff, fmt.Sprintf("rule failed: %v", f))
		}
		events = append(events, fired.Events...)
		tooOld = fired.TooOld
	}
	if check.tooOld && !slices.Equal(tooOld, c.Expect.TooOld) && len(tooOld)+len(c.Expect.TooOld) > 0 {
		diff = append(diff, "too_old:", "  - want: "+list(c.Expect.TooOld), "  + got:  "+list(tooOld))
	}
	if check.events {
		got := make([]string, len(events))
		for i, ev := range events {
			got[i] = cmpOr(ev.Rule, ev.Type)
		}
		if !slices.Equal(got, c.Expect.Events) {
			diff = append(diff, "events:", "  - want: "+list(c.Expect.Events), "  + got:  "+list(got))
		}
	}
	if c.Expect.Changed != nil && len(events) > 0 {
		if !slices.Equal(events[0].Changed, c.Expect.Changed) {
			diff = append(diff, "changed:", "  - want: "+list(c.Expect.Changed), "  + got:  "+list(events[0].Changed))
		}
	}
	if check.messages {
		var got []*pipeline.Message
		for _, ev := range events {
			if ev.Message != nil {
				got = append(got, ev.Message)
			}
		}
		diff = append(diff, diffMessages(c.Expect.Messages, got)...)
	}
	return diff
}

func diffMessages(want []MessageExpect, got []*pipeline.Message) []string {
	var diff []string
	if len(want) != len(got) {
		diff = append(diff, fmt.Sprintf("messages: want %d, got %d", len(want), len(got)))
	}
	for i := 0; i < min(len(want), len(got)); i++ {
		w, g := want[i], got[i]
		if w.Text != g.Text {
			diff = append(diff, fmt.Sprintf("messages[%d].text:", i), "  - want: "+w.Text, "  + got:  "+g.Text, "          "+caret(w.Text, g.Text))
		}
		for _, f := range []struct{ name, want, got string }{{"phone", w.Phone, g.Phone}, {"user_id", w.UserID, g.UserID}, {"template", w.Template, g.Template}} {
			if f.want != "" && f.want != f.got {
				diff = append(diff, fmt.Sprintf("messages[%d].%s: want %q, got %q", i, f.name, f.want, f.got))
			}
		}
	}
	for i := len(want); i < len(got); i++ {
		diff = append(diff, fmt.Sprintf("  + unexpected message: %s", got[i].Text))
	}
	return diff
}

// caret points at the first character where two texts differ.
func caret(a, b string) string {
	ra, rb := []rune(a), []rune(b)
	i := 0
	for i < len(ra) && i < len(rb) && ra[i] == rb[i] {
		i++
	}
	return strings.Repeat(" ", i) + "^ first difference"
}

// rowOf turns a YAML mapping into a source row: null is nil, numbers and booleans
// keep their type, and everything else — dates included — stays text as written, so
// the mapping's own layouts and zone apply, as they would to an agency's text column.
// Anchors, aliases and merge keys (<<: *base) let cases share a base row.
func rowOf(n *yaml.Node) pipeline.Row {
	row := pipeline.Row{}
	mergeRow(row, n)
	return row
}

func mergeRow(row pipeline.Row, n *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	// Merged mappings first, so the case's own keys override them.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "<<" && n.Content[i].Tag == "!!merge" {
			v := n.Content[i+1]
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					mergeRow(row, m)
				}
			} else {
				mergeRow(row, v)
			}
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Tag == "!!merge" {
			continue
		}
		v := n.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		row[n.Content[i].Value] = scalar(v)
	}
}

func scalar(n *yaml.Node) any {
	switch n.Tag {
	case "!!null":
		return nil
	case "!!int":
		if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return v
		}
	case "!!float":
		if v, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return v
		}
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	}
	return n.Value
}

// sameAs compares a record value with the expected YAML value: times as instants,
// everything else by canonical text.
func sameAs(got any, want *yaml.Node) bool {
	if want.Tag == "!!null" {
		return got == nil
	}
	if got == nil {
		return false
	}
	if t, ok := got.(time.Time); ok {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
			if w, err := time.Parse(layout, want.Value); err == nil {
				return w.Equal(t)
			}
		}
		return false
	}
	if f, ok := got.(float64); ok {
		w, err := strconv.ParseFloat(strings.Replace(want.Value, ",", ".", 1), 64)
		return err == nil && w == f
	}
	return showValue(got) == want.Value
}

func showValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func show(s string, null bool) string {
	if null {
		return "null"
	}
	return s
}

func list(s []string) string { return "[" + strings.Join(s, ", ") + "]" }
