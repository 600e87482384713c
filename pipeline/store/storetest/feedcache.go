package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Reopen opens another handle on the database of a store that RunHandles's open
// returned: another process's view, with nothing of the first handle's memory.
type Reopen func(t *testing.T) store.Store

// RunHandles runs the tests that need two handles on one database. open must
// return a fresh, empty store and a way to open the same database again; the
// suite closes every handle when the subtest ends.
func RunHandles(t *testing.T, open func(t *testing.T) (store.Store, Reopen)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, reopen Reopen)
	}{
		{"a feed read by the committing handle is the feed another handle reads", testFeedSameFromAnotherHandle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, reopen := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close store: %v", err)
				}
			})
			tc.fn(t, s, func(t *testing.T) store.Store {
				o := reopen(t)
				t.Cleanup(func() { o.Close() })
				return o
			})
		})
	}
}

// feedBatch is a first-sync batch of new records routed to sinks, with fields
// that the store and the JSON encoder treat specially: escapes, NUL (which
// PostgreSQL stores replaced), U+2028, numbers, booleans and null.
func feedBatch(s store.Store, at time.Time, sinks []string, keys ...string) store.Batch {
	b := store.Batch{Source: "src", At: at}
	for i, k := range keys {
		fields := map[string]any{"code": k, "status": int64(i), "citizen": "Nguyễn Văn \"An\"\n\u2028",
			"note": "a\x00b\\u0000", "paid": i%2 == 0, "fee": 1.5e3, "closed": nil}
		addCreated(&b, s, at, sinks, k, fields, true)
	}
	return b
}

