package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func routed(ev *pipeline.Event, sinks ...string) store.OutboxEvent {
	return store.OutboxEvent{Event: ev, Sinks: sinks}
}

// queue commits events, one batch, for source src at at.
func queue(t *testing.T, s store.Store, at time.Time, events ...store.OutboxEvent) {
	t.Helper()
	commit(t, s, store.Batch{Source: "src", At: at, Events: events})
}

func testPendingOrder(t *testing.T, s store.Store) {
	e := make([]*pipeline.Event, 6)
	for i := 1; i < len(e); i++ {
		e[i] = event("src", "dossier", string(rune('A'+i)), 1, map[string]any{"n": int64(i), "name": "Đức"})
	}
	commit(t, s, store.Batch{Source: "src1", At: t0, Events: []store.OutboxEvent{routed(e[1], "a"), routed(e[2], "a", "b")}})
	commit(t, s, store.Batch{Source: "src2", At: t0, Events: []store.OutboxEvent{routed(e[3], "b")}})
	commit(t, s, store.Batch{Source: "src1", At: t0, Events: []store.OutboxEvent{routed(e[4], "b", "a"), routed(e[5], "a")}})

	check := func(sink string, want ...*pipeline.Event) []store.Pending {
		t.Helper()
		got := pending(t, s, sink, t0)
		if len(got) != len(want) {
			t.Fatalf("Pending(%s) returned %d rows, want %d", sink, len(got), len(want))
		}
		for i, p := range got {
			if p.Sink != sink || p.Attempts != 0 || p.LastErr != "" || !p.NextAt.Equal(t0) {
				t.Errorf("Pending(%s)[%d] = sink %q attempts %d err %q next %v", sink, i, p.Sink, p.Attempts, p.LastErr, p.NextAt)
			}
			sameEvent(t, p.Event, want[i])
		}
		if !slices.IsSorted(seqs(got)) {
			t.Errorf("Pending(%s) seqs %v not ascending", sink, seqs(got))
		}
		return got
	}
	a := check("a", e[1], e[2], e[4], e[5])
	b := check("b", e[2], e[3], e[4])
	if a[1].Seq != b[0].Seq || a[2].Seq != b[2].Seq {
		t.Errorf("one event has one seq across sinks: a %v b %v", seqs(a), seqs(b))
	}
	if a[0].Seq >= b[1].Seq || b[1].Seq >= a[2].Seq {
		t.Errorf("seq does not follow commit order: a %v b %v", seqs(a), seqs(b))
	}
	limited, err := s.Pending(t.Context(), "a", t0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs(limited), seqs(a[:2])) {
		t.Errorf("Pending(a, limit 2) = %v, want %v", seqs(limited), seqs(a[:2]))
	}
	if none := pending(t, s, "unknown", t0); len(none) != 0 {
		t.Errorf("Pending(unknown sink) = %v", seqs(none))
	}
}

func testPendingDue(t *testing.T, s store.Store) {
	e1, e2, e3 := event("src", "d", "1", 1, nil), event("src", "d", "2", 1, nil), event("src", "d", "3", 1, nil)
	e2v2 := event("src", "d", "2", 2, nil)
	queue(t, s, t0, routed(e1, "a"))
	queue(t, s, t0.Add(time.Hour), routed(e2, "a"))
	queue(t, s, t0, routed(e3, "a", "b"), routed(e2v2, "a"))
	if p := pending(t, s, "a", t0.Add(-time.Microsecond)); len(p) != 0 {
		t.Errorf("rows due before they were queued: %v", seqs(p))
	}
	// e2 is not due; other records go on, but e2's own later version waits for it.
	if p := pending(t, s, "a", t0); len(p) != 2 || p[0].Event.ID != e1.ID || p[1].Event.ID != e3.ID {
		t.Errorf("Pending(a) at t0 = %v, want e1 and e3 (e2 v2 waits behind e2)", seqs(p))
	}
	if p := pending(t, s, "b", t0); len(p) != 1 || p[0].Event.ID != e3.ID {
		t.Errorf("Pending(b) at t0 = %v, want e3: other sinks are not held back", seqs(p))
	}
	// Due is inclusive, and "now" given in another zone is the same instant.
	now := t0.Add(time.Hour).In(time.FixedZone("ICT", 7*3600))
	if p := pending(t, s, "a", now); len(p) != 3 {
		t.Errorf("Pending(a) at t0+1h = %v, want e1, e2, e3 (e2 v2 still behind e2)", seqs(p))
	}
}

