package mapping

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// compileErr compiles src as m.yaml and returns its load errors as text ("" when
// it compiles).
func compileErr(t *testing.T, src string) string {
	t.Helper()
	_, err := Compile("m.yaml", []byte(src), Options{})
	if err == nil {
		return ""
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want config.Errors, got %T: %v", err, err)
	}
	return err.Error()
}

const clockBase = `entity: dossier
key: [code]
fields:
  code:   { required: true }
  status: { type: int }
  due_at: { type: time }
computed:
`

func TestComputedFieldsMayNotReadTheClock(t *testing.T) {
	tests := []struct {
		name, expr, call string // call: the clock helper named in the error; "" when allowed
	}{
		{"now in a comparison", `status in [2, 4] && due_at < now()`, "now"},
		{"days_until", `days_until(due_at)`, "days_until"},
		{"now deep in a call argument", `coalesce(status > 2 ? due_at < now() : false, false)`, "now"},
		{"now as a ternary branch", `status > 0 ? now() : due_at`, "now"},
		{"now() inside a string is text, not a call", `concat("now()", code)`, ""},
		{"time-independent", `status in [9, 10] && due_at != nil`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compileErr(t, clockBase+"  figure: '"+tt.expr+"'\n")
			if tt.call == "" {
				if got != "" {
					t.Fatalf("a time-independent computed field was refused:\n%s", got)
				}
				return
			}
			for _, want := range []string{
				"m.yaml:8:11: computed.figure: a computed field may not read the clock: it calls " + tt.call + "()",
				`"overdue now" are computed by the dashboard at query time`,
				"deadline events come from a timer, not from a mapping",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("errors lack %q:\n%s", want, got)
				}
			}
		})
	}
	// Rules run when a change is detected: now() stays allowed in their conditions.
	src := clockBase + "  open: 'status in [2, 4]'\nrules:\n  - name: late\n    when: 'after.open && after.due_at < now() && days_until(after.due_at) < 0'\n"
	if got := compileErr(t, src); got != "" {
		t.Fatalf("now() in a rule condition was refused:\n%s", got)
	}
}

const ageBase = `entity: dossier
key: [code]
fields:
  code:        { required: true }
  status:      { type: int }
  finished_at: { type: time }
rules:
  - name: dossier.result_ready
    when: 'changed("status") && after.status == 9'
`

func TestRuleMaxAgeIsCheckedAtLoad(t *testing.T) {
	tests := []struct{ rule, want string }{
		{"    max_age: 72h\n", "m.yaml:10:14: rules[0].max_age: max_age needs age_field"},
		{"    age_field: finished_at\n", "m.yaml:10:16: rules[0].age_field: age_field needs max_age"},
		{"    max_age: 72h\n    age_field: finishd_at\n", `m.yaml:11:16: rules[0].age_field: unknown field "finishd_at" (did you mean "finished_at"?)`},
		{"    max_age: 72h\n    age_field: status\n", `m.yaml:11:16: rules[0].age_field: field "status" is of type int; the age is measured from a field of type time`},
		{"    max_age: 0s\n    age_field: finished_at\n", "m.yaml:10:14: rules[0].max_age: max_age must be more than zero"},
		{"    max_age: -1h\n    age_field: finished_at\n", `m.yaml:10:14: rules[0].max_age: duration "-1h" is negative`},
		{"    max_age: 3 days\n    age_field: finished_at\n", `rules[0].max_age: bad duration "3 days"`},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.rule), func(t *testing.T) {
			if got := compileErr(t, ageBase+tt.rule); !strings.Contains(got, tt.want) {
				t.Errorf("errors lack %q:\n%s", tt.want, got)
			}
		})
	}
	if got := compileErr(t, ageBase+"    max_age: 72h\n    age_field: finished_at\n"); got != "" {
		t.Fatalf("a valid max_age was refused:\n%s", got)
	}
}

