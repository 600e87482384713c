package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// RuleSpec is a named event fired when a condition over before/after holds.
type RuleSpec struct {
	Name   string      `yaml:"name" required:"true" doc:"The event's name, usually <entity>.<what>: lower-case letters, digits, '.', '_', '-'. Routes and the zalo sink's rules use it." example:"dossier.result_ready"`
	When   string      `yaml:"when" required:"true" doc:"An expression over before, after, changed(\"field\"), type (created, updated, deleted), snapshot and now(); it must be true or false." example:"'changed(\"status\") && after.status == 9'"`
	Notify *NotifySpec `yaml:"notify" doc:"Who hears about the event and in what words."`
	// Nobody wants a million messages on the day the daemon is installed.
	OnSnapshot bool `yaml:"on_snapshot" doc:"Let the rule fire during a source's first sync (off: the first sync tells no citizen)."`
	// A source read late (an outage, a rewound cursor) then tells no citizen last
	// week's news.
	MaxAge   config.Duration `yaml:"max_age" doc:"With age_field: the rule does not fire (the skip is counted) when the record's age_field is more than this before now." example:"72h"`
	AgeField string          `yaml:"age_field" doc:"A time field saying when the change happened at the agency; given with max_age." example:"updated_at"`
	// A timer: it fires once when the clock passes the threshold (timers.go).
	At string `yaml:"at" doc:"Makes the rule a timer: it fires once per record when the clock passes a time field plus or minus a duration, if when: holds over the record then (a finished dossier fires nothing); re-armed when the field moves." example:"due_at - 2d"`
}

// NotifySpec says who hears about a rule and in what words.
type NotifySpec struct {
	Template string `yaml:"template" required:"true" doc:"The message: a name under templates." example:"result_ready"`
	Phone    string `yaml:"phone" doc:"The field holding the citizen's phone (type phone_vn)." example:"phone"`
	UserID   string `yaml:"user_id" doc:"The field holding a Zalo user id."`
	Audience string `yaml:"audience" doc:"The field whose value's subscribers hear it (a commune)." example:"commune"`
	// Officials addresses the record's agency's officials from the config, not
	// a citizen; the zalo sink sends one notice to each.
	Officials bool `yaml:"officials" doc:"Address the officials the config lists for the record's agency (agencies[].officials; an agency with none falls back to its parent's) instead of a citizen: the zalo sink sends each one the notice. Not combined with phone, user_id or audience."`
}

type rule struct {
	name       string
	when       *program
	tmpl       *template.Template
	tmplName   string
	phone      string
	userID     string
	audience   string
	officials  bool
	onSnapshot bool
	maxAge     time.Duration // 0: no age limit
	ageField   string
	at         *timerAt // a timer rule: fires when the clock passes it, not on changes
	atSpec     string
}

var ruleNameRE = func(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// timeHelpers are the template helpers that show a time, with their layouts.
var timeHelpers = map[string]string{"date": "02/01/2006", "time": "15:04", "datetime": "15:04 02/01/2006"}

// templateFuncs are the helpers templates may use; dates and times are shown in the
// mapping's zone, the way a citizen reads them. A time helper given something that
// is not a time is an error, so a template that applies one to the wrong field fails
// when it is rendered against typed samples at load; an empty field shows as "".
func templateFuncs(zone *time.Location, tables map[string]transform.Table) template.FuncMap {
	funcs := template.FuncMap{
		"label": func(table string, v any) (string, error) {
			t, ok := tables[table]
			if !ok {
				return "", fmt.Errorf("no table is named %q", table)
			}
			k := textOf(v)
			if l, ok := t.Lookup(k); ok {
				return l, nil
			}
			return k, nil // an unlabelled code is still better than nothing in a message
		},
		// upper and lower take any value: an empty optional field is nil, not "".
		"upper": func(v any) string { return strings.ToUpper(textOf(v)) },
		"lower": func(v any) string { return strings.ToLower(textOf(v)) },
		"default": func(def string, v any) string {
			if s := textOf(v); s != "" {
				return s
			}
			return def
		},
	}
	for name, layout := range timeHelpers {
		funcs[name] = func(v any) (string, error) {
			switch t := v.(type) {
			case nil:
				return "", nil
			case time.Time:
				if t.IsZero() {
					return "", nil
				}
				return t.In(zone).Format(layout), nil
			}
			// The value itself is not shown: it may be citizen data.
			return "", fmt.Errorf("%s needs a time, got %s", name, kindOf(v))
		}
	}
	return funcs
}

// kindOf names a record value's type for messages.
func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "text"
	case int64, int:
		return "a whole number"
	case float64:
		return "a number"
	case bool:
		return "true/false"
	}
	return fmt.Sprintf("%T", v)
}

