package pipeline

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAppendEventJSONDecodesLikeMarshal(t *testing.T) {
	at := time.Date(2026, 11, 28, 3, 4, 5, 123456789, time.UTC)
	events := []*Event{
		{ID: "e1", Type: EventCreated, Source: "s", Entity: "dossier", Key: "HS<1>&", Version: 1, DetectedAt: at},
		{ID: "e2", Type: EventUpdated, Rule: "dossier.result_ready", Source: "s", Entity: "dossier", Key: "HS1",
			Agency: "UBND-CG", Version: 3, Epoch: 1764300000000000, Snapshot: true, Changed: []string{"status", "phone"},
			Before:  map[string]any{"status": int64(2), "phone": nil, "name": "Lê Thị \"Hoa\"\n\u2028"},
			After:   map[string]any{"status": json.Number("9"), "fee": 12.5, "paid": true, "due": at, "name": "Lê Thị Hoa"},
			Message: &Message{Text: "Hồ sơ HS1 đã có kết quả", Phone: "84912345678"}, DetectedAt: at.In(time.FixedZone("ICT", 7*3600))},
		{ID: "e3", Type: EventDeleted, Source: "s", Entity: "dossier", Key: "HS2", Version: 2, Changed: []string{},
			Before: map[string]any{}, After: map[string]any{}},
	}
	for _, ev := range events {
		got, err := AppendEventJSON(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: %v\n%s", ev.ID, err, got)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got  %s\n want %s", ev.ID, got, want)
		}
	}
	if _, err := AppendEventJSON(nil, &Event{After: map[string]any{"x": json.Number("1x")}}); err == nil {
		t.Error("a malformed number was encoded")
	}
}

// An event whose fields come with their JSON (AfterJSON, from the store) is
// written with it, as it would be without; so is one whose fields come only as
// JSON (a pipeline.FieldsJSON sink's). An event without fields gets no "after".
func TestAppendEventJSONCopiesAfterJSON(t *testing.T) {
	ev := Event{ID: "e1", Type: EventCreated, Source: "s", Entity: "d", Key: "K", Version: 1, Snapshot: true,
		After: map[string]any{"b": "x", "a": int64(1)}, DetectedAt: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}
	want, err := AppendEventJSON(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	ev.AfterJSON = []byte(`{"a":1,"b":"x"}`)
	got, err := AppendEventJSON(nil, &ev)
	if err != nil || string(got) != string(want) {
		t.Errorf("with AfterJSON: %s, %v; want %s", got, err, want)
	}
	ev.After = nil
	got, err = AppendEventJSON(nil, &ev)
	if err != nil || string(got) != string(want) {
		t.Errorf("with AfterJSON alone: %s, %v; want %s", got, err, want)
	}
	for _, none := range []Event{{AfterJSON: []byte(`{}`)}, {After: map[string]any{}, AfterJSON: []byte(`{}`)}, {}} {
		got, _ = AppendEventJSON(nil, &none)
		if strings.Contains(string(got), `"after"`) {
			t.Errorf("no fields (After %v, AfterJSON %s), yet %s", none.After, none.AfterJSON, got)
		}
	}
}
