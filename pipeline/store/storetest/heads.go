package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// far is late enough that every waiting row is due.
var far = t0.Add(1000 * time.Hour)

// heads returns the sink's heads (every one due at far) as "key@version".
func heads(t *testing.T, s store.Store, sink string) []string {
	t.Helper()
	var out []string
	for _, p := range pending(t, s, sink, far) {
		out = append(out, fmt.Sprintf("%s@%d", p.Event.Key, p.Event.Version))
	}
	slices.Sort(out)
	return out
}

func wantHeads(t *testing.T, s store.Store, sink string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := heads(t, s, sink); !slices.Equal(got, want) {
		t.Errorf("heads of sink %s = %v, want %v", sink, got, want)
	}
}

// ev is version v of record src/d/key.
func ev(key string, v int64) *pipeline.Event {
	return event("src", "d", key, v, map[string]any{"v": v})
}

// A commit makes a new row its record's head only when nothing of the record waits
// for that sink: no older row (in the store or earlier in the batch) and no holding
// dead letter.
func testCommitMarksHeads(t *testing.T, s store.Store) {
	queue(t, s, t0, routed(ev("A", 1), "a"), routed(ev("A", 2), "a", "b"), routed(ev("B", 1), "a"))
	wantHeads(t, s, "a", "A@1", "B@1")
	wantHeads(t, s, "b", "A@2") // A@1 was not routed to b: A@2 is b's first of A
	queue(t, s, t0, routed(ev("A", 3), "a", "b"), routed(ev("C", 1), "a"), routed(ev("C", 2), "a"))
	wantHeads(t, s, "a", "A@1", "B@1", "C@1")
	wantHeads(t, s, "b", "A@2")

	// A record held by a dead letter: its new events wait; under skip they do not.
	p := pending(t, s, "a", t0)
	var b1 int64
	for _, r := range p {
		if r.Event.Key == "B" {
			b1 = r.Seq
		}
	}
	if err := s.Dead(t.Context(), "a", b1, 1, "HTTP 422", t0, store.OnDeadHold); err != nil {
		t.Fatal(err)
	}
	queue(t, s, t0, routed(ev("B", 2), "a"))
	wantHeads(t, s, "a", "A@1", "C@1")
	if _, err := s.Dismiss(t.Context(), []int64{deadLetter(t, s, "a", b1).ID}, t0); err != nil {
		t.Fatal(err)
	}
	wantHeads(t, s, "a", "A@1", "B@2", "C@1")
}

// Settle records a batch of outcomes of different kinds at once, and each moves
// its record's head as the single-outcome methods do.
func testSettleBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	var evs []store.OutboxEvent
	for _, k := range []string{"D", "R", "H", "S"} { // delivered, retried, dead holding, dead skipping
		evs = append(evs, routed(ev(k, 1), "a"), routed(ev(k, 2), "a"))
	}
	queue(t, s, t0, evs...)
	seq := map[string]int64{}
	for _, p := range pending(t, s, "a", t0) {
		seq[p.Event.Key] = p.Seq
	}
	at := t0.Add(time.Minute)
	next := t0.Add(time.Hour)
	outcomes := []store.Outcome{
		{Seq: seq["D"], Kind: store.OutcomeDelivered, Attempts: 1, At: at},
		{Seq: seq["R"], Kind: store.OutcomeRetry, Attempts: 2, At: at, NextAt: next, Err: "HTTP 503"},
		{Seq: seq["H"], Kind: store.OutcomeDead, Attempts: 1, At: at, Err: "HTTP 422", OnDead: store.OnDeadHold},
		{Seq: seq["S"], Kind: store.OutcomeDead, Attempts: 1, At: at, Err: "HTTP 422", OnDead: store.OnDeadSkip},
		{Seq: seq["S"] + 1000, Kind: store.OutcomeDelivered, Attempts: 1, At: at}, // not in the outbox
		{Seq: seq["D"], Kind: store.OutcomeDead, Attempts: 1, At: at, OnDead: "drop"},
	}
	res, err := s.Settle(ctx, "a", nil, outcomes)
	if err != nil {
		t.Fatalf("Settle: %v", err)
	}
	errs := res.Errs
	if res.Heads != 2 {
		t.Errorf("Settle made %d heads, want 2 (D@2 and S@2)", res.Heads)
	}
	for i, e := range errs[:4] {
		if e != nil {
			t.Errorf("outcome %d: %v", i, e)
		}
	}
	wantNotFound(t, "outcome of a row not in the outbox", errs[4])
	if errs[5] == nil || errors.Is(errs[5], store.ErrNotFound) {
		t.Errorf("an outcome with an unknown on_dead: %v, want it refused", errs[5])
	}
	wantHeads(t, s, "a", "D@2", "R@1", "S@2")
	if p := pending(t, s, "a", at); len(p) != 2 {
		t.Errorf("due at %v: %v, want D@2 and S@2 (R@1 waits for its retry)", at, seqs(p))
	}
	st := stats(t, s)
	if st.Deliveries != 1 || st.DeadLetters["a"] != 2 || st.Outbox["a"] != 5 {
		t.Errorf("stats: deliveries %d dead %v outbox %v; want 1, 2, 5", st.Deliveries, st.DeadLetters, st.Outbox)
	}
	if d := deadLetter(t, s, "a", seq["H"]); d.State != store.DeadHolding || d.Held != 1 || d.Reason != "HTTP 422" {
		t.Errorf("dead letter of H: %+v", d)
	}

	// Two outcomes of one record in one call apply in seq order.
	p := pending(t, s, "a", at)
	var d2 int64
	for _, r := range p {
		if r.Event.Key == "D" {
			d2 = r.Seq
		}
	}
	res, err = s.Settle(ctx, "a", nil, []store.Outcome{
		{Seq: d2, Kind: store.OutcomeDelivered, Attempts: 1, At: at},
		{Seq: d2, Kind: store.OutcomeDelivered, Attempts: 1, At: at},
	})
	if err != nil || res.Errs[0] != nil || !errors.Is(res.Errs[1], store.ErrNotFound) || res.Heads != 0 {
		t.Errorf("Settle of one seq twice = %+v, %v; want the second not found and no new head", res, err)
	}
	if none, err := s.Settle(ctx, "a", nil, nil); err != nil || len(none.Errs) != 0 {
		t.Errorf("Settle(nil) = %+v, %v", none, err)
	}
}

