package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func testSnapshotRoundTrip(t *testing.T, s store.Store) {
	name := norm.NFC.String("Nguyễn Văn Đức")
	key := norm.NFC.String("Đức-01")
	due := time.Date(2025, 3, 7, 8, 0, 0, 0, time.UTC)
	commit(t, s, store.Batch{Source: "src", At: t0, Snapshot: []store.SnapshotEntry{
		{Entity: "dossier", Key: key, Hash: "h1", Version: 7, Fields: map[string]any{
			"citizen": name,
			"status":  int64(9),
			"big":     int64(9007199254740993), // not exact as a float64
			"fee":     1.5,
			"paid":    true,
			"note":    nil,
			"due_at":  due,
		}},
		{Entity: "dossier", Key: "gone", Hash: "h0", Version: 3, Deleted: true, Fields: map[string]any{}},
	}})

	got, err := s.Snapshot(t.Context(), "src", "dossier", []string{key, "gone", "absent"})
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Snapshot returned %d entries, want 2 (absent keys are absent): %v", len(got), got)
	}
	e := got[key]
	if e.Entity != "dossier" || e.Key != key || e.Hash != "h1" || e.Version != 7 || e.Deleted {
		t.Errorf("entry = %+v", e)
	}
	want := map[string]any{
		"citizen": name,
		"status":  json.Number("9"),
		"big":     json.Number("9007199254740993"),
		"fee":     json.Number("1.5"),
		"paid":    true,
		"note":    nil,
		"due_at":  due.Format(time.RFC3339Nano),
	}
	if !reflect.DeepEqual(e.Fields, want) {
		t.Errorf("fields = %#v\nwant     %#v", e.Fields, want)
	}
	if c, _ := e.Fields["citizen"].(string); c != name || !norm.NFC.IsNormalString(c) {
		t.Errorf("Vietnamese text changed: %q (% x), want %q", c, c, name)
	}
	if g := got["gone"]; !g.Deleted || g.Version != 3 {
		t.Errorf("deleted entry = %+v, want Deleted and version 3", g)
	}
}

func testSnapshotUpsert(t *testing.T, s store.Store) {
	commit(t, s, store.Batch{Source: "src", At: t0, Snapshot: []store.SnapshotEntry{
		{Entity: "dossier", Key: "HS1", Hash: "h1", Version: 1, Fields: map[string]any{"status": "1"}},
	}})
	commit(t, s, store.Batch{Source: "src", At: t0.Add(time.Minute), Snapshot: []store.SnapshotEntry{
		{Entity: "dossier", Key: "HS1", Hash: "h2", Version: 2, Fields: map[string]any{"status": "2"}},
		{Entity: "dossier", Key: "HS1", Hash: "h3", Version: 3, Fields: map[string]any{"status": "3"}},
	}})
	got, err := s.Snapshot(t.Context(), "src", "dossier", []string{"HS1"})
	if err != nil {
		t.Fatal(err)
	}
	if e := got["HS1"]; e.Hash != "h3" || e.Version != 3 || e.Fields["status"] != "3" {
		t.Errorf("after upserts: %+v, want the last entry (h3, version 3)", e)
	}
}

func testSnapshotManyKeys(t *testing.T, s store.Store) {
	const n = 1234 // more than one chunk of any IN list
	var entries []store.SnapshotEntry
	var keys []string
	for i := range n {
		k := fmt.Sprintf("HS%05d", i)
		keys = append(keys, k)
		entries = append(entries, store.SnapshotEntry{Entity: "dossier", Key: k, Hash: "h" + k, Version: int64(i + 1),
			Fields: map[string]any{"i": int64(i)}})
	}
	commit(t, s, store.Batch{Source: "src", At: t0, Snapshot: entries})
	// The same keys under another entity and another source must not be returned.
	commit(t, s, store.Batch{Source: "src", At: t0, Snapshot: []store.SnapshotEntry{{Entity: "other", Key: keys[0], Hash: "x", Version: 1}}})
	commit(t, s, store.Batch{Source: "src2", At: t0, Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: keys[1], Hash: "x", Version: 1}}})

	lookup := append([]string{}, keys...)
	for i := range 100 {
		lookup = append(lookup, fmt.Sprintf("absent%d", i))
	}
	got, err := s.Snapshot(t.Context(), "src", "dossier", lookup)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if len(got) != n {
		t.Fatalf("Snapshot returned %d entries, want %d", len(got), n)
	}
	for i, k := range keys {
		e := got[k]
		if e.Hash != "h"+k || e.Version != int64(i+1) || e.Fields["i"] != json.Number(fmt.Sprint(i)) {
			t.Fatalf("entry %s = %+v", k, e)
		}
	}
	if none, err := s.Snapshot(t.Context(), "src", "dossier", nil); err != nil || len(none) != 0 {
		t.Errorf("Snapshot(no keys) = %v, %v; want empty", none, err)
	}
}

// Agency data carries NUL now and then; storing it must not fail the batch, though
// a backend that cannot hold NUL may replace it with U+FFFD.
func testSnapshotNul(t *testing.T, s store.Store) {
	commit(t, s, store.Batch{Source: "src", At: t0, Snapshot: []store.SnapshotEntry{
		{Entity: "dossier", Key: "HS1", Hash: "h1", Version: 1, Fields: map[string]any{"note": "a\x00b"}},
	}})
	got, err := s.Snapshot(t.Context(), "src", "dossier", []string{"HS1"})
	if err != nil {
		t.Fatal(err)
	}
	if v := got["HS1"].Fields["note"]; v != "a\x00b" && v != "a\uFFFDb" {
		t.Errorf("note = %q, want %q or %q", v, "a\x00b", "a\uFFFDb")
	}
}

func testHasSnapshot(t *testing.T, s store.Store) {
	has := func(source string) bool {
		t.Helper()
		ok, err := s.HasSnapshot(t.Context(), source)
		if err != nil {
			t.Fatalf("HasSnapshot(%q): %v", source, err)
		}
		return ok
	}
	// A cursor and quarantine are not snapshot records.
	commit(t, s, store.Batch{Source: "src", Position: []byte("p1"), At: t0,
		Quarantine: []store.QuarantineEntry{{Source: "src", Entity: "dossier", RowKey: "HS0", Reason: "bad", FirstAt: t0, LastAt: t0}}})
	if has("src") {
		t.Fatal("HasSnapshot = true for a source with only a cursor and quarantine")
	}
	commit(t, s, store.Batch{Source: "src", At: t0, Snapshot: []store.SnapshotEntry{
		{Entity: "dossier", Key: "HS1", Hash: "h1", Version: 1, Deleted: true, Fields: map[string]any{}},
	}})
	if !has("src") {
		t.Fatal("HasSnapshot = false after a snapshot record (deleted, but stored) was committed")
	}
	if has("other") {
		t.Fatal("HasSnapshot = true for another source")
	}
}