func testDelivered(t *testing.T, s store.Store) {
	ctx := t.Context()
	queue(t, s, t0, routed(event("src", "d", "1", 1, nil), "a", "b"), routed(event("src", "d", "2", 1, nil), "a"))
	p := pending(t, s, "a", t0)
	if err := s.Delivered(ctx, "a", p[0].Seq, 1, t0.Add(time.Second)); err != nil {
		t.Fatalf("Delivered: %v", err)
	}
	if got := pending(t, s, "a", t0); !slices.Equal(seqs(got), []int64{p[1].Seq}) {
		t.Errorf("after delivery Pending(a) = %v, want %v", seqs(got), []int64{p[1].Seq})
	}
	if got := pending(t, s, "b", t0); !slices.Equal(seqs(got), []int64{p[0].Seq}) {
		t.Errorf("delivery to a touched b: Pending(b) = %v", seqs(got))
	}
	if st := stats(t, s); st.Deliveries != 1 {
		t.Errorf("Deliveries = %d, want 1", st.Deliveries)
	}
	wantNotFound(t, "Delivered twice", s.Delivered(ctx, "a", p[0].Seq, 1, t0))
	wantNotFound(t, "Delivered to a sink it was not routed to", s.Delivered(ctx, "c", p[0].Seq, 1, t0))
	if st := stats(t, s); st.Deliveries != 1 {
		t.Errorf("after failed Delivered calls Deliveries = %d, want 1", st.Deliveries)
	}
}

func testRetry(t *testing.T, s store.Store) {
	ctx := t.Context()
	queue(t, s, t0, routed(event("src", "d", "1", 1, nil), "a"), routed(event("src", "d", "2", 1, nil), "a"),
		routed(event("src", "d", "1", 2, nil), "a"))
	p := pending(t, s, "a", t0)
	if len(p) != 2 {
		t.Fatalf("Pending = %v, want two records' first events", seqs(p))
	}
	seq1, seq2 := p[0].Seq, p[1].Seq
	next := t0.Add(10 * time.Minute)
	if err := s.Retry(ctx, "a", seq1, 3, next, "HTTP 503: máy chủ bận"); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if p := pending(t, s, "a", t0); !slices.Equal(seqs(p), []int64{seq2}) {
		t.Errorf("before the retry time Pending = %v, want only the other record's %d: record 1's later event waits behind the failed one", seqs(p), seq2)
	}
	p = pending(t, s, "a", next)
	if !slices.Equal(seqs(p), []int64{seq1, seq2}) {
		t.Fatalf("at the retry time Pending = %v, want %v", seqs(p), []int64{seq1, seq2})
	}
	if r := p[0]; r.Attempts != 3 || r.LastErr != "HTTP 503: máy chủ bận" || !r.NextAt.Equal(next) {
		t.Errorf("retried row = attempts %d err %q next %v", r.Attempts, r.LastErr, r.NextAt)
	}
	wantNotFound(t, "Retry of unknown row", s.Retry(ctx, "a", seq2+100, 1, next, "x"))
}

func testDeadAndReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	e1, e2 := event("src", "d", "1", 1, map[string]any{"phone": "84901234567"}), event("src", "d", "2", 1, nil)
	queue(t, s, t0, routed(e1, "a", "b"), routed(e2, "a"))
	p := pending(t, s, "a", t0)
	seq1, seq2 := p[0].Seq, p[1].Seq

	if err := s.Dead(ctx, "a", seq1, 5, "permanent: -213 not a follower", t0.Add(time.Minute)); err != nil {
		t.Fatalf("Dead: %v", err)
	}
	if got := pending(t, s, "a", t0); !slices.Equal(seqs(got), []int64{seq2}) {
		t.Errorf("after Dead Pending(a) = %v, want %v", seqs(got), []int64{seq2})
	}
	if got := pending(t, s, "b", t0); !slices.Equal(seqs(got), []int64{seq1}) {
		t.Errorf("Dead for a touched b: %v", seqs(got))
	}
	wantNotFound(t, "Dead twice", s.Dead(ctx, "a", seq1, 5, "again", t0))

	dl, err := s.DeadLetters(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 {
		t.Fatalf("DeadLetters = %d rows, want 1", len(dl))
	}
	d := dl[0]
	if d.Sink != "a" || d.Seq != seq1 || d.Attempts != 5 || d.Reason != "permanent: -213 not a follower" || !d.At.Equal(t0.Add(time.Minute)) {
		t.Errorf("dead letter = %+v", d)
	}
	sameEvent(t, d.Event, e1)

	replayAt := t0.Add(2 * time.Hour)
	n, err := s.Replay(ctx, []int64{d.ID, d.ID, d.ID + 1000}, replayAt)
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1 (unknown and repeated ids ignored)", n, err)
	}
	if dl, _ := s.DeadLetters(ctx, "", 0); len(dl) != 0 {
		t.Errorf("dead letters left after replay: %+v", dl)
	}
	if got := pending(t, s, "a", replayAt.Add(-time.Second)); !slices.Equal(seqs(got), []int64{seq2}) {
		t.Errorf("before the replay time Pending(a) = %v, want only the other record's %d", seqs(got), seq2)
	}
	got := pending(t, s, "a", replayAt)
	if !slices.Equal(seqs(got), []int64{seq1, seq2}) {
		t.Fatalf("after replay Pending(a) = %v, want %v", seqs(got), []int64{seq1, seq2})
	}
	if r := got[0]; r.Attempts != 0 || r.LastErr != "" || !r.NextAt.Equal(replayAt) {
		t.Errorf("replayed row = attempts %d err %q next %v; want 0, \"\", %v", r.Attempts, r.LastErr, r.NextAt, replayAt)
	}
	if n, err := s.Replay(ctx, []int64{d.ID}, replayAt); err != nil || n != 0 {
		t.Errorf("second Replay = %d, %v; want 0", n, err)
	}
	if n, err := s.Replay(ctx, nil, replayAt); err != nil || n != 0 {
		t.Errorf("Replay(nil) = %d, %v; want 0", n, err)
	}
}

func testDeadLettersList(t *testing.T, s store.Store) {
	ctx := t.Context()
	queue(t, s, t0,
		routed(event("src", "d", "1", 1, nil), "a"),
		routed(event("src", "d", "2", 1, nil), "b"),
		routed(event("src", "d", "3", 1, nil), "a"))
	var order []int64
	for i, sink := range []string{"a", "b", "a"} {
		p := pending(t, s, sink, t0)
		if err := s.Dead(ctx, sink, p[0].Seq, 1, "r", t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		order = append(order, p[0].Seq)
	}
	list := func(sink string, limit int) []int64 {
		t.Helper()
		dl, err := s.DeadLetters(ctx, sink, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, d := range dl {
			out = append(out, d.Seq)
		}
		return out
	}
	if got := list("", 0); !slices.Equal(got, order) {
		t.Errorf("DeadLetters(all) = %v, want %v", got, order)
	}
	if got := list("a", 0); !slices.Equal(got, []int64{order[0], order[2]}) {
		t.Errorf("DeadLetters(a) = %v, want %v", got, []int64{order[0], order[2]})
	}
	if got := list("", 2); !slices.Equal(got, order[1:]) {
		t.Errorf("DeadLetters(all, 2) = %v, want the newest two %v", got, order[1:])
	}
}
