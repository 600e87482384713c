package mapping

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// RuleSpec is a named event fired when a condition over before/after holds.
type RuleSpec struct {
	Name string `yaml:"name" required:"true"`
	// When is an expression over before, after, changed("field"), type, snapshot
	// and now(); it must be true or false.
	When   string      `yaml:"when" required:"true"`
	Notify *NotifySpec `yaml:"notify"`
	// OnSnapshot lets the rule fire during a source's first sync. Off by default:
	// nobody wants a million messages on the day the daemon is installed.
	OnSnapshot bool `yaml:"on_snapshot"`
}

// NotifySpec says who hears about a rule and in what words.
type NotifySpec struct {
	Template string `yaml:"template" required:"true"` // a name under templates:
	Phone    string `yaml:"phone"`                    // field holding the citizen's phone
	UserID   string `yaml:"user_id"`                  // field holding a Zalo user id
	Audience string `yaml:"audience"`                 // field whose value's subscribers hear it (a commune)
}

type rule struct {
	name       string
	when       *program
	tmpl       *template.Template
	tmplName   string
	phone      string
	userID     string
	audience   string
	onSnapshot bool
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

// templateFuncs are the helpers templates may use; dates and times are shown in the
// mapping's zone, the way a citizen reads them.
func templateFuncs(zone *time.Location, tables map[string]transform.Table) template.FuncMap {
	asTime := func(v any) (time.Time, bool) {
		t, ok := v.(time.Time)
		return t, ok && !t.IsZero()
	}
	return template.FuncMap{
		"date": func(v any) string {
			if t, ok := asTime(v); ok {
				return t.In(zone).Format("02/01/2006")
			}
			return ""
		},
		"time": func(v any) string {
			if t, ok := asTime(v); ok {
				return t.In(zone).Format("15:04")
			}
			return ""
		},
		"datetime": func(v any) string {
			if t, ok := asTime(v); ok {
				return t.In(zone).Format("15:04 02/01/2006")
			}
			return ""
		},
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
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"default": func(def string, v any) string {
			if s := textOf(v); s != "" {
				return s
			}
			return def
		},
	}
}

func compileTemplates(d *config.Decoder, specs map[string]string, sample map[string]any, zone *time.Location, tables map[string]transform.Table) map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs(zone, tables)).Parse(specs[name])
		if err != nil {
			d.Errorf("templates."+name, "%s", strings.TrimPrefix(err.Error(), "template: "))
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

func compileRules(d *config.Decoder, specs []RuleSpec, fieldTypes map[string]string, sample map[string]any, templates map[string]*template.Template, templateSpecs map[string]string, clock func() time.Time) []*rule {
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
		if n := rs.Notify; n != nil {
			r.tmplName, r.phone, r.userID, r.audience = n.Template, n.Phone, n.UserID, n.Audience
			r.tmpl = templates[n.Template]
			if _, declared := templateSpecs[n.Template]; !declared {
				d.Errorf(p+".notify.template", "no template is named %q", n.Template)
				bad = true
			}
			for _, f := range []struct{ key, name string }{{"phone", n.Phone}, {"user_id", n.UserID}, {"audience", n.Audience}} {
				if f.name == "" {
					continue
				}
				if _, ok := fieldTypes[f.name]; !ok {
					d.Errorf(p+".notify."+f.key, "unknown field %q", f.name)
					bad = true
				}
			}
			if n.Phone == "" && n.UserID == "" && n.Audience == "" {
				d.Errorf(p+".notify", "name the field that says who hears it: phone, user_id or audience")
				bad = true
			}
		}
		if !bad {
			out = append(out, r)
		}
	}
	return out
}

// Fire evaluates the mapping's rules against a change event and returns the rule
// events it triggers, each with its rendered message. ev.Before and ev.After must
// hold typed values (as Apply and Typed produce).
func (m *Mapping) Fire(ev *pipeline.Event) ([]*pipeline.Event, error) {
	if len(m.rules) == 0 {
		return nil, nil
	}
	before := ev.Before
	if before == nil {
		before = map[string]any{}
	}
	changed := map[string]bool{}
	for _, c := range ev.Changed {
		changed[c] = true
	}
	isNew := ev.Type == pipeline.EventCreated
	env := map[string]any{
		"before":   before,
		"after":    ev.After,
		"type":     ev.Type,
		"snapshot": ev.Snapshot,
		"changed": func(f string) bool {
			if isNew {
				return ev.After[f] != nil
			}
			return changed[f]
		},
	}
	var out []*pipeline.Event
	for _, r := range m.rules {
		if ev.Snapshot && !r.onSnapshot {
			continue
		}
		v, err := r.when.run(env)
		if err != nil {
			return out, fmt.Errorf("rule %s: %w", r.name, err)
		}
		if v != true {
			continue
		}
		re := &pipeline.Event{
			Type: "rule", Rule: r.name, Source: ev.Source, Entity: ev.Entity, Key: ev.Key, Agency: ev.Agency,
			Version: ev.Version, Snapshot: ev.Snapshot, Changed: ev.Changed, Before: ev.Before, After: ev.After,
			DetectedAt: ev.DetectedAt,
		}
		re.ID = pipeline.EventID(re.Source, re.Entity, re.Key, re.Version, "rule:"+r.name, ev.ID)
		if r.tmpl != nil {
			var buf bytes.Buffer
			if err := r.tmpl.Execute(&buf, ev.After); err != nil {
				return out, fmt.Errorf("rule %s: template %s: %w", r.name, r.tmplName, err)
			}
			re.Message = &pipeline.Message{Template: r.tmplName, Text: buf.String()}
			if r.phone != "" {
				re.Message.Phone = textOf(ev.After[r.phone])
			}
			if r.userID != "" {
				re.Message.UserID = textOf(ev.After[r.userID])
			}
			if r.audience != "" {
				re.Message.Audience = textOf(ev.After[r.audience])
			}
		}
		out = append(out, re)
	}
	return out, nil
}

func closestName[V any](key string, names map[string]V) string {
	return config.Suggest(key, slices.Collect(maps.Keys(names)))
}