func compileTemplates(d *config.Decoder, specs map[string]string, sample map[string]any, fieldTypes map[string]string, zone *time.Location, tables map[string]transform.Table, broken func(string, bool) bool) map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		if broken("templates."+name, false) {
			continue
		}
		t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs(zone, tables)).Parse(specs[name])
		if err != nil {
			d.Errorf("templates."+name, "%s", strings.TrimPrefix(err.Error(), "template: "))
			continue
		}
		// Helpers in branches the samples do not take are checked by reading the tree.
		if errs := checkHelpers(t, fieldTypes, tables); len(errs) > 0 {
			for _, e := range errs {
				d.Errorf("templates."+name, "%s", e)
			}
			continue
		}
		// Rendering against typed sample values catches unknown fields and wrong
		// helper use now, not when the first citizen should hear about a result.
		if err := t.Execute(&bytes.Buffer{}, sample); err != nil {
			d.Errorf("templates."+name, "%s", strings.TrimPrefix(err.Error(), "template: "))
			continue
		}
		out[name] = t
	}
	return out
}

// checkHelpers reads a template's tree for helper calls whose arguments are known at
// load: label's table must exist, and a time helper's field must be of type time.
func checkHelpers(t *template.Template, fieldTypes map[string]string, tables map[string]transform.Table) []string {
	var errs []string
	walkCommands(t.Tree.Root, func(c *parse.CommandNode) {
		fn, ok := c.Args[0].(*parse.IdentifierNode)
		if !ok {
			return
		}
		switch {
		case fn.Ident == "label":
			if len(c.Args) < 2 {
				return
			}
			s, ok := c.Args[1].(*parse.StringNode)
			if !ok {
				errs = append(errs, fmt.Sprintf("label's first argument must be a table name in quotes, as in {{label \"units\" .unit}}; got %s", c.Args[1]))
				return
			}
			if _, known := tables[s.Text]; !known {
				errs = append(errs, fmt.Sprintf("label: no table is named %q (tables: %s)", s.Text, strings.Join(slices.Sorted(maps.Keys(tables)), ", ")))
			}
		case timeHelpers[fn.Ident] != "":
			if len(c.Args) != 2 {
				return
			}
			f, ok := c.Args[1].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 {
				return
			}
			if typ, known := fieldTypes[f.Ident[0]]; known && typ != TypeTime && typ != typeBroken && typ != "" {
				errs = append(errs, fmt.Sprintf("%s needs a time, but field %q is of type %s", fn.Ident, f.Ident[0], typ))
			}
		}
	})
	return errs
}

// walkCommands calls fn for every command in a template tree, in branches too.
func walkCommands(n parse.Node, fn func(*parse.CommandNode)) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			walkCommands(c, fn)
		}
	case *parse.ActionNode:
		walkCommands(x.Pipe, fn)
	case *parse.PipeNode:
		if x == nil {
			return
		}
		for _, c := range x.Cmds {
			walkCommands(c, fn)
		}
	case *parse.CommandNode:
		fn(x)
		for _, a := range x.Args {
			walkCommands(a, fn)
		}
	case *parse.IfNode:
		walkBranch(&x.BranchNode, fn)
	case *parse.RangeNode:
		walkBranch(&x.BranchNode, fn)
	case *parse.WithNode:
		walkBranch(&x.BranchNode, fn)
	case *parse.TemplateNode:
		walkCommands(x.Pipe, fn)
	}
}

