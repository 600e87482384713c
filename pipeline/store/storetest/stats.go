package storetest

import (
	"maps"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func testStats(t *testing.T, s store.Store) {
	ctx := t.Context()
	empty := stats(t, s)
	if empty.Cursors == nil || empty.Outbox == nil || empty.DeadLetters == nil || empty.Quarantined == nil ||
		len(empty.Cursors)+len(empty.Outbox)+len(empty.DeadLetters)+len(empty.Quarantined) != 0 ||
		empty.Events != 0 || empty.Deliveries != 0 {
		t.Errorf("Stats of an empty store = %+v, want empty, non-nil collections", empty)
	}

	e1, e2, e3 := event("src1", "d", "1", 1, nil), event("src1", "d", "2", 1, nil), event("src2", "d", "3", 1, nil)
	commit(t, s, store.Batch{Source: "src2", Position: []byte("q"), At: t0, Events: []store.OutboxEvent{routed(e3, "a")}})
	commit(t, s, store.Batch{Source: "src1", Position: []byte("p"), InitialDone: true, At: t0,
		Events: []store.OutboxEvent{routed(e1, "a", "b"), routed(e2, "a", "b")},
		Quarantine: []store.QuarantineEntry{
			{Entity: "d", RowKey: "x", Reason: "r", Raw: map[string]string{}},
			{Entity: "d", RowKey: "y", Reason: "r", Raw: map[string]string{}},
			{Entity: "d", RowKey: "y", Reason: "r", Raw: map[string]string{}},
		}})
	a := pending(t, s, "a", t0)
	if err := s.Delivered(ctx, "a", a[0].Seq, 1, t0); err != nil {
		t.Fatal(err)
	}
	b := pending(t, s, "b", t0)
	if err := s.Dead(ctx, "b", b[1].Seq, 3, "r", t0, store.OnDeadHold); err != nil {
		t.Fatal(err)
	}

	st := stats(t, s)
	if len(st.Cursors) != 2 || st.Cursors[0].Source != "src1" || st.Cursors[1].Source != "src2" ||
		string(st.Cursors[0].Position) != "p" || !st.Cursors[0].InitialDone || st.Cursors[1].InitialDone ||
		!st.Cursors[0].UpdatedAt.Equal(t0) {
		t.Errorf("Stats.Cursors = %+v, want src1 (p, initial done) and src2 (q), sorted", st.Cursors)
	}
	checkCounts(t, "Outbox", st.Outbox, map[string]int{"a": 2, "b": 1})
	checkCounts(t, "DeadLetters", st.DeadLetters, map[string]int{"b": 1})
	checkCounts(t, "Quarantined", st.Quarantined, map[string]int{"src1": 2})
	if st.Events != 3 || st.Deliveries != 1 {
		t.Errorf("Stats events %d deliveries %d, want 3 and 1", st.Events, st.Deliveries)
	}
}

// checkCounts compares per-name counts, where an absent name and zero are the same.
func checkCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	g := maps.Clone(got)
	maps.DeleteFunc(g, func(_ string, n int) bool { return n == 0 })
	if !maps.Equal(g, want) {
		t.Errorf("Stats.%s = %v, want %v", what, got, want)
	}
}

// testPurge: delivered events older than the retention go with their delivery
// records; events still waiting, or dead-lettered, stay; resolved dead letters and
// quarantine go after theirs.
func testPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	old, young := t0, t0.Add(10*24*time.Hour)
	commit(t, s, store.Batch{Source: "src", At: old, Events: []store.OutboxEvent{
		{Event: event("src", "d", "A", 1, map[string]any{"n": 1}), Sinks: []string{"a"}},
		{Event: event("src", "d", "B", 1, map[string]any{"n": 1}), Sinks: []string{"a"}},
		{Event: event("src", "d", "C", 1, map[string]any{"n": 1}), Sinks: []string{"a"}},
	}, Quarantine: []store.QuarantineEntry{{Entity: "d", RowKey: "Q", Reason: "bad", Raw: map[string]string{}}}})
	commit(t, s, store.Batch{Source: "src", At: young, Events: []store.OutboxEvent{
		{Event: event("src", "d", "D", 1, map[string]any{"n": 1}), Sinks: []string{"a"}},
	}})
	p := pending(t, s, "a", young)
	bySeq := map[string]int64{}
	for _, x := range p {
		bySeq[x.Event.Key] = x.Seq
	}
	for _, k := range []string{"A", "D"} {
		if err := s.Delivered(ctx, "a", bySeq[k], 1, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Dead(ctx, "a", bySeq["C"], 1, "refused", old, store.OnDeadHold); err != nil {
		t.Fatal(err)
	}
	// B still waits; C is a replayable dead letter; A is delivered and old; D is young.
	res, err := s.Purge(ctx, store.Retention{Events: 7 * 24 * time.Hour, DeadLetters: 30 * 24 * time.Hour, Quarantine: 7 * 24 * time.Hour}, young.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 1 || res.Deliveries != 1 || res.Quarantine != 1 || res.DeadLetters != 0 {
		t.Fatalf("purge = %+v; want A and its delivery, and the quarantine entry", res)
	}
	st := stats(t, s)
	if st.Events != 3 || st.Deliveries != 1 {
		t.Fatalf("after the purge: %d events, %d deliveries; want B, C, D and D's delivery", st.Events, st.Deliveries)
	}
	if p := pending(t, s, "a", young.Add(time.Hour)); len(p) != 1 || p[0].Event.Key != "B" {
		t.Fatalf("pending after the purge = %+v; want B", p)
	}
	dl, _ := s.DeadLetters(ctx, "a", 0)
	if len(dl) != 1 || dl[0].Event.Key != "C" {
		t.Fatalf("dead letters after the purge = %+v; want C kept (replayable)", dl)
	}
	// Dismissed, the dead letter goes after its retention.
	if _, err := s.Dismiss(ctx, []int64{dl[0].ID}, old); err != nil {
		t.Fatal(err)
	}
	res, err = s.Purge(ctx, store.Retention{DeadLetters: 30 * 24 * time.Hour}, old.Add(31*24*time.Hour))
	if err != nil || res.DeadLetters != 1 {
		t.Fatalf("purge of dismissed dead letters = %+v, %v", res, err)
	}
	// The next pass steps back over what it skipped: C's event, whose dead letter is
	// gone, goes now; B, still waiting, stays.
	if res, err := s.Purge(ctx, store.Retention{Events: 7 * 24 * time.Hour}, young.Add(time.Hour)); err != nil || res.Events != 1 {
		t.Fatalf("second purge = %+v, %v; want C's event", res, err)
	}
	if res, err := s.Purge(ctx, store.Retention{Events: 7 * 24 * time.Hour}, young.Add(time.Hour)); err != nil || res.Events != 0 {
		t.Fatalf("third purge = %+v, %v; want nothing", res, err)
	}
}