func TestRuleMaxAgeHoldsBackOldChanges(t *testing.T) {
	m, err := Compile("m.yaml", []byte(ageBase+"    max_age: 72h\n    age_field: finished_at\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	m.SetClock(func() time.Time { return now })
	tests := []struct {
		name     string
		status   int
		finished any
		events   int
		tooOld   []string
	}{
		{"a fresh change notifies", 9, now.Add(-71 * time.Hour), 1, nil},
		{"exactly max_age old still notifies", 9, now.Add(-72 * time.Hour), 1, nil},
		{"an old change is held back and reported", 9, now.Add(-73 * time.Hour), 0, []string{"dossier.result_ready"}},
		// Only a change provably old is held back; required: true on the field is the
		// strict choice.
		{"no time: notifies", 9, nil, 1, nil},
		{"the condition does not hold: neither", 4, now.Add(-100 * time.Hour), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prior := &pipeline.Prior{Hash: "x", Version: 1, Fields: map[string]any{"code": "A1", "status": int64(4)}}
			after := map[string]any{"code": "A1", "status": int64(tt.status), "finished_at": tt.finished}
			ev := pipeline.Diff("s", prior, pipeline.Record{Entity: "dossier", Key: "A1", Fields: after}, "y", false, now)
			got := m.Fire(ev)
			if len(got.Events) != tt.events || fmt.Sprint(got.TooOld) != fmt.Sprint(tt.tooOld) || len(got.Failed) != 0 {
				t.Fatalf("fired %d events, too old %v, failed %v; want %d events, too old %v", len(got.Events), got.TooOld, got.Failed, tt.events, tt.tooOld)
			}
		})
	}
}

const failingRules = `entity: dossier
key: [code]
fields:
  code:   { required: true }
  phone:  { type: phone_vn }
  status: { type: int }
rules:
  - name: a.bad_condition
    when: 'int(after.code) > 0'
  - name: b.bad_template
    when: 'changed("status")'
    notify: { phone: phone, template: fragile }
  - name: c.fine
    when: 'changed("status")'
    notify: { phone: phone, template: fine }
  - name: d.bad_condition_too
    when: 'int(after.code) < 0'
templates:
  # Renders against the samples (status 0); fails on a real status 9 with a short code.
  fragile: '{{if eq .status 9}}{{index .code 5}}{{end}}'
  fine: 'Hồ sơ {{.code}}: trạng thái {{.status}}.'
`

func changeOf(t *testing.T, m *Mapping, before, after pipeline.Row) *pipeline.Event {
	t.Helper()
	prev, err := m.Apply(before, "")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := m.Apply(after, "")
	if err != nil {
		t.Fatal(err)
	}
	prior := &pipeline.Prior{Hash: prev.Hash(), Version: 1, Fields: prev.Fields}
	return pipeline.Diff("s", prior, rec, rec.Hash(), false, time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC))
}

func TestFireEvaluatesEveryRuleAfterAFailure(t *testing.T) {
	m := mustCompile(t, failingRules)
	ev := changeOf(t, m, pipeline.Row{"code": "A1", "phone": "0912345678", "status": 4}, pipeline.Row{"code": "A1", "phone": "0912345678", "status": 9})
	got := m.Fire(ev)
	if len(got.Events) != 1 || got.Events[0].Rule != "c.fine" || got.Events[0].Message.Text != "Hồ sơ A1: trạng thái 9." {
		t.Fatalf("events = %+v, want c.fine's despite the failures before it", got.Events)
	}
	if got.Events[0].ID != pipeline.RuleEventID(ev.ID, "c.fine") {
		t.Errorf("rule event id %s is not RuleEventID(change id, rule)", got.Events[0].ID)
	}
	var failed []string
	for _, f := range got.Failed {
		failed = append(failed, f.Rule)
		if f.Err == nil || !strings.HasPrefix(f.Error(), "rule "+f.Rule+": ") {
			t.Errorf("failure %q does not name its rule and cause", f.Error())
		}
	}
	if fmt.Sprint(failed) != "[a.bad_condition b.bad_template d.bad_condition_too]" {
		t.Fatalf("failed = %v, want every failing rule, in order", failed)
	}
	if !strings.Contains(got.Failed[1].Error(), "template fragile") {
		t.Errorf("template failure = %q", got.Failed[1].Error())
	}
}

