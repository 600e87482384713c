package pgtable

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func (f fixture) deliverBatch(t testing.TB, evs ...*pipeline.Event) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := f.sink.DeliverBatch(ctx, evs)
	if len(errs) != len(evs) {
		t.Fatalf("%d results for %d events", len(errs), len(evs))
	}
	return errs
}

func noErrors(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
}

// One statement must not touch a state row twice: a batch holding several versions
// of one record (a redelivery, or a caller other than the dispatcher) keeps the
// newest, in any order, and stores every event row once.
func TestBatchKeepsTheNewestStatePerRecord(t *testing.T) {
	f := newFixture(t)
	v1, v2, v3 := event("dossier", "HS-1", 1), event("dossier", "HS-1", 2), event("dossier", "HS-1", 3)
	noErrors(t, f.deliverBatch(t, v1, v3, v2, v3, event("dossier", "HS-2", 1)))
	if r, _ := f.state(t, "dossier", "HS-1"); r.Version != 3 || status(r) != "3" || !r.UpdatedAt.Equal(v3.DetectedAt) {
		t.Fatalf("state = %+v, want version 3", r)
	}
	if n := f.count(t, "events"); n != 4 {
		t.Fatalf("events table holds %d rows, want 4", n)
	}
	// A stale batch changes nothing; a newer one moves the row on.
	noErrors(t, f.deliverBatch(t, v2, v1))
	if r, _ := f.state(t, "dossier", "HS-1"); r.Version != 3 {
		t.Fatalf("a stale batch rolled the row back to %d", r.Version)
	}
	noErrors(t, f.deliverBatch(t, event("dossier", "HS-1", 4)))
	if r, _ := f.state(t, "dossier", "HS-1"); r.Version != 4 || status(r) != "4" {
		t.Fatalf("state = %+v, want version 4", r)
	}
}

// A batch across entities writes each entity's state table; a deletion that
// carries no fields keeps the last known ones.
func TestBatchAcrossEntitiesAndDeletions(t *testing.T) {
	f := newFixture(t)
	noErrors(t, f.deliverBatch(t, event("dossier", "HS-1", 1), event("outage", "EVN-1", 1), event("dossier", "HS-2", 1)))
	bare := deleted("dossier", "HS-2", 2)
	bare.Before = nil
	noErrors(t, f.deliverBatch(t, deleted("dossier", "HS-1", 2), bare, event("outage", "EVN-1", 2)))
	if r, _ := f.state(t, "dossier", "HS-1"); !r.Deleted || r.Version != 2 || status(r) != "1" {
		t.Fatalf("HS-1 = %+v, want deleted at 2 with the fields it carried", r)
	}
	if r, _ := f.state(t, "dossier", "HS-2"); !r.Deleted || r.Version != 2 || status(r) != "1" {
		t.Fatalf("HS-2 = %+v, want deleted at 2 keeping the fields of version 1", r)
	}
	if r, _ := f.state(t, "outage", "EVN-1"); r.Version != 2 || status(r) != "2" {
		t.Fatalf("EVN-1 = %+v, want version 2", r)
	}
	if n := f.count(t, "events"); n != 6 {
		t.Fatalf("events table holds %d rows, want 6", n)
	}
}

// An event the server refuses (here a key too large for the primary key's index)
// fails alone and permanently: the batch is retried event by event.
func TestBatchWithAnEventTheServerRefusesFailsOnlyThatEvent(t *testing.T) {
	f := newFixture(t)
	raw := make([]byte, 8000)
	_, _ = rand.Read(raw)
	huge := event("dossier", hex.EncodeToString(raw), 1) // incompressible: too large for a b-tree entry
	errs := f.deliverBatch(t, event("dossier", "HS-1", 1), huge, event("dossier", "HS-2", 1))
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("the others failed with the refused one: %v", errs)
	}
	if !pipeline.IsPermanent(errs[1]) {
		t.Fatalf("refused event: %v, want a permanent error", errs[1])
	}
	t.Logf("refused: %.200s", errs[1])
	if n := f.count(t, "events"); n != 2 {
		t.Fatalf("events table holds %d rows, want 2", n)
	}
}