// samePending fails unless both handles hand the sink the same events, as a
// sink receives them (After and the JSON line the log and webhook sinks write),
// under a few limits and with what is in flight left out.
func samePending(t *testing.T, what string, a, b store.Store, sink string, now time.Time) []store.Pending {
	t.Helper()
	all := pending(t, b, sink, now)
	cases := []struct {
		limit int
		skip  []int64
	}{{0, nil}, {1, nil}, {3, nil}}
	if len(all) > 2 {
		cases = append(cases, struct {
			limit int
			skip  []int64
		}{2, []int64{all[0].Seq, all[2].Seq}})
	}
	for _, c := range cases {
		want, err := b.Pending(t.Context(), sink, now, c.limit, c.skip...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Pending(t.Context(), sink, now, c.limit, c.skip...)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := describe(t, got), describe(t, want); !slices.Equal(g, w) {
			t.Fatalf("%s: sink %s, limit %d, skip %v: the committing handle reads\n%v\nanother handle reads\n%v",
				what, sink, c.limit, c.skip, g, w)
		}
		for i := range got {
			if !reflect.DeepEqual(got[i].Event.After, want[i].Event.After) {
				t.Fatalf("%s: seq %d: After %#v, another handle's %#v", what, got[i].Seq, got[i].Event.After, want[i].Event.After)
			}
		}
		// A sink that reads records only as JSON gets the same events and lines
		// from either handle, feed events without the map of fields.
		for _, h := range []store.Store{a, b} {
			only, err := h.PendingJSON(t.Context(), sink, now, c.limit, c.skip...)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := describe(t, only), describe(t, want); !slices.Equal(g, w) {
				t.Fatalf("%s: sink %s, limit %d, skip %v: PendingJSON reads\n%v\nPending reads\n%v", what, sink, c.limit, c.skip, g, w)
			}
			for _, p := range only {
				if p.Feed && (p.Event.After != nil || p.Event.AfterJSON == nil) {
					t.Fatalf("%s: PendingJSON's feed event seq %d has After %v and AfterJSON %s; want the JSON alone", what, p.Seq, p.Event.After, p.Event.AfterJSON)
				}
			}
		}
	}
	return all
}

// describe is what a sink gets of each pending row, in order.
func describe(t *testing.T, ps []store.Pending) []string {
	t.Helper()
	out := make([]string, len(ps))
	for i, p := range ps {
		line, err := pipeline.AppendEventJSON(nil, &p.Event)
		if err != nil {
			t.Fatalf("seq %d: %v", p.Seq, err)
		}
		out[i] = fmt.Sprintf("seq %d record %s attempts %d next %s feed %v: %s", p.Seq, p.Record, p.Attempts,
			p.NextAt.UTC().Format(time.RFC3339Nano), p.Feed, line)
	}
	return out
}

// testFeedSameFromAnotherHandle: the handle that committed a first sync hands
// its sinks the very events a handle that did not (another process, or this one
// after a restart) reads from the database, as deliveries settle in and out of
// order, retries and dead letters take events out of the feed, and records move
// on, committed by either handle.
func testFeedSameFromAnotherHandle(t *testing.T, a store.Store, reopen Reopen) {
	ab, a1 := []string{"a", "b"}, []string{"a"}
	commit(t, a, feedBatch(a, t0, ab, "K1", "K2", "K3", "K4"))
	commit(t, a, feedBatch(a, t0, a1, "K5", "K6"))                  // a block of its own, next to the first
	commit(t, a, feedBatch(a, t0.Add(time.Second), ab, "K7", "K8")) // detected later: another block
	b := reopen(t)
	check := func(what string) {
		t.Helper()
		for _, sink := range ab {
			samePending(t, what, a, b, sink, t0.Add(time.Hour))
		}
	}
	check("after the first sync")

	// Sink a: K2 delivered before K1; K1 retried; K3 dead.
	p := pending(t, a, "a", t0.Add(time.Hour))
	if got := keysOf(p); !slices.Equal(got, []string{"K1@1", "K2@1", "K3@1", "K4@1", "K5@1", "K6@1", "K7@1", "K8@1"}) {
		t.Fatalf("pending for a = %v", got)
	}
	settle(t, a, "a", store.Outcome{Seq: p[1].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0, Feed: true})
	check("after a delivery out of order")
	settle(t, a, "a",
		store.Outcome{Seq: p[0].Seq, Kind: store.OutcomeRetry, Attempts: 1, At: t0, NextAt: t0.Add(time.Minute), Err: "503", Feed: true},
		store.Outcome{Seq: p[2].Seq, Kind: store.OutcomeDead, Attempts: 1, At: t0, Err: "refused", Feed: true},
		store.Outcome{Seq: p[4].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0, Feed: true})
	check("after a retry, a dead letter and a delivery")

	// K4 moves on, committed by the other handle, while it waits for both sinks;
	// K6 moves on, committed by this one. Each one's first event comes out once,
	// whole, before its next.
	move := func(s store.Store, key string) {
		t.Helper()
		fields := map[string]any{"code": key, "status": int64(9)}
		ev := &pipeline.Event{
			ID: pipeline.EventID("src", "dossier", key, 2, pipeline.EventUpdated, "h2-"+key), Type: pipeline.EventUpdated,
			Source: "src", Entity: "dossier", Key: key, Agency: "UBND-CG", Version: 2, Epoch: s.Epoch(), Snapshot: true,
			After: fields, DetectedAt: t0,
		}
		commit(t, s, store.Batch{Source: "src", At: t0,
			Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: key, Hash: "h2-" + key, Version: 2, Fields: fields}},
			Events:   []store.OutboxEvent{{Event: ev, Sinks: ab}}})
	}
	move(b, "K4")
	move(a, "K6")
	check("after records moved on")
	got := pending(t, a, "a", t0.Add(time.Hour))
	var k4, k6 []string
	for _, it := range got {
		switch it.Event.Key {
		case "K4":
			k4 = append(k4, fmt.Sprint(it.Event.Version, it.Event.After["note"] != nil))
		case "K6":
			k6 = append(k6, fmt.Sprint(it.Event.Version, it.Event.After["note"] != nil))
		}
	}
	if !slices.Equal(k4, []string{"1 true"}) || !slices.Equal(k6, []string{"1 true"}) {
		t.Fatalf("after K4 and K6 moved on, sink a gets K4 %v and K6 %v; want each one's first event, whole, once", k4, k6)
	}

	// Everything a has is delivered, from the handle that committed it, then
	// what became due behind it.
	for range 3 {
		var os []store.Outcome
		for _, it := range pending(t, a, "a", t0.Add(time.Hour)) {
			os = append(os, store.Outcome{Seq: it.Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0, Feed: it.Feed})
		}
		if len(os) > 0 {
			settle(t, a, "a", os...)
		}
		check("after delivering what was due")
	}
	if got := pending(t, a, "a", t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("sink a still has %v", keysOf(got))
	}
	// A handle opened now (a restart) agrees too.
	samePending(t, "after a restart", reopen(t), a, "b", t0.Add(time.Hour))
}