// A replay puts the replayed event in front of its record's queue, even when a
// later event of the record was its head (on_dead: skip).
func testReplayTakesTheHead(t *testing.T, s store.Store) {
	ctx := t.Context()
	v, other := versions(t, s, 3)
	if err := s.Dead(ctx, "a", v[0], 1, "HTTP 422", t0, store.OnDeadSkip); err != nil {
		t.Fatal(err)
	}
	wantHeads(t, s, "a", "1@2", "2@1")
	if _, err := s.Replay(ctx, []int64{deadLetter(t, s, "a", v[0]).ID}, t0); err != nil {
		t.Fatal(err)
	}
	wantHeads(t, s, "a", "1@1", "2@1")
	if got := deliverAll(t, s, "a", far); !slices.Equal(got, []int64{v[0], other, v[1], v[2]}) {
		t.Errorf("delivered %v, want %v", got, []int64{v[0], other, v[1], v[2]})
	}
}

// A sink that is down with a backlog: every head is retried into the future. A
// poll now finds nothing; the rows behind the heads never count as due.
func testDownSinkBacklog(t *testing.T, s store.Store) {
	ctx := t.Context()
	const records, each = 40, 25
	for v := int64(1); v <= each; v++ {
		var evs []store.OutboxEvent
		for r := range records {
			evs = append(evs, routed(ev(fmt.Sprintf("K%02d", r), v), "a"))
		}
		queue(t, s, t0, evs...)
	}
	down := t0.Add(time.Minute)
	var outcomes []store.Outcome
	for i, p := range pending(t, s, "a", t0) {
		outcomes = append(outcomes, store.Outcome{Seq: p.Seq, Kind: store.OutcomeRetry, Attempts: 1, At: t0,
			NextAt: down.Add(time.Duration(i) * time.Second), Err: "HTTP 503"})
	}
	if len(outcomes) != records {
		t.Fatalf("%d heads, want one per record (%d)", len(outcomes), records)
	}
	if _, err := s.Settle(ctx, "a", nil, outcomes); err != nil {
		t.Fatal(err)
	}
	if p := pending(t, s, "a", down.Add(-time.Second)); len(p) != 0 {
		t.Fatalf("%d rows due while every head waits for its retry", len(p))
	}
	p, err := s.Pending(ctx, "a", down.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 10 || p[0].Event.Version != 1 || !p[0].NextAt.Equal(down) || !p[9].NextAt.Equal(down.Add(9*time.Second)) {
		t.Fatalf("Pending(limit 10) = %v; want the first ten heads by retry time", seqs(p))
	}
	if st := stats(t, s); st.Outbox["a"] != records*each {
		t.Errorf("outbox %v, want %d", st.Outbox, records*each)
	}
}
