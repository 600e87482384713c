package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

func TestTimerRulesAndFiguresAreCheckedAtLoad(t *testing.T) {
	src := `entity: dossier
key: [code]
fields:
  code:   { required: true }
  status: { type: int }
  due_at: { type: time }
  online: { type: bool }
figures:
  kind: dossiers
  status: status
  open: [2, 4]
  finished: [4, 9]
  received_at: recieved_at
  due_at: due_at
  online: code
rules:
  - name: deadline.a
    at: due_at minus two days
    when: 'true'
  - name: deadline.b
    at: status - 2d
    when: 'true'
  - name: deadline.c
    at: due_at - 2x
    when: 'true'
  - name: deadline.d
    at: due_at
    when: 'true'
    on_snapshot: true
`
	_, err := Compile("m.yaml", []byte(src), Options{})
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want config.Errors, got %v", err)
	}
	for _, want := range []string{
		`figures.kind: unknown kind "dossiers" (want dossier or outage)`,
		`figures.received_at: unknown field "recieved_at"`,
		`figures.online: field "code" is of type string; want a field of type bool`,
		`figures.finished: status 4 is listed as both open and finished`,
		`rules[0].at: want a time field, optionally plus or minus a duration`,
		`rules[1].at: field "status" is of type int; a timer counts from a field of type time`,
		`rules[2].at: bad duration "2x"`,
		`rules[3].at: a timer rule (at:) fires once per threshold; max_age and on_snapshot do not apply`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestTimerRuleFiresFromTheRecordNotFromChanges(t *testing.T) {
	src := `entity: dossier
key: [code]
fields:
  code:   { required: true }
  status: { type: int }
  phone:  { type: phone_vn }
  due_at: { type: time }
rules:
  - name: deadline.due_soon
    at: due_at - 1d12h
    when: 'after.status in [2, 4]'
    notify: { phone: phone, template: soon }
templates:
  soon: 'Hồ sơ {{.code}} sắp đến hạn {{date .due_at}}.'
`
	m, err := Compile("m.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	fields := map[string]any{"code": "HS-1", "status": int64(4), "phone": "84912345678", "due_at": due}
	arms := m.Timers(fields)
	if len(arms) != 1 || !arms[0].At.Equal(due.Add(-36*time.Hour)) {
		t.Fatalf("Timers = %+v, want one at due - 36h", arms)
	}
	// A change never fires a timer rule.
	if f := m.Fire(&pipeline.Event{Type: pipeline.EventUpdated, Changed: []string{"status"}, After: fields}); len(f.Events) != 0 {
		t.Errorf("a change fired %v", f.Events)
	}
	rec := pipeline.Record{Entity: "dossier", Key: "HS-1", Agency: "XA", Fields: fields}
	now := due.Add(-30 * time.Hour)
	ev, err := m.FireTimer(rec, "motcua", 3, "deadline.due_soon", arms[0].At, now)
	if err != nil || ev == nil {
		t.Fatalf("FireTimer = %v, %v", ev, err)
	}
	if ev.Rule != "deadline.due_soon" || ev.Agency != "XA" || ev.Message == nil || ev.Message.Phone != "84912345678" ||
		ev.Message.Text != "Hồ sơ HS-1 sắp đến hạn 03/12/2026." || ev.ID != TimerEventID("motcua", "dossier", "HS-1", "deadline.due_soon", arms[0].At) {
		t.Errorf("event = %+v, message %+v", ev, ev.Message)
	}
	fields["status"] = int64(9)
	if ev, err := m.FireTimer(rec, "motcua", 4, "deadline.due_soon", arms[0].At, now); err != nil || ev != nil {
		t.Errorf("finished dossier: FireTimer = %v, %v; want nothing", ev, err)
	}
	if TimerEventID("motcua", "dossier", "HS-1", "deadline.due_soon", arms[0].At) == TimerEventID("motcua", "dossier", "HS-1", "deadline.due_soon", arms[0].At.Add(time.Hour)) {
		t.Error("a moved threshold keeps its event id")
	}
}

func TestATimerRuleCanAddressTheAgencysOfficials(t *testing.T) {
	src := `entity: dossier
key: [code]
agency_field: unit
fields:
  code:   { required: true }
  unit:   { }
  phone:  { type: phone_vn }
  status: { type: int }
  due_at: { type: time }
rules:
  - name: deadline.due_soon
    at: due_at - 2d
    when: 'after.status == 4'
    notify: { officials: true, template: due_soon }
  - name: deadline.both
    at: due_at
    when: 'true'
    notify: { officials: true, phone: phone, template: due_soon }
  - name: deadline.nobody
    at: due_at
    when: 'true'
    notify: { template: due_soon }
templates:
  due_soon: "Hồ sơ {{.code}} đến hạn ngày {{date .due_at}}."
`
	_, err := Compile("m.yaml", []byte(src), Options{})
	for _, want := range []string{
		`rules[1].notify.officials: officials: true addresses the agency's officials; phone, user_id and audience address a citizen: use one rule for each`,
		`rules[2].notify: name who hears it: the field phone, user_id or audience, or officials: true`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}

	good := strings.Split(src, "  - name: deadline.both")[0] + "templates:\n  due_soon: \"Hồ sơ {{.code}} đến hạn ngày {{date .due_at}}.\"\n"
	m, err := Compile("m.yaml", []byte(good), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.OfficialRules(); len(got) != 1 || got[0] != "deadline.due_soon" {
		t.Errorf("OfficialRules = %v", got)
	}
	due := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rec := pipeline.Record{Entity: "dossier", Key: "HS-1", Agency: "XA-A",
		Fields: map[string]any{"code": "HS-1", "unit": "XA-A", "phone": "84912345678", "status": int64(4), "due_at": due}}
	ev, err := m.FireTimer(rec, "motcua", 1, "deadline.due_soon", due.Add(-48*time.Hour), due.Add(-47*time.Hour))
	if err != nil || ev == nil {
		t.Fatalf("FireTimer = %v, %v", ev, err)
	}
	msg := ev.Message
	if msg == nil || !msg.Officials || msg.Phone != "" || msg.UserID != "" || ev.Agency != "XA-A" {
		t.Fatalf("message = %+v (agency %q), want one addressed to the officials of XA-A and to no citizen", msg, ev.Agency)
	}
	if msg.Text != "Hồ sơ HS-1 đến hạn ngày 01/12/2026." {
		t.Errorf("text = %q", msg.Text)
	}
}