// A table dropped by hand is created again by the next batch (the first fails
// transiently).
func TestBatchRecreatesADroppedTable(t *testing.T) {
	f := newFixture(t)
	noErrors(t, f.deliverBatch(t, event("dossier", "HS-1", 1)))
	if _, err := f.db.Exec(`DROP TABLE ` + quote(f.schema) + `.current_dossier`); err != nil {
		t.Fatal(err)
	}
	for i, err := range f.deliverBatch(t, event("dossier", "HS-1", 2)) {
		if err == nil || pipeline.IsPermanent(err) {
			t.Fatalf("event %d with its table gone: %v, want a transient error", i, err)
		}
	}
	noErrors(t, f.deliverBatch(t, event("dossier", "HS-1", 2)))
	if r, _ := f.state(t, "dossier", "HS-1"); r.Version != 2 {
		t.Fatalf("state = %+v, want version 2", r)
	}
}

// Every column survives the batch path as it does Deliver's: a rule event with its
// message, changed fields, the epoch and a NUL in the text.
func TestBatchStoresEveryColumn(t *testing.T) {
	f := newFixture(t)
	rule := event("dossier", "HS-1", 2)
	rule.Type, rule.Rule, rule.Epoch = "dossier.result_ready", "dossier.result_ready", 1_700_000_000_000_123
	rule.Changed = []string{"status", "due_at"}
	rule.Message = &pipeline.Message{Template: "result_ready", Text: "Hồ sơ HS-1 đã có kết quả\x00", Phone: "84901234567"}
	rule.ID = pipeline.RuleEventID(rule.ID, rule.Rule)
	plain := event("dossier", "HS-2", 1)
	plain.Agency = ""
	noErrors(t, f.deliverBatch(t, rule, plain))
	got := f.received(t)
	if len(got) != 2 {
		t.Fatalf("%d events, want 2", len(got))
	}
	g := got[0]
	if g.ID != rule.ID || g.Rule != rule.Rule || g.Type != rule.Type || g.Message == nil ||
		g.Message.Text != "Hồ sơ HS-1 đã có kết quả\uFFFD" || g.Message.Phone != "84901234567" ||
		len(g.Changed) != 2 || g.Changed[1] != "due_at" || !g.DetectedAt.Equal(rule.DetectedAt) || g.Agency != "UBND-CG" {
		t.Errorf("rule event came back as %+v (message %+v)", g, g.Message)
	}
	if p := got[1]; p.Agency != "" || p.Rule != "" || p.Message != nil || p.Changed != nil {
		t.Errorf("event without optional values came back as %+v", p)
	}
	var epoch int64
	if err := f.db.QueryRow(`SELECT epoch FROM `+quote(f.schema)+`.events WHERE event_id = $1`, rule.ID).Scan(&epoch); err != nil || epoch != rule.Epoch {
		t.Errorf("epoch %d, %v; want %d", epoch, err, rule.Epoch)
	}
}

// An event whose record comes only as JSON (pipeline.FieldsJSON: a first sync's
// events from the store) is stored as the same event with its fields would be,
// event row and state row, one at a time and in batches.
func TestRecordOnlyAsJSONIsStoredAsItsFields(t *testing.T) {
	f := newFixture(t)
	asMap := event("dossier", "HS-1", 1)
	asMap.After["citizen"] = "Nguyễn Văn An <a&b>\x00"
	asJSON := event("dossier", "HS-2", 1)
	asJSON.After["citizen"] = asMap.After["citizen"]
	b, err := pipeline.AppendFieldsJSON(nil, asJSON.After, nil)
	if err != nil {
		t.Fatal(err)
	}
	asJSON.After, asJSON.AfterJSON = nil, b
	alone := event("dossier", "HS-3", 1)
	alone.After, alone.AfterJSON = nil, b
	noErrors(t, f.deliverBatch(t, asMap, asJSON))
	if err := f.sink.Deliver(t.Context(), alone); err != nil {
		t.Fatal(err)
	}
	got := f.received(t)
	if len(got) != 3 {
		t.Fatalf("%d events, want 3", len(got))
	}
	for _, g := range got[1:] {
		if !reflect.DeepEqual(withCode(g.After, "HS-1"), got[0].After) {
			t.Errorf("%s's after came back as %v; the same record as a map: %v", g.Key, g.After, got[0].After)
		}
	}
	want, _ := f.state(t, "dossier", "HS-1")
	for _, k := range []string{"HS-2", "HS-3"} {
		st, ok := f.state(t, "dossier", k)
		if !ok || !reflect.DeepEqual(withCode(st.Fields, "HS-1"), want.Fields) || st.Version != 1 {
			t.Errorf("state of %s = %+v (%v); want the fields of HS-1's %+v", k, st, ok, want)
		}
	}
}

// withCode is fields with code set to key, to compare records of other keys.
func withCode(fields map[string]any, key string) map[string]any {
	out := maps.Clone(fields)
	out["code"] = key
	return out
}
