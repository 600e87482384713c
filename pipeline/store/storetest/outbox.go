package storetest

import (
	"slices"
	"strings"
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
	// Oldest due first: record 2's row has been due since t0, the retry since next.
	p = pending(t, s, "a", next)
	if !slices.Equal(seqs(p), []int64{seq2, seq1}) {
		t.Fatalf("at the retry time Pending = %v, want %v", seqs(p), []int64{seq2, seq1})
	}
	if r := p[1]; r.Attempts != 3 || r.LastErr != "HTTP 503: máy chủ bận" || !r.NextAt.Equal(next) {
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

	if err := s.Dead(ctx, "a", seq1, 5, "permanent: -213 not a follower", t0.Add(time.Minute), store.OnDeadHold); err != nil {
		t.Fatalf("Dead: %v", err)
	}
	if got := pending(t, s, "a", t0); !slices.Equal(seqs(got), []int64{seq2}) {
		t.Errorf("after Dead Pending(a) = %v, want %v", seqs(got), []int64{seq2})
	}
	if got := pending(t, s, "b", t0); !slices.Equal(seqs(got), []int64{seq1}) {
		t.Errorf("Dead for a touched b: %v", seqs(got))
	}
	wantNotFound(t, "Dead twice", s.Dead(ctx, "a", seq1, 5, "again", t0, store.OnDeadHold))

	dl, err := s.DeadLetters(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 {
		t.Fatalf("DeadLetters = %d rows, want 1", len(dl))
	}
	d := dl[0]
	if d.Sink != "a" || d.Seq != seq1 || d.Attempts != 5 || d.Reason != "permanent: -213 not a follower" || !d.At.Equal(t0.Add(time.Minute)) ||
		d.State != store.DeadHolding || !d.StateAt.IsZero() || d.Held != 0 {
		t.Errorf("dead letter = %+v", d)
	}
	sameEvent(t, d.Event, e1)

	replayAt := t0.Add(2 * time.Hour)
	res, err := s.Replay(ctx, []int64{d.ID, d.ID, d.ID + 1000}, replayAt)
	if err != nil || res != (store.ReplayResult{Replayed: 1}) {
		t.Fatalf("Replay = %+v, %v; want 1 replayed (unknown and repeated ids ignored)", res, err)
	}
	if dl, _ := s.DeadLetters(ctx, "", 0); len(dl) != 0 {
		t.Errorf("dead letters left after replay: %+v", dl)
	}
	if got := pending(t, s, "a", replayAt.Add(-time.Second)); !slices.Equal(seqs(got), []int64{seq2}) {
		t.Errorf("before the replay time Pending(a) = %v, want only the other record's %d", seqs(got), seq2)
	}
	got := pending(t, s, "a", replayAt)
	if !slices.Equal(seqs(got), []int64{seq2, seq1}) {
		t.Fatalf("after replay Pending(a) = %v, want %v (oldest due first)", seqs(got), []int64{seq2, seq1})
	}
	if r := got[1]; r.Attempts != 0 || r.LastErr != "" || !r.NextAt.Equal(replayAt) || !r.ReplayedAt.Equal(replayAt) || !r.AgeFrom().Equal(replayAt) {
		t.Errorf("replayed row = attempts %d err %q next %v replayed %v; want 0, \"\", %v, %v", r.Attempts, r.LastErr, r.NextAt, r.ReplayedAt, replayAt, replayAt)
	}
	if r := got[0]; !r.ReplayedAt.IsZero() || !r.AgeFrom().Equal(t0) {
		t.Errorf("a row never replayed has ReplayedAt %v, AgeFrom %v; want zero and its detection time", r.ReplayedAt, r.AgeFrom())
	}
	if res, err := s.Replay(ctx, []int64{d.ID}, replayAt); err != nil || res != (store.ReplayResult{}) {
		t.Errorf("second Replay = %+v, %v; want nothing", res, err)
	}
	if res, err := s.Replay(ctx, nil, replayAt); err != nil || res != (store.ReplayResult{}) {
		t.Errorf("Replay(nil) = %+v, %v; want nothing", res, err)
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
		if err := s.Dead(ctx, sink, p[0].Seq, 1, "r", t0.Add(time.Duration(i)*time.Minute), store.OnDeadHold); err != nil {
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

// versions queues versions 1..n of record "1" and version 1 of record "2", all
// routed to sinks a and b, and returns record 1's seqs in order and record 2's.
// The seqs are read by delivering everything to a third sink, z.
func versions(t *testing.T, s store.Store, n int) (rec1 []int64, rec2 int64) {
	t.Helper()
	var evs []store.OutboxEvent
	for v := 1; v <= n; v++ {
		evs = append(evs, routed(event("src", "d", "1", int64(v), map[string]any{"v": int64(v)}), "a", "b", "z"))
	}
	evs = append(evs, routed(event("src", "d", "2", 1, nil), "a", "b", "z"))
	queue(t, s, t0, evs...)
	for {
		p := pending(t, s, "z", t0)
		if len(p) == 0 {
			break
		}
		for _, r := range p {
			if r.Event.Key == "1" {
				rec1 = append(rec1, r.Seq)
			} else {
				rec2 = r.Seq
			}
			if err := s.Delivered(t.Context(), "z", r.Seq, 1, t0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(rec1) != n || rec2 == 0 {
		t.Fatalf("queued %v and %d, want %d events of record 1 and one of record 2", rec1, rec2, n)
	}
	return rec1, rec2
}

// deliverAll delivers what Pending hands out until nothing is due, returning the
// seqs in delivery order.
func deliverAll(t *testing.T, s store.Store, sink string, now time.Time) []int64 {
	t.Helper()
	var order []int64
	for {
		p := pending(t, s, sink, now)
		if len(p) == 0 {
			return order
		}
		for _, r := range p {
			if err := s.Delivered(t.Context(), sink, r.Seq, 1, now); err != nil {
				t.Fatalf("Delivered(%s, %d): %v", sink, r.Seq, err)
			}
			order = append(order, r.Seq)
		}
	}
}

func deadLetter(t *testing.T, s store.Store, sink string, seq int64) store.DeadLetter {
	t.Helper()
	dl, err := s.DeadLetters(t.Context(), sink, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dl {
		if d.Seq == seq {
			return d
		}
	}
	t.Fatalf("no dead letter of seq %d for sink %s in %+v", seq, sink, dl)
	return store.DeadLetter{}
}

// A holding dead letter keeps its record's later events back for its sink until
// it is replayed; then the record is delivered in order.
func testDeadHoldsRecordUntilReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	v, other := versions(t, s, 3)
	if err := s.Dead(ctx, "a", v[0], 1, "HTTP 422", t0, store.OnDeadHold); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, s, "a", t0.Add(time.Hour)); !slices.Equal(seqs(got), []int64{other}) {
		t.Fatalf("Pending(a) with record 1's first event dead = %v, want only record 2's %d", seqs(got), other)
	}
	if got := pending(t, s, "b", t0); !slices.Equal(seqs(got), []int64{v[0], other}) {
		t.Errorf("a dead letter of sink a held sink b: Pending(b) = %v", seqs(got))
	}
	if d := deadLetter(t, s, "a", v[0]); d.State != store.DeadHolding || d.Held != 2 {
		t.Errorf("dead letter state %q held %d, want holding 2", d.State, d.Held)
	}
	st := stats(t, s)
	checkCounts(t, "HeldRecords", st.HeldRecords, map[string]int{"a": 1})
	checkCounts(t, "HeldEvents", st.HeldEvents, map[string]int{"a": 2})
	// Delivering other records changes nothing for the held one.
	if got := deliverAll(t, s, "a", t0); !slices.Equal(got, []int64{other}) {
		t.Fatalf("delivered %v, want only %d", got, other)
	}

	replayAt := t0.Add(48 * time.Hour)
	res, err := s.Replay(ctx, []int64{deadLetter(t, s, "a", v[0]).ID}, replayAt)
	if err != nil || res != (store.ReplayResult{Replayed: 1}) {
		t.Fatalf("Replay = %+v, %v", res, err)
	}
	p := pending(t, s, "a", replayAt)
	if len(p) != 1 || p[0].Seq != v[0] || !p[0].ReplayedAt.Equal(replayAt) {
		t.Fatalf("after replay Pending(a) = %+v, want the replayed event first", p)
	}
	if err := s.Delivered(ctx, "a", v[0], 1, replayAt); err != nil {
		t.Fatal(err)
	}
	// The events it held count their age from the replay too.
	p = pending(t, s, "a", replayAt)
	if len(p) != 1 || p[0].Seq != v[1] || !p[0].AgeFrom().Equal(replayAt) {
		t.Fatalf("after the replayed event Pending(a) = %+v, want %d with its age from the replay", p, v[1])
	}
	if got := deliverAll(t, s, "a", replayAt); !slices.Equal(got, v[1:]) {
		t.Errorf("delivered %v, want %v in order", got, v[1:])
	}
	st = stats(t, s)
	checkCounts(t, "HeldRecords", st.HeldRecords, map[string]int{})
	checkCounts(t, "HeldEvents", st.HeldEvents, map[string]int{})
}

// Under on_dead skip the later events flow, the dead letter is superseded when a
// newer event of its record reaches the sink, and replay does not resend it.
func testDeadSkipIsSuperseded(t *testing.T, s store.Store) {
	ctx := t.Context()
	v, other := versions(t, s, 2)
	if err := s.Dead(ctx, "a", v[0], 1, "HTTP 422", t0, store.OnDeadSkip); err != nil {
		t.Fatal(err)
	}
	d := deadLetter(t, s, "a", v[0])
	if d.State != store.DeadOpen || d.Held != 0 {
		t.Errorf("dead letter under skip: state %q held %d, want open 0", d.State, d.Held)
	}
	if st := stats(t, s); st.HeldRecords["a"] != 0 || st.HeldEvents["a"] != 0 {
		t.Errorf("Stats held %v / %v under skip", st.HeldRecords, st.HeldEvents)
	}
	// A dead letter of another sink stays replayable: supersession is per sink.
	pb := pending(t, s, "b", t0)
	if err := s.Dead(ctx, "b", pb[0].Seq, 1, "HTTP 422", t0, store.OnDeadSkip); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	if got := deliverAll(t, s, "a", at); !slices.Equal(got, []int64{v[1], other}) {
		t.Fatalf("delivered %v, want %v", got, []int64{v[1], other})
	}
	d = deadLetter(t, s, "a", v[0])
	if d.State != store.DeadSuperseded || !d.StateAt.Equal(at) {
		t.Errorf("after a newer event was delivered: state %q at %v, want superseded at %v", d.State, d.StateAt, at)
	}
	if db := deadLetter(t, s, "b", v[0]); db.State != store.DeadOpen {
		t.Errorf("sink b's dead letter became %q by a delivery to sink a", db.State)
	}
	res, err := s.Replay(ctx, []int64{d.ID}, at)
	if err != nil || res != (store.ReplayResult{Superseded: 1}) {
		t.Fatalf("Replay of a superseded dead letter = %+v, %v; want it counted, not resent", res, err)
	}
	if got := pending(t, s, "a", at); len(got) != 0 {
		t.Errorf("a superseded dead letter was resent: Pending(a) = %v", seqs(got))
	}
	if d := deadLetter(t, s, "a", v[0]); d.State != store.DeadSuperseded {
		t.Errorf("Replay changed a superseded dead letter to %q", d.State)
	}
}

// A replay that puts an older event back while a newer one is in flight loses:
// when the newer one is delivered, the older row goes to dead letters superseded.
func testDeliveredSupersedesReplayedOlderEvent(t *testing.T, s store.Store) {
	ctx := t.Context()
	v, _ := versions(t, s, 2)
	if err := s.Dead(ctx, "a", v[0], 1, "HTTP 422", t0, store.OnDeadSkip); err != nil {
		t.Fatal(err)
	}
	inFlight := pending(t, s, "a", t0)
	if len(inFlight) != 2 || inFlight[0].Seq != v[1] {
		t.Fatalf("Pending(a) = %v, want %d first", seqs(inFlight), v[1])
	}
	if res, err := s.Replay(ctx, []int64{deadLetter(t, s, "a", v[0]).ID}, t0); err != nil || res.Replayed != 1 {
		t.Fatalf("Replay = %+v, %v", res, err)
	}
	if err := s.Delivered(ctx, "a", v[1], 1, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pending(t, s, "a", t0.Add(time.Hour)) {
		if p.Seq == v[0] {
			t.Fatalf("the older event is still due after the newer one was delivered")
		}
	}
	if d := deadLetter(t, s, "a", v[0]); d.State != store.DeadSuperseded || !strings.Contains(d.Reason, "superseded") {
		t.Errorf("the older event's dead letter: state %q reason %q, want superseded", d.State, d.Reason)
	}
}

// Dismissing a holding dead letter releases its record; it is never resent.
func testDismissReleasesRecord(t *testing.T, s store.Store) {
	ctx := t.Context()
	v, other := versions(t, s, 2)
	if err := s.Dead(ctx, "a", v[0], 1, "HTTP 422", t0, store.OnDeadHold); err != nil {
		t.Fatal(err)
	}
	id := deadLetter(t, s, "a", v[0]).ID
	at := t0.Add(time.Hour)
	if n, err := s.Dismiss(ctx, []int64{id, id, id + 1000}, at); err != nil || n != 1 {
		t.Fatalf("Dismiss = %d, %v; want 1", n, err)
	}
	p := pending(t, s, "a", at)
	if !slices.Equal(seqs(p), []int64{v[1], other}) || !p[0].ReplayedAt.Equal(at) {
		t.Fatalf("after Dismiss Pending(a) = %+v, want %d (age from the dismissal) and %d", p, v[1], other)
	}
	if d := deadLetter(t, s, "a", v[0]); d.State != store.DeadDismissed || !d.StateAt.Equal(at) {
		t.Errorf("dismissed dead letter: state %q at %v", d.State, d.StateAt)
	}
	if n, err := s.Dismiss(ctx, []int64{id}, at); err != nil || n != 0 {
		t.Errorf("second Dismiss = %d, %v; want 0", n, err)
	}
	if res, err := s.Replay(ctx, []int64{id}, at); err != nil || res != (store.ReplayResult{Dismissed: 1}) {
		t.Errorf("Replay of a dismissed dead letter = %+v, %v; want it counted, not resent", res, err)
	}
	if got := deliverAll(t, s, "a", at); !slices.Equal(got, []int64{v[1], other}) {
		t.Errorf("delivered %v, want %v", got, []int64{v[1], other})
	}
}
