package mapping

import (
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

const keyMapping = `entity: outage
key: [unit, start]
fields:
  unit:  { from: DonVi, required: true, transform: [collapse, upper] }
  start: { from: TuNgay, type: time, required: true, layout: dd/MM/yyyy HH:mm }
  area:  { from: KhuVuc, required: true }
rules:
  - name: outage.cancelled
    when: 'type == "deleted"'
    notify: { audience: area, template: cancelled }
  - name: outage.done
    when: 'after.area == "x" && changed("area")'
templates:
  cancelled: 'Hủy lịch tại {{.area}} lúc {{time .start}}.'
`

func TestKeyIsApplysKeyFromTheKeyColumnsAlone(t *testing.T) {
	m, err := Compile("k.yaml", []byte(keyMapping), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.KeyColumns(); !slices.Equal(got, []string{"DonVi", "TuNgay"}) {
		t.Fatalf("KeyColumns = %v", got)
	}
	row := pipeline.Row{"DonVi": " pb0604  ", "TuNgay": "11/08/2026 07:30", "KhuVuc": "Ấp 3"}
	rec, err := m.Apply(row, "")
	if err != nil {
		t.Fatal(err)
	}
	key, ok := m.Key(pipeline.Row{"DonVi": row["DonVi"], "TuNgay": row["TuNgay"]})
	if !ok || key != rec.Key {
		t.Fatalf("Key = %q, %v; Apply's key is %q", key, ok, rec.Key)
	}
	for _, bad := range []pipeline.Row{{"DonVi": "PB0604", "TuNgay": "ngày mai"}, {"DonVi": nil, "TuNgay": "11/08/2026 07:30"}} {
		if _, ok := m.Key(bad); ok {
			t.Errorf("Key(%v) is ok; want not identified", bad)
		}
	}
}

func TestRulesOnADeletedEventReadTheRecordAsLastKnown(t *testing.T) {
	m, err := Compile("k.yaml", []byte(keyMapping), Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 8, 11, 0, 30, 0, 0, time.UTC)
	ev := pipeline.Deletion("evn", "outage", "PB0604|…", "EVN", pipeline.Prior{Version: 3, Hash: "h",
		Fields: map[string]any{"unit": "PB0604", "start": start, "area": "Ấp 3"}}, start)
	f := m.Fire(ev)
	if len(f.Failed) != 0 {
		t.Fatalf("rules failed on a deleted event: %v", f.Failed)
	}
	if len(f.Events) != 1 || f.Events[0].Rule != "outage.cancelled" {
		t.Fatalf("fired %+v, want only outage.cancelled", f.Events)
	}
	msg := f.Events[0].Message
	if msg == nil || msg.Text != "Hủy lịch tại Ấp 3 lúc 07:30." || msg.Audience != "Ấp 3" {
		t.Fatalf("message = %+v", msg)
	}
	if ev.Version != 4 || ev.Type != pipeline.EventDeleted || ev.After != nil {
		t.Fatalf("deletion event = %+v", ev)
	}
}
