package storetest

import (
	"maps"
	"testing"

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