func walkBranch(b *parse.BranchNode, fn func(*parse.CommandNode)) {
	walkCommands(b.Pipe, fn)
	walkCommands(b.List, fn)
	walkCommands(b.ElseList, fn)
}

func compileRules(d *config.Decoder, specs []RuleSpec, fieldTypes map[string]string, sample map[string]any, templates map[string]*template.Template, templateSpecs map[string]string, clock func() time.Time, broken func(string, bool) bool) []*rule {
	env := map[string]any{
		"before":   sample,
		"after":    sample,
		"type":     "",
		"snapshot": false,
		"changed":  func(string) bool { return false },
	}
	var out []*rule
	seen := map[string]bool{}
	for i, rs := range specs {
		p := fmt.Sprintf("rules[%d]", i)
		if broken(p, false) {
			continue
		}
		if !ruleNameRE(rs.Name) {
			d.Errorf(p+".name", "rule name %q must be lower-case, e.g. dossier.result_ready", rs.Name)
			continue
		}
		if seen[rs.Name] {
			d.Errorf(p+".name", "another rule is already named %q", rs.Name)
			continue
		}
		seen[rs.Name] = true
		prog, err := compileExpr(rs.When, env, clock, true)
		if err != nil {
			d.Errorf(p+".when", "%v", err)
			continue
		}
		members, args := memberNames(prog.prog, []string{"before", "after"}, "changed")
		bad := false
		for _, m := range append(members, args...) {
			if _, ok := fieldTypes[m]; !ok {
				msg := fmt.Sprintf("unknown field %q", m)
				if s := closestName(m, fieldTypes); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				d.Errorf(p+".when", "%s", msg)
				bad = true
			}
		}
		r := &rule{name: rs.Name, when: prog, onSnapshot: rs.OnSnapshot}
		if !compileMaxAge(d, p, rs, fieldTypes, r) {
			bad = true
		}
		if rs.At != "" {
			at, err := compileAt(rs.At, fieldTypes)
			switch {
			case err != nil:
				d.Errorf(p+".at", "%v", err)
				bad = true
			case rs.MaxAge != 0 || rs.OnSnapshot:
				d.Errorf(p+".at", "a timer rule (at:) fires once per threshold; max_age and on_snapshot do not apply")
				bad = true
			default:
				r.at, r.atSpec = at, strings.Join(strings.Fields(rs.At), " ")
			}
		}
		if n := rs.Notify; n != nil {
			r.tmplName, r.phone, r.userID, r.audience, r.officials = n.Template, n.Phone, n.UserID, n.Audience, n.Officials
			r.tmpl = templates[n.Template]
			if _, declared := templateSpecs[n.Template]; !declared {
				d.Errorf(p+".notify.template", "no template is named %q", n.Template)
				bad = true
			}
			for _, f := range []struct{ key, name string }{{"phone", n.Phone}, {"user_id", n.UserID}, {"audience", n.Audience}} {
				if f.name == "" {
					continue
				}
				typ, ok := fieldTypes[f.name]
				if !ok {
					d.Errorf(p+".notify."+f.key, "unknown field %q", f.name)
					bad = true
					continue
				}
				// A phone number sent to Zalo must be one the mapping normalised and
				// validated; any other field would send whatever the agency typed.
				if f.key == "phone" && typ != TypePhoneVN && typ != typeBroken {
					d.Errorf(p+".notify.phone", "field %q is of type %s; a phone to notify must be a field of type phone_vn", f.name, typeName(typ))
					bad = true
				}
			}
			citizen := n.Phone != "" || n.UserID != "" || n.Audience != ""
			switch {
			case n.Officials && citizen:
				// One rule event carries one message: a citizen's notice and the
				// officials' alert are two rules.
				d.Errorf(p+".notify.officials", "officials: true addresses the agency's officials; phone, user_id and audience address a citizen: use one rule for each")
				bad = true
			case !n.Officials && !citizen:
				d.Errorf(p+".notify", "name who hears it: the field phone, user_id or audience, or officials: true")
				bad = true
			}
		}
		if !bad {
			out = append(out, r)
		}
	}
	return out
}

