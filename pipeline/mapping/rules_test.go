package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

func TestExpressionTemplateAndTypeMistakesAreAllReportedWithLines(t *testing.T) {
	src := `entity: dossier
key: [code]
fields:
  code:   { from: MaHoSo, required: true }
  status: { from: TrangThai, type: integer }
  due_at: { from: Han, type: time }
computed:
  overdue: 'staus in [2, 4] && due_at < now()'
rules:
  - name: dossier.result_ready
    when: 'changed("status") && after.stauts == 9'
    notify: { phone: code, template: ready }
templates:
  ready: "Hồ sơ {{.code}} có kết quả ngày {{date .due_at}} {{.nope}}"
`
	_, err := Compile("m.yaml", []byte(src), Options{})
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want config.Errors, got %v", err)
	}
	for _, want := range []string{
		`m.yaml:5:36: fields.status.type: unknown type "integer"`,
		`m.yaml:8:12: computed.overdue: unknown name staus`,
		`m.yaml:11:11: rules[0].when: unknown field "stauts" (did you mean "status"?)`,
		`m.yaml:14:10: templates.ready:`,
		`map has no entry for key "nope"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestTemplateSyntaxAndUnknownTemplateAreLoadErrors(t *testing.T) {
	src := `entity: dossier
key: [code]
fields:
  code: { required: true }
rules:
  - name: a
    when: 'true'
    notify: { phone: code, template: missing }
  - name: b
    when: '1 + 2'
templates:
  broken: "{{.code"
`
	_, err := Compile("m.yaml", []byte(src), Options{})
	for _, want := range []string{
		`m.yaml:8:38: rules[0].notify.template: no template is named "missing"`,
		`m.yaml:10:11: rules[1].when: expected bool`,
		`m.yaml:12:11: templates.broken: broken:1: unclosed action`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

const ruleMapping = `entity: dossier
key: [code]
fields:
  code:   { required: true }
  phone:  { type: phone_vn }
  status: { type: int }
  due_at: { type: time }
rules:
  - name: dossier.result_ready
    when: 'changed("status") && after.status == 9'
    notify: { phone: phone, template: ready }
  - name: dossier.late_result
    when: 'changed("status") && after.status == 9 && after.due_at < now()'
  - name: dossier.seen
    when: 'type == "created"'
    on_snapshot: true
templates:
  ready: 'Hồ sơ {{.code}} đã có kết quả (hẹn {{date .due_at}} {{time .due_at}}).'
`

func TestRulesFireOnChangesAndStaySilentOnSnapshots(t *testing.T) {
	now := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	m, err := Compile("m.yaml", []byte(ruleMapping), Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(status int, due string) pipeline.Record {
		rec, err := m.Apply(pipeline.Row{"code": "A1", "phone": "0912 345 678", "status": status, "due_at": due}, "")
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	fire := func(prev *pipeline.Record, rec pipeline.Record, snapshot bool) []string {
		var prior *pipeline.Prior
		if prev != nil {
			prior = &pipeline.Prior{Hash: prev.Hash(), Version: 1, Fields: prev.Fields}
		}
		ev := pipeline.Diff("s", prior, rec, rec.Hash(), snapshot, now)
		fired := m.Fire(ev)
		if len(fired.Failed) > 0 {
			t.Fatal(fired.Failed)
		}
		var names []string
		for _, f := range fired.Events {
			names = append(names, f.Rule)
			if f.ID != pipeline.RuleEventID(ev.ID, f.Rule) || f.Version != ev.Version {
				t.Errorf("rule event id %s / version %d: want RuleEventID(change id, rule) at the change's version", f.ID, f.Version)
			}
			if f.Rule == "dossier.result_ready" {
				due := rec.Fields["due_at"].(time.Time).In(defaultZone()).Format("02/01/2006 15:04")
				if f.Message.Text != "Hồ sơ A1 đã có kết quả (hẹn "+due+")." || f.Message.Phone != "84912345678" {
					t.Errorf("message = %+v", f.Message)
				}
			}
		}
		return names
	}
	inProgress := apply(4, "30/11/2026 17:00")
	if got := fire(nil, inProgress, true); strings.Join(got, ",") != "dossier.seen" {
		t.Errorf("snapshot fired %v, want only the opted-in rule", got)
	}
	ready := apply(9, "30/11/2026 17:00")
	if got := fire(&inProgress, ready, false); strings.Join(got, ",") != "dossier.result_ready" {
		t.Errorf("4→9 fired %v", got)
	}
	// now() in a condition reads the injected clock when the change is detected.
	late := apply(9, "26/11/2026 17:00")
	if got := fire(&inProgress, late, false); strings.Join(got, ",") != "dossier.result_ready,dossier.late_result" {
		t.Errorf("a result after its due date fired %v", got)
	}
}

// A first sync's change reaches only the rules with on_snapshot; with none, Fire
// evaluates nothing and builds no environment for the conditions.
func TestFireOnASnapshotChangeWithoutSnapshotRulesDoesNothing(t *testing.T) {
	src := `entity: dossier
key: [code]
fields:
  code:   { from: MaHoSo, required: true }
  status: { from: TrangThai, type: int }
  due_at: { from: Han, type: time }
rules:
  - { name: dossier.ready, when: 'after.status == 9' }
  - { name: deadline.overdue, at: due_at, when: 'after.status == 4' }
  - { name: dossier.all, when: 'after.status == 9', on_snapshot: true }
`
	m, err := Compile("m.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev := &pipeline.Event{ID: "x", Type: pipeline.EventCreated, Entity: "dossier", Key: "A1", Snapshot: true,
		After: map[string]any{"code": "A1", "status": int64(9)}}
	if got := m.Fire(ev); len(got.Events) != 1 || got.Events[0].Rule != "dossier.all" || len(got.Failed) > 0 {
		t.Fatalf("Fire on a snapshot change = %+v, want dossier.all alone", got)
	}
	ev.Snapshot = false
	if got := m.Fire(ev); len(got.Events) != 2 || got.Events[0].Rule != "dossier.ready" || got.Events[1].Rule != "dossier.all" {
		t.Fatalf("Fire on a change = %+v, want dossier.ready and dossier.all", got)
	}
	m.rules = m.rules[:2] // no rule for the first sync is left
	ev.Snapshot = true
	if n := testing.AllocsPerRun(100, func() { _ = m.Fire(ev) }); n != 0 {
		t.Errorf("Fire on a snapshot change that no rule asks for allocates %v times", n)
	}
}
