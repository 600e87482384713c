package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

var disappearTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"unseen lists live records a pass did not read, in key order, in pages", testUnseenPages},
	{"miss counts commit with the batch; seen keys reset them; ended ones are left out", testMissCounts},
}

func unseen(t *testing.T, s store.Store, after string, limit int) []string {
	t.Helper()
	page, err := s.Unseen(t.Context(), "feed", "outage", after, limit)
	if err != nil {
		t.Fatalf("Unseen: %v", err)
	}
	out := make([]string, len(page))
	for i, u := range page {
		out[i] = fmt.Sprintf("%s:%d", u.Key, u.Misses)
	}
	return out
}

func testUnseenPages(t *testing.T, s store.Store) {
	var snap []store.SnapshotEntry
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		snap = append(snap, store.SnapshotEntry{Entity: "outage", Key: k, Hash: "h", Version: 1, Fields: map[string]any{}})
	}
	snap[5].Deleted = true // f is already deleted
	commit(t, s, store.Batch{Source: "feed", At: t0, Snapshot: snap})
	commit(t, s, store.Batch{Source: "other", At: t0, Snapshot: snap}) // another source's records are not this one's
	if err := s.MarkSeen(t.Context(), "feed", "outage", []string{"b", "d", "d", "zz"}); err != nil {
		t.Fatalf("MarkSeen: %v", err)
	}
	if got := unseen(t, s, "", 2); !slices.Equal(got, []string{"a:0", "c:0"}) {
		t.Fatalf("first page = %v", got)
	}
	if got := unseen(t, s, "c", 2); !slices.Equal(got, []string{"e:0"}) {
		t.Fatalf("second page = %v", got)
	}
	if err := s.ForgetSeen(t.Context(), "feed", "outage"); err != nil {
		t.Fatalf("ForgetSeen: %v", err)
	}
	if got := unseen(t, s, "", 10); !slices.Equal(got, []string{"a:0", "b:0", "c:0", "d:0", "e:0"}) {
		t.Fatalf("after ForgetSeen = %v", got)
	}
}

func testMissCounts(t *testing.T, s store.Store) {
	var snap []store.SnapshotEntry
	for _, k := range []string{"a", "b", "c"} {
		snap = append(snap, store.SnapshotEntry{Entity: "outage", Key: k, Hash: "h", Version: 1, Fields: map[string]any{}})
	}
	commit(t, s, store.Batch{Source: "feed", At: t0, Snapshot: snap})
	commit(t, s, store.Batch{Source: "feed", At: t0, Misses: []store.MissCount{
		{Entity: "outage", Key: "a", Misses: 1}, {Entity: "outage", Key: "b", Misses: 2}, {Entity: "outage", Key: "c", Ended: true},
	}})
	if got := unseen(t, s, "", 10); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Fatalf("unseen = %v, want counts kept and the ended record left out", got)
	}
	// A failed commit stores no count.
	bad := store.Batch{Source: "feed", At: t0, Misses: []store.MissCount{{Entity: "outage", Key: "a", Misses: 5}},
		Snapshot: []store.SnapshotEntry{{Entity: "outage", Key: "x", Hash: "h", Version: 1, Fields: map[string]any{"bad": make(chan int)}}}}
	if err := s.Commit(t.Context(), bad); err == nil {
		t.Fatal("commit with unencodable fields succeeded")
	}
	if got := unseen(t, s, "", 10); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Fatalf("after a failed commit = %v", got)
	}
	// Misses 0 removes a count.
	commit(t, s, store.Batch{Source: "feed", At: t0, Misses: []store.MissCount{{Entity: "outage", Key: "b"}}})
	if got := unseen(t, s, "", 10); !slices.Equal(got, []string{"a:1", "b:0"}) {
		t.Fatalf("after removing b's count = %v", got)
	}
	// Seen records start again from zero, the ended one included.
	if err := s.MarkSeen(t.Context(), "feed", "outage", []string{"a", "c"}); err != nil {
		t.Fatal(err)
	}
	n, err := s.ResetMisses(t.Context(), "feed", "outage")
	if err != nil || n != 2 {
		t.Fatalf("ResetMisses = %d, %v; want 2", n, err)
	}
	if err := s.ForgetSeen(t.Context(), "feed", "outage"); err != nil {
		t.Fatal(err)
	}
	if got := unseen(t, s, "", 10); !slices.Equal(got, []string{"a:0", "b:0", "c:0"}) {
		t.Fatalf("after reset = %v", got)
	}
}
