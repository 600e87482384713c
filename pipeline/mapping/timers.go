package mapping

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// EventTimer is what a timer rule's condition sees as type; the events it fires
// are rule events (Type "rule", Rule the rule's name), routed by rule name like
// any other.
const EventTimer = "timer"

// timerAt is a timer rule's threshold: a time field of the record plus an offset.
type timerAt struct {
	field  string
	offset time.Duration
}

// atRE reads "due_at", "due_at - 2d", "due_at + 1h30m", "due_at - 1d12h".
var atRE = regexp.MustCompile(`^\s*([a-z_][a-z0-9_]*)\s*(?:([+-])\s*([0-9a-z.]+))?\s*$`)

// parseOffset reads a duration that may start with whole days ("2d", "1d12h").
func parseOffset(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, fmt.Errorf("bad days %q", s[:i+1])
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return days + d, nil
}

// compileAt checks a rule's at: against the fields.
func compileAt(spec string, fieldTypes map[string]string) (*timerAt, error) {
	m := atRE.FindStringSubmatch(spec)
	if m == nil {
		return nil, fmt.Errorf("want a time field, optionally plus or minus a duration, such as \"due_at - 2d\" or \"due_at\"")
	}
	t := &timerAt{field: m[1]}
	typ, known := fieldTypes[t.field]
	switch {
	case !known:
		msg := fmt.Sprintf("unknown field %q", t.field)
		if s := closestName(t.field, fieldTypes); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return nil, fmt.Errorf("%s", msg)
	case typ != TypeTime && typ != typeBroken:
		return nil, fmt.Errorf("field %q is of type %s; a timer counts from a field of type time", t.field, typeName(typ))
	}
	if m[3] != "" {
		d, err := parseOffset(m[3])
		if err != nil {
			return nil, fmt.Errorf("%v: write days as 2d, and hours, minutes as 12h, 30m", err)
		}
		if m[2] == "-" {
			d = -d
		}
		t.offset = d
	}
	return t, nil
}

// TimerArm is when one timer rule of a record fires: its field plus the offset.
type TimerArm struct {
	Rule string
	At   time.Time // zero: the record has no value in the field, nothing to fire
}

// HasTimers reports whether the mapping has timer rules (rules with at:).
func (m *Mapping) HasTimers() bool {
	for _, r := range m.rules {
		if r.at != nil {
			return true
		}
	}
	return false
}

// TimerRules lists the timer rules with their at: text, in rule order; a change
// of this list means the stored timers must be armed again.
func (m *Mapping) TimerRules() []string {
	var out []string
	for _, r := range m.rules {
		if r.at != nil {
			out = append(out, r.name+"@"+r.atSpec)
		}
	}
	return out
}

// Timers returns, for each timer rule, when it fires for a record with these
// (typed) fields.
func (m *Mapping) Timers(fields map[string]any) []TimerArm {
	return m.AppendTimers(nil, fields)
}

// AppendTimers appends Timers(fields) to out: a caller with a buffer of its own
// arms each record without allocating.
func (m *Mapping) AppendTimers(out []TimerArm, fields map[string]any) []TimerArm {
	for _, r := range m.rules {
		if r.at == nil {
			continue
		}
		arm := TimerArm{Rule: r.name}
		if t, ok := fields[r.at.field].(time.Time); ok && !t.IsZero() {
			arm.At = t.UTC().Add(r.at.offset)
		}
		out = append(out, arm)
	}
	return out
}

// TimerEventID identifies the event a timer rule fires for a record at one
// threshold: the same record, rule and instant always give the same id (a timer
// fires once), a moved threshold gives a new one.
func TimerEventID(source, entity, key, rule string, at time.Time) string {
	base := pipeline.EventID(source, entity, key, 0, EventTimer, at.UTC().Format(time.RFC3339Nano))
	return pipeline.RuleEventID(base, rule)
}

// FireTimer evaluates a timer rule whose threshold at has passed, on the record as
// it is now (typed fields, as Typed returns them). When the rule's when: holds it
// returns the event, with its rendered message; when it does not (a finished
// dossier) it returns nil. The event's Before and After are both the record.
func (m *Mapping) FireTimer(rec pipeline.Record, source string, version int64, ruleName string, at, now time.Time) (*pipeline.Event, error) {
	var r *rule
	for _, x := range m.rules {
		if x.name == ruleName && x.at != nil {
			r = x
		}
	}
	if r == nil {
		return nil, fmt.Errorf("%w named %q with at: in %s", ErrNoSuchRule, ruleName, m.File)
	}
	env := map[string]any{
		"before": rec.Fields, "after": rec.Fields, "type": EventTimer, "snapshot": false,
		"changed": func(string) bool { return false },
	}
	v, err := r.when.run(env)
	if err != nil {
		return nil, RuleFailure{Rule: r.name, Err: err}
	}
	if v != true {
		return nil, nil
	}
	ev := &pipeline.Event{
		ID:   TimerEventID(source, rec.Entity, rec.Key, ruleName, at),
		Type: "rule", Rule: r.name, Source: source, Entity: rec.Entity, Key: rec.Key, Agency: rec.Agency,
		Version: version, After: rec.Fields, DetectedAt: now,
	}
	if r.tmpl != nil {
		var buf bytes.Buffer
		if err := r.tmpl.Execute(&buf, rec.Fields); err != nil {
			return nil, RuleFailure{Rule: r.name, Err: fmt.Errorf("template %s: %w", r.tmplName, err)}
		}
		ev.Message = &pipeline.Message{Template: r.tmplName, Text: buf.String()}
		if r.phone != "" {
			ev.Message.Phone = textOf(rec.Fields[r.phone])
		}
		if r.userID != "" {
			ev.Message.UserID = textOf(rec.Fields[r.userID])
		}
		if r.audience != "" {
			ev.Message.Audience = textOf(rec.Fields[r.audience])
		}
		ev.Message.Officials = r.officials
	}
	return ev, nil
}
