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
	{"a walk pages through live records with what the pass saw", testWalkPages},
	{"miss counts commit with the batch", testMissCounts},
}

// walk shows a page as "key" for a record the pass missed, "key+" for one it saw,
// with ":n" for a miss count and "!" for an ended record.
func walk(t *testing.T, s store.Store, pass, after string, limit int) []string {
	t.Helper()
	page, err := s.Walk(t.Context(), "feed", "outage", pass, after, limit)
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	out := make([]string, len(page))
	for i, k := range page {
		out[i] = k.Key
		if k.Seen {
			out[i] += "+"
		}
		if k.Misses > 0 {
			out[i] += fmt.Sprintf(":%d", k.Misses)
		}
		if k.Ended {
			out[i] += "!"
		}
	}
	return out
}

func liveRecords(t *testing.T, s store.Store, source string, keys ...string) {
	t.Helper()
	var snap []store.SnapshotEntry
	for _, k := range keys {
		snap = append(snap, store.SnapshotEntry{Entity: "outage", Key: k, Hash: "h", Version: 1, Fields: map[string]any{}})
	}
	commit(t, s, store.Batch{Source: source, At: t0, Snapshot: snap})
}

func testWalkPages(t *testing.T, s store.Store) {
	liveRecords(t, s, "feed", "a", "b", "c", "d", "e", "f")
	liveRecords(t, s, "other", "a", "b", "c", "d", "e", "f", "g") // another source's records are not this one's
	commit(t, s, store.Batch{Source: "feed", At: t0, Snapshot: []store.SnapshotEntry{
		{Entity: "outage", Key: "f", Hash: "h", Version: 2, Deleted: true, Fields: map[string]any{}},
	}})
	mark := func(pass string, keys ...string) {
		t.Helper()
		if err := s.MarkSeen(t.Context(), "feed", "outage", pass, keys); err != nil {
			t.Fatalf("MarkSeen: %v", err)
		}
	}
	mark("p1", "b", "d", "d", "zz")
	mark("p2", "a", "c", "e") // another pass (a replica that lost the lock) is not this one
	for _, page := range []struct {
		after string
		want  []string
	}{
		{"", []string{"a", "b+"}},
		{"b", []string{"c", "d+"}},
		{"d", []string{"e"}}, // f is deleted
		{"e", []string{}},
	} {
		if got := walk(t, s, "p1", page.after, 2); !slices.Equal(got, page.want) {
			t.Fatalf("page after %q = %v, want %v", page.after, got, page.want)
		}
	}
	if err := s.ForgetSeen(t.Context(), "feed", "outage", "p1"); err != nil {
		t.Fatalf("ForgetSeen: %v", err)
	}
	if got := walk(t, s, "p1", "", 10); !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("p1 after ForgetSeen = %v", got)
	}
	if got := walk(t, s, "p2", "", 10); !slices.Equal(got, []string{"a+", "b", "c+", "d", "e+"}) {
		t.Fatalf("p2 after p1 was forgotten = %v", got)
	}
	if err := s.ForgetSeen(t.Context(), "feed", "outage", ""); err != nil {
		t.Fatal(err)
	}
	if got := walk(t, s, "p2", "", 10); !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("p2 after every pass was forgotten = %v", got)
	}
}

func testMissCounts(t *testing.T, s store.Store) {
	liveRecords(t, s, "feed", "a", "b", "c")
	commit(t, s, store.Batch{Source: "feed", At: t0, Misses: []store.MissCount{
		{Entity: "outage", Key: "a", Misses: 1}, {Entity: "outage", Key: "b", Misses: 2}, {Entity: "outage", Key: "c", Ended: true},
	}})
	if got := walk(t, s, "p", "", 10); !slices.Equal(got, []string{"a:1", "b:2", "c!"}) {
		t.Fatalf("walk = %v, want the counts kept", got)
	}
	// A failed commit stores no count.
	bad := store.Batch{Source: "feed", At: t0, Misses: []store.MissCount{{Entity: "outage", Key: "a", Misses: 5}},
		Snapshot: []store.SnapshotEntry{{Entity: "outage", Key: "x", Hash: "h", Version: 1, Fields: map[string]any{"bad": make(chan int)}}}}
	if err := s.Commit(t.Context(), bad); err == nil {
		t.Fatal("commit with unencodable fields succeeded")
	}
	if got := walk(t, s, "p", "", 10); !slices.Equal(got, []string{"a:1", "b:2", "c!"}) {
		t.Fatalf("after a failed commit = %v", got)
	}
	// Misses 0 removes a count, an ended mark included; a later count replaces one.
	commit(t, s, store.Batch{Source: "feed", At: t0, Misses: []store.MissCount{
		{Entity: "outage", Key: "b"}, {Entity: "outage", Key: "c"}, {Entity: "outage", Key: "a", Misses: 2},
	}})
	if got := walk(t, s, "p", "", 10); !slices.Equal(got, []string{"a:2", "b", "c"}) {
		t.Fatalf("after updating the counts = %v", got)
	}
}