// compileMaxAge checks a rule's max_age and age_field and keeps them in r.
func compileMaxAge(d *config.Decoder, p string, rs RuleSpec, fieldTypes map[string]string, r *rule) bool {
	hasAge, hasField := d.Has(p+".max_age"), rs.AgeField != ""
	switch {
	case !hasAge && !hasField:
		return true
	case hasAge && !hasField:
		d.Errorf(p+".max_age", "max_age needs age_field: the time field of the record the age is measured from (e.g. updated_at)")
		return false
	case !hasAge:
		d.Errorf(p+".age_field", "age_field needs max_age: how old a change may be to still notify (e.g. 72h)")
		return false
	}
	ok := true
	if rs.MaxAge.D() <= 0 {
		d.Errorf(p+".max_age", "max_age must be more than zero")
		ok = false
	}
	typ, known := fieldTypes[rs.AgeField]
	switch {
	case !known:
		msg := fmt.Sprintf("unknown field %q", rs.AgeField)
		if s := closestName(rs.AgeField, fieldTypes); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		d.Errorf(p+".age_field", "%s", msg)
		ok = false
	case typ != TypeTime && typ != typeBroken:
		d.Errorf(p+".age_field", "field %q is of type %s; the age is measured from a field of type time", rs.AgeField, typeName(typ))
		ok = false
	}
	r.maxAge, r.ageField = rs.MaxAge.D(), rs.AgeField
	return ok
}

// Firing is what evaluating a change event's rules produced. Every rule is
// evaluated even when an earlier one fails, so one broken template does not silence
// the other notices of the same change.
type Firing struct {
	Events []*pipeline.Event // rule events produced, in rule order
	Failed []RuleFailure     // rules whose condition or template failed at run time
	TooOld []string          // rules whose condition held but whose change was older than max_age
}

// RuleFailure is one rule that could not be evaluated on a change.
type RuleFailure struct {
	Rule string
	Err  error
}

func (f RuleFailure) Error() string { return fmt.Sprintf("rule %s: %v", f.Rule, f.Err) }

func (f RuleFailure) Unwrap() error { return f.Err }

// ErrNoSuchRule is FireRule's failure for a name the mapping has no rule for.
var ErrNoSuchRule = errors.New("no such rule")

// Fire evaluates the mapping's rules against a change event and returns the rule
// events it triggers, each with its rendered message, along with the rules that
// failed and those skipped as too old. ev.Before and ev.After must hold typed values
// (as Apply and Typed produce).
func (m *Mapping) Fire(ev *pipeline.Event) Firing {
	var out Firing
	if len(m.rules) == 0 {
		return out
	}
	// The environment is built only for a rule that runs: during a first sync
	// most rules are skipped (timers, rules without on_snapshot), and building it
	// for every row cost several allocations each.
	var env map[string]any
	for _, r := range m.rules {
		if !r.firesOn(ev) {
			continue
		}
		if env == nil {
			env = ruleEnv(ev)
		}
		m.fireOne(r, ev, env, &out)
	}
	return out
}

// firesOn says whether a rule is evaluated on a change event at all: a timer rule
// fires from the clock (FireTimer), and a first sync's change only reaches the
// rules that ask for it.
func (r *rule) firesOn(ev *pipeline.Event) bool {
	return r.at == nil && (!ev.Snapshot || r.onSnapshot)
}

// FireRule evaluates one named rule against a change event, as Fire would (used to
// retry a notice that failed, once its mapping is fixed). An unknown name is a
// failure wrapping ErrNoSuchRule.
func (m *Mapping) FireRule(ev *pipeline.Event, name string) Firing {
	var out Firing
	for _, r := range m.rules {
		if r.name == name {
			m.fireOne(r, ev, ruleEnv(ev), &out)
			return out
		}
	}
	out.Failed = append(out.Failed, RuleFailure{Rule: name, Err: fmt.Errorf("%w named %q in %s", ErrNoSuchRule, name, m.File)})
	return out
}

