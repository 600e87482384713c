package storetest

import (
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// testBulkLoad: what a store promises of new records, their feed and their
// first change holds the same inside a bulk load, which only one source at a
// time and only an empty snapshot may begin; the change of a known record ends
// it, so there is nothing left to end.
func testBulkLoad(t *testing.T, s store.Store) {
	ctx := t.Context()
	began, err := s.BeginBulkLoad(ctx, "src")
	if err != nil {
		t.Fatalf("BeginBulkLoad: %v", err)
	}
	if again, err := s.BeginBulkLoad(ctx, "other"); err != nil || again {
		t.Fatalf("a second BeginBulkLoad while one is on = %v, %v; want false", again, err)
	}
	testNewRecordsThenChange(t, s)
	if built, err := s.EndBulkLoad(ctx); err != nil || built {
		t.Errorf("EndBulkLoad after a known record's change = %v, %v; want false (the change built what the load left out; began %v)", built, err, began)
	}
	if again, err := s.BeginBulkLoad(ctx, "other"); err != nil || again {
		t.Errorf("BeginBulkLoad on a snapshot with rows = %v, %v; want false", again, err)
	}
}

// testBulkLoadEnded: records bulk-loaded are found by key once the load ends,
// and a key stored twice fails the commit instead of overwriting the record.
func testBulkLoadEnded(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.BeginBulkLoad(ctx, "src"); err != nil {
		t.Fatalf("BeginBulkLoad: %v", err)
	}
	firstSyncNew(t, s, t0, []string{"a"}, true, "HS1", "HS2")
	if _, err := s.EndBulkLoad(ctx); err != nil {
		t.Fatalf("EndBulkLoad: %v", err)
	}
	got, err := s.Snapshot(ctx, "src", "dossier", []string{"HS1", "HS2", "HS3"})
	if err != nil || len(got) != 2 || got["HS1"].Hash != "h-HS1" {
		t.Fatalf("snapshot after the load = %+v, %v; want HS1 and HS2", got, err)
	}
	err = s.Commit(ctx, store.Batch{Source: "src", At: t0, Snapshot: []store.SnapshotEntry{
		{Entity: "dossier", Key: "HS1", Hash: "other", Version: 1, Fields: map[string]any{"code": "HS1"}, New: true}}})
	if err == nil {
		t.Fatal("a record marked New whose key is stored was committed; want the commit to fail")
	}
	if got, _ := s.Snapshot(ctx, "src", "dossier", []string{"HS1"}); got["HS1"].Hash != "h-HS1" {
		t.Errorf("HS1 after the refused commit = %+v, want it as loaded", got["HS1"])
	}
}