func TestFireRuleEvaluatesOneNamedRule(t *testing.T) {
	m := mustCompile(t, failingRules)
	ev := changeOf(t, m, pipeline.Row{"code": "A1", "phone": "0912345678", "status": 4}, pipeline.Row{"code": "A1", "phone": "0912345678", "status": 9})
	one := m.FireRule(ev, "c.fine")
	if len(one.Events) != 1 || len(one.Failed) != 0 || one.Events[0].ID != m.Fire(ev).Events[0].ID {
		t.Fatalf("FireRule(c.fine) = %+v, want the event Fire produces for it", one)
	}
	if bad := m.FireRule(ev, "b.bad_template"); len(bad.Events) != 0 || len(bad.Failed) != 1 || bad.Failed[0].Rule != "b.bad_template" {
		t.Fatalf("FireRule(b.bad_template) = %+v, want its failure only", bad)
	}
	if none := m.FireRule(ev, "z.nope"); len(none.Failed) != 1 || !errors.Is(none.Failed[0].Err, ErrNoSuchRule) {
		t.Fatalf("FireRule of an unknown rule = %+v, want ErrNoSuchRule", none)
	}
}

// TestFieldStepsRunInOrder shows each per-field step working on the previous one's
// output: from/join -> map -> transform -> default (when blank) -> type -> required -> in.
func TestFieldStepsRunInOrder(t *testing.T) {
	tests := []struct {
		name, field string
		row         pipeline.Row
		want        any
		err         string
	}{
		// from/join -> map: the map matches the joined text.
		{"map sees the joined columns", `{ from: [A, B], join: "-", map: { "x-y": matched } }`, pipeline.Row{"A": " x ", "B": "y"}, "matched", ""},
		// map -> transform: the transform works on the map's replacement.
		{"transform sees the map's output", `{ from: A, map: { "1": " mới " }, transform: [trim, upper] }`, pipeline.Row{"A": "1"}, "MỚI", ""},
		{"a number the map yields is text to the transform", `{ from: A, type: int, map: { a: 7 }, transform: [{ prefix: "1" }] }`, pipeline.Row{"A": "a"}, int64(17), ""},
		// transform -> default: a value the transform leaves blank takes the default,
		// which is not transformed itself.
		{"default fills what the transform blanked", `{ from: A, transform: [digits], default: "không rõ" }`, pipeline.Row{"A": "n/a"}, "không rõ", ""},
		{"default is not transformed", `{ from: A, transform: [upper], default: abc }`, pipeline.Row{}, "abc", ""},
		{"a map to null takes the default", `{ from: A, type: int, map: { "-": ~ }, default: 0 }`, pipeline.Row{"A": "-"}, int64(0), ""},
		// default -> type: the default is typed like any value.
		{"default is typed", `{ from: A, type: decimal, default: "8,75" }`, pipeline.Row{"A": "  "}, 8.75, ""},
		// transform -> type: typing reads the transformed text.
		{"type reads the transformed text", `{ from: A, type: int, transform: [{ regex: 'HS-(\d+)' }] }`, pipeline.Row{"A": "HS-0042"}, int64(42), ""},
		// type -> required: a value typing reads as absent is missing.
		{"an absent mark is missing for required", `{ from: A, type: mark, required: true }`, pipeline.Row{"A": "VẮNG"}, nil, "required value is missing"},
		{"an absent mark is not replaced by the default", `{ from: A, type: mark, default: 0 }`, pipeline.Row{"A": "VẮNG"}, nil, ""},
		// type -> in: allowed values compare typed values ("02" is 2).
		{"in compares typed values", `{ from: A, type: int, in: [1, 2] }`, pipeline.Row{"A": "02"}, int64(2), ""},
		{"in checks the default too", `{ from: A, type: int, default: 3, in: [1, 2] }`, pipeline.Row{}, nil, "value 3 is not one of [1, 2]"},
		{"in sees the mapped, transformed, typed value", `{ from: A, type: int, map: { x: " 5 " }, transform: [trim], in: [5] }`, pipeline.Row{"A": "x"}, int64(5), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustCompile(t, "entity: e\nkey: [k]\nfields:\n  k: { from: K }\n  f: "+tt.field+"\n")
			tt.row["K"] = "1"
			rec, err := m.Apply(tt.row, "")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), "f (column ") || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming f and %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Fields["f"]; got != tt.want {
				t.Fatalf("f = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestAllowedValuesAreTypedNotTransformed: in: (and default:) list what the field
// holds, so a field with a lookup lists looked-up values, and numbers a map or a
// lookup yields compare as numbers.
func TestAllowedValuesAreTypedNotTransformed(t *testing.T) {
	src := `entity: e
key: [k]
fields:
  k:       { from: K }
  channel: { from: Kenh, transform: [trim, { lookup: channels }], in: [trực tiếp, trực tuyến], default: trực tiếp }
  grade:   { from: Hang, type: int, transform: [{ lookup: grades }], in: [10, 20] }
  level:   { from: Muc, type: int, map: { thấp: 1, cao: 3 }, in: [1, 3] }
tables:
  channels: { values: { "1": trực tiếp, "2": trực tuyến, "3": bưu chính } }
  grades:   { values: { A: "10", B: "20", C: "30" } }
`
	m := mustCompile(t, src)
	tests := []struct {
		name string
		row  pipeline.Row
		want map[string]any
		err  []string
	}{
		{"looked-up and mapped values pass", pipeline.Row{"Kenh": 2, "Hang": "B", "Muc": "cao"},
			map[string]any{"channel": "trực tuyến", "grade": int64(20), "level": int64(3)}, nil},
		{"the default is a looked-up value, not a code", pipeline.Row{"Hang": "A"}, map[string]any{"channel": "trực tiếp", "grade": int64(10)}, nil},
		{"real violations name the field, the value and the allowed list", pipeline.Row{"Kenh": "3", "Hang": "C", "Muc": "thấp"}, nil, []string{
			"channel (column Kenh): value bưu chính is not one of [trực tiếp, trực tuyến]",
			"grade (column Hang): value 30 is not one of [10, 20]",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.row["K"] = "1"
			rec, err := m.Apply(tt.row, "")
			if tt.err != nil {
				for _, w := range tt.err {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, w := range tt.want {
				if got := rec.Fields[k]; got != w {
					t.Errorf("%s = %#v, want %#v", k, got, w)
				}
			}
		})
	}
	// An allowed value that is not of the field's type is still a load error, naming
	// the field, the value and why.
	got := compileErr(t, "entity: e\nkey: [k]\nfields:\n  k: { from: K }\n  n: { from: N, type: int, in: [1, hai] }\n")
	if want := `m.yaml:5:36: fields.n.in[1]: allowed value hai of field n is not a valid int: "hai" is not a whole number`; !strings.Contains(got, want) {
		t.Errorf("errors lack %q:\n%s", want, got)
	}
}

func TestNotifyPhoneMustBeAPhoneField(t *testing.T) {
	src := `entity: dossier
key: [code]
fields:
  code:  { required: true }
  phone: { type: phone_vn }
  sdt:   { from: SoDienThoai }
computed:
  any_phone: 'coalesce(phone, sdt)'
rules:
  - name: a
    when: 'true'
    notify: { phone: sdt, template: t }
  - name: b
    when: 'true'
    notify: { phone: any_phone, template: t }
  - name: c
    when: 'true'
    notify: { phone: phone, template: t }
templates:
  t: 'x'
`
	got := compileErr(t, src)
	for _, want := range []string{
		`m.yaml:12:22: rules[0].notify.phone: field "sdt" is of type string; a phone to notify must be a field of type phone_vn`,
		`m.yaml:15:22: rules[1].notify.phone: field "any_phone" is of type unknown until run time (a computed value); a phone to notify must be a field of type phone_vn`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "rules[2]") {
		t.Errorf("a phone_vn field was refused:\n%s", got)
	}
}

func TestTemplateHelpersOnTheWrongTypeAreLoadErrors(t *testing.T) {
	base := `entity: dossier
key: [code]
fields:
  code:   { required: true }
  status: { type: int }
  due_at: { type: time }
  unit:   { }
tables:
  units: { values: { CG: UBND huyện Cần Giuộc } }
templates:
  t: '%s'
`
	tests := []struct{ tmpl, want string }{
		{`{{date .code}}`, `m.yaml:11:6: templates.t: date needs a time, but field "code" is of type string`},
		{`{{time .status}}`, `time needs a time, but field "status" is of type int`},
		{`{{if .unit}}{{datetime .code}}{{end}}`, `datetime needs a time, but field "code" is of type string`},
		{`{{.code | date}}`, `date needs a time, got text`},
		{`{{label "unit" .unit}}`, `label: no table is named "unit" (tables: units)`},
		{`{{if .unit}}{{label "nope" .unit}}{{end}}`, `label: no table is named "nope"`},
		{`{{label .code .unit}}`, `label's first argument must be a table name in quotes`},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			if got := compileErr(t, fmt.Sprintf(base, tt.tmpl)); !strings.Contains(got, tt.want) {
				t.Errorf("errors lack %q:\n%s", tt.want, got)
			}
		})
	}
	// Right use compiles; an empty time, an empty optional text and an unlabelled
	// code render without failing the rule.
	m := mustCompile(t, fmt.Sprintf(base, `{{date .due_at}}|{{time .due_at}}|{{upper .unit}}|{{label "units" .unit}}|{{default "?" .unit}}`)+
		"rules:\n  - name: r\n    when: 'true'\n    notify: { audience: code, template: t }\n")
	for row, want := range map[string]string{"": "||||?", "XX": "||XX|XX|XX", "CG": "||CG|UBND huyện Cần Giuộc|CG"} {
		ev := changeOf(t, m, pipeline.Row{"code": "A1", "status": 1}, pipeline.Row{"code": "A1", "status": 2, "unit": row})
		got := m.Fire(ev)
		if len(got.Failed) > 0 || len(got.Events) != 1 || got.Events[0].Message.Text != want {
			t.Errorf("unit %q: message %+v failed %v, want %q", row, got.Events, got.Failed, want)
		}
	}
}

// TestEveryMistakeOfAMappingAtOnce: decoding mistakes (an unknown key, a wrong type)
// and semantic ones come back together, without cascades from what failed to decode.
func TestEveryMistakeOfAMappingAtOnce(t *testing.T) {
	src := `entity: dossier
key: [code]
fields:
  code:   { from: MaHoSo, required: true }
  status: { from: TrangThai, type: int, requird: true }
  fee:    { from: Phi, type: decimal, default: abc }
  unit:   { from: DonVi, in: 5 }
  due_at: { from: Han, type: time }
computed:
  late: 'due_at < now()'
  fee2: 'fee * 2'
rules:
  - name: dossier.fee
    when: 'changed("fee")'
    notify: { phone: code, template: t }
  - name: dossier.due
    when: 'changed("due_at")'
    on_snapshot: maybe
templates:
  t: '{{date .code}}'
`
	got := compileErr(t, src)
	for _, want := range []string{
		`m.yaml:5:41: fields.status.requird: unknown field "requird" (did you mean "required"?)`,
		`m.yaml:6:48: fields.fee.default: default abc is not a valid decimal`,
		`m.yaml:7:30: fields.unit.in: want a list`,
		`m.yaml:10:9: computed.late: a computed field may not read the clock`,
		`m.yaml:15:22: rules[0].notify.phone: field "code" is of type string`,
		`m.yaml:18:18: rules[1].on_snapshot:`,
		`m.yaml:20:6: templates.t: date needs a time`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 7 {
		t.Errorf("%d errors, want 7 (one per mistake, no cascade):\n%s", n, got)
	}
}