// ruleEnv is what rule conditions see of a change event.
func ruleEnv(ev *pipeline.Event) map[string]any {
	// A created record has no before and a deleted one no after: each reads as an
	// empty record, so a condition such as after.status == 9 is false, not an error.
	before, after := ev.Before, ev.After
	if before == nil {
		before = map[string]any{}
	}
	if after == nil {
		after = map[string]any{}
	}
	changed := make(map[string]bool, len(ev.Changed))
	for _, c := range ev.Changed {
		changed[c] = true
	}
	isNew := ev.Type == pipeline.EventCreated
	return map[string]any{
		"before":   before,
		"after":    after,
		"type":     ev.Type,
		"snapshot": ev.Snapshot,
		"changed": func(f string) bool {
			if isNew {
				return ev.After[f] != nil
			}
			return changed[f]
		},
	}
}

// fireOne evaluates one rule and records its outcome in out.
func (m *Mapping) fireOne(r *rule, ev *pipeline.Event, env map[string]any, out *Firing) {
	if !r.firesOn(ev) {
		return
	}
	v, err := r.when.run(env)
	if err != nil {
		out.Failed = append(out.Failed, RuleFailure{Rule: r.name, Err: err})
		return
	}
	if v != true {
		return
	}
	if m.tooOld(r, ev) {
		out.TooOld = append(out.TooOld, r.name)
		return
	}
	re := &pipeline.Event{
		ID:   pipeline.RuleEventID(ev.ID, r.name),
		Type: "rule", Rule: r.name, Source: ev.Source, Entity: ev.Entity, Key: ev.Key, Agency: ev.Agency,
		Version: ev.Version, Snapshot: ev.Snapshot, Changed: ev.Changed, Before: ev.Before, After: ev.After,
		DetectedAt: ev.DetectedAt,
	}
	if r.tmpl != nil {
		rec := record(ev)
		var buf bytes.Buffer
		if err := r.tmpl.Execute(&buf, rec); err != nil {
			out.Failed = append(out.Failed, RuleFailure{Rule: r.name, Err: fmt.Errorf("template %s: %w", r.tmplName, err)})
			return
		}
		re.Message = &pipeline.Message{Template: r.tmplName, Text: buf.String()}
		if r.phone != "" {
			re.Message.Phone = textOf(rec[r.phone])
		}
		if r.userID != "" {
			re.Message.UserID = textOf(rec[r.userID])
		}
		if r.audience != "" {
			re.Message.Audience = textOf(rec[r.audience])
		}
		re.Message.Officials = r.officials
	}
	out.Events = append(out.Events, re)
}

// tooOld reports whether the rule has a max_age and the record's age field is older
// than it at the mapping's clock. An empty age field is not too old: the guard only
// holds back changes it can prove are stale (make the field required to be strict).
func (m *Mapping) tooOld(r *rule, ev *pipeline.Event) bool {
	if r.maxAge <= 0 {
		return false
	}
	t, ok := record(ev)[r.ageField].(time.Time)
	if !ok || t.IsZero() {
		return false
	}
	return m.clock().Sub(t) > r.maxAge
}

// record is the record a rule event speaks about: as it is after the change, or,
// for a deletion, as it was last known (a cancelled outage's area and times, a
// withdrawn dossier's citizen).
func record(ev *pipeline.Event) map[string]any {
	if ev.After == nil && ev.Type == pipeline.EventDeleted {
		return ev.Before
	}
	return ev.After
}

func closestName[V any](key string, names map[string]V) string {
	return config.Suggest(key, slices.Collect(maps.Keys(names)))
}

// OfficialRules lists the rules whose notices address the agency's officials
// (notify: officials: true), in rule order.
func (m *Mapping) OfficialRules() []string {
	var out []string
	for _, r := range m.rules {
		if r.officials {
			out = append(out, r.name)
		}
	}
	return out
}
