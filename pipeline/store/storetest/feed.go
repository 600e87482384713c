package storetest

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// firstSync commits a first-sync batch of new records the way change detection
// makes it: each record's created snapshot event with the id its content gives.
func firstSync(t *testing.T, s store.Store, at time.Time, sinks []string, keys ...string) map[string]*pipeline.Event {
	t.Helper()
	return firstSyncNew(t, s, at, sinks, false, keys...)
}

// firstSyncNew is firstSync with each entry's New set to isNew: the writer
// knows the store holds none of the keys.
func firstSyncNew(t *testing.T, s store.Store, at time.Time, sinks []string, isNew bool, keys ...string) map[string]*pipeline.Event {
	t.Helper()
	b := store.Batch{Source: "src", At: at}
	evs := map[string]*pipeline.Event{}
	for _, k := range keys {
		fields := map[string]any{"code": k, "status": int64(2), "citizen": "Nguyễn Văn \"An\""}
		evs[k] = addCreated(&b, s, at, sinks, k, fields, isNew)
	}
	commit(t, s, b)
	return evs
}

// addCreated adds to b record k's first-sync snapshot entry (New set to isNew)
// and its created event, with the id its content gives, routed to sinks.
func addCreated(b *store.Batch, s store.Store, at time.Time, sinks []string, k string, fields map[string]any, isNew bool) *pipeline.Event {
	hash := "h-" + k
	ev := &pipeline.Event{
		ID: pipeline.EventID("src", "dossier", k, 1, pipeline.EventCreated, hash), Type: pipeline.EventCreated,
		Source: "src", Entity: "dossier", Key: k, Agency: "UBND-CG", Version: 1, Epoch: s.Epoch(), Snapshot: true,
		After: fields, DetectedAt: at,
	}
	b.Snapshot = append(b.Snapshot, store.SnapshotEntry{Entity: "dossier", Key: k, Hash: hash, Version: 1, Fields: fields, New: isNew})
	b.Events = append(b.Events, store.OutboxEvent{Event: ev, Sinks: sinks})
	return ev
}

// wantWhole is ev as a sink receives it from the store: numbers decoded as JSON
// numbers.
func wantWhole(ev *pipeline.Event) *pipeline.Event {
	w := *ev
	w.After = map[string]any{}
	for k, v := range ev.After {
		if i, ok := v.(int64); ok {
			v = int(i)
		}
		w.After[k] = v
	}
	return &w
}

func keysOf(ps []store.Pending) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Event.Key + "@" + string(rune('0'+p.Event.Version))
	}
	return out
}

func settle(t *testing.T, s store.Store, sink string, os ...store.Outcome) {
	t.Helper()
	res, err := s.Settle(t.Context(), sink, nil, os)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range res.Errs {
		if err != nil {
			t.Fatalf("outcome %d (seq %d): %v", i, os[i].Seq, err)
		}
	}
}

// testSnapshotFeed: a first sync's created events are handed out whole, in seq
// order, to every sink they are routed to; deliveries that end out of order,
// retries and dead letters are recorded; a replayed batch adds nothing.
func testSnapshotFeed(t *testing.T, s store.Store) {
	sinks := []string{"a", "b"}
	evs := firstSync(t, s, t0, sinks, "HS1", "HS2", "HS3")
	firstSync(t, s, t0, sinks, "HS1", "HS2", "HS3") // replayed after a crash: nothing new
	if st := stats(t, s); st.Outbox["a"] != 3 || st.Outbox["b"] != 3 || st.Events != 3 || st.Deliveries != 0 {
		t.Fatalf("after the first sync: outbox %v, events %d, deliveries %d; want 3 each, 3, 0", st.Outbox, st.Events, st.Deliveries)
	}
	p := pending(t, s, "a", t0)
	if got := keysOf(p); !slices.Equal(got, []string{"HS1@1", "HS2@1", "HS3@1"}) {
		t.Fatalf("pending for a = %v, want HS1, HS2, HS3 in commit order", got)
	}
	if !slices.IsSorted(seqs(p)) || p[0].Record != store.RecordID("src", "dossier", "HS1") || p[0].Attempts != 0 {
		t.Errorf("pending rows %+v", p)
	}
	for _, it := range p {
		sameEvent(t, it.Event, wantWhole(evs[it.Event.Key]))
	}
	// What is in flight is left out.
	if got, err := s.Pending(t.Context(), "a", t0, 10, p[0].Seq, p[1].Seq); err != nil || len(got) != 1 || got[0].Seq != p[2].Seq {
		t.Fatalf("pending skipping HS1 and HS2 = %v, %v; want HS3", keysOf(got), err)
	}
	if got, err := s.Pending(t.Context(), "a", t0, 2); err != nil || len(got) != 2 {
		t.Fatalf("pending with limit 2 = %d rows, %v", len(got), err)
	}

	// HS2 is delivered before HS1 ends; HS1 fails and is retried later.
	settle(t, s, "a", store.Outcome{Seq: p[1].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0})
	if got := keysOf(pending(t, s, "a", t0)); !slices.Equal(got, []string{"HS1@1", "HS3@1"}) {
		t.Fatalf("after HS2's delivery: pending %v, want HS1, HS3", got)
	}
	retryAt := t0.Add(time.Minute)
	settle(t, s, "a", store.Outcome{Seq: p[0].Seq, Kind: store.OutcomeRetry, Attempts: 1, At: t0, NextAt: retryAt, Err: "503"})
	if got := keysOf(pending(t, s, "a", t0)); !slices.Equal(got, []string{"HS3@1"}) {
		t.Fatalf("while HS1 waits for its retry: pending %v, want HS3", got)
	}
	later := pending(t, s, "a", retryAt)
	if got := keysOf(later); !slices.Equal(got, []string{"HS3@1", "HS1@1"}) || later[1].Attempts != 1 || later[1].LastErr != "503" ||
		later[1].Seq != p[0].Seq {
		t.Fatalf("at the retry: pending %v (%+v), want HS3 then HS1 after 1 attempt", got, later)
	}
	sameEvent(t, later[1].Event, wantWhole(evs["HS1"]))
	settle(t, s, "a",
		store.Outcome{Seq: p[0].Seq, Kind: store.OutcomeDelivered, Attempts: 2, At: retryAt},
		store.Outcome{Seq: p[2].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: retryAt})
	if got := pending(t, s, "a", retryAt); len(got) != 0 {
		t.Fatalf("sink a has everything; pending %v", keysOf(got))
	}
	// A second outcome of a settled feed event finds nothing.
	res, err := s.Settle(t.Context(), "a", nil, []store.Outcome{{Seq: p[2].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: retryAt}})
	if err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, "settling a delivered feed event again", res.Errs[0])

	// Sink b: HS1 goes to dead letters (holding), whole.
	pb := pending(t, s, "b", t0)
	settle(t, s, "b", store.Outcome{Seq: pb[0].Seq, Kind: store.OutcomeDead, Attempts: 1, At: t0, Err: "refused"})
	dl, err := s.DeadLetters(t.Context(), "b", 0)
	if err != nil || len(dl) != 1 || dl[0].State != store.DeadHolding {
		t.Fatalf("dead letters of b = %+v, %v", dl, err)
	}
	sameEvent(t, dl[0].Event, wantWhole(evs["HS1"]))
	if st := stats(t, s); st.Outbox["a"] != 0 || st.Outbox["b"] != 2 || st.Deliveries != 3 || st.Events != 3 {
		t.Fatalf("stats: outbox %v, deliveries %d, events %d; want a 0, b 2, 3, 3", st.Outbox, st.Deliveries, st.Events)
	}
	// Replayed, it is delivered like any event.
	if r, err := s.Replay(t.Context(), []int64{dl[0].ID}, retryAt); err != nil || r.Replayed != 1 {
		t.Fatalf("replay = %+v, %v", r, err)
	}
	if got := keysOf(pending(t, s, "b", retryAt)); !slices.Equal(got, []string{"HS2@1", "HS3@1", "HS1@1"}) {
		t.Fatalf("after the replay: pending for b %v", got)
	}
}

// testSnapshotFeedRecordOrder: a record that changes while its feed event still
// waits for a sink (or is in flight to it) gets its later events after it, and
// the first event keeps its fields.
func testSnapshotFeedRecordOrder(t *testing.T, s store.Store) {
	evs := firstSync(t, s, t0, []string{"a", "b"}, "HS1", "HS2")
	pa := pending(t, s, "a", t0)
	// a has HS1; b has HS1 in flight when the record changes.
	settle(t, s, "a", store.Outcome{Seq: pa[0].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0})
	pb := pending(t, s, "b", t0)
	if len(pb) != 2 || pb[0].Event.Key != "HS1" {
		t.Fatalf("pending for b = %v", keysOf(pb))
	}
	v2 := map[string]any{"code": "HS1", "status": int64(9), "citizen": "Nguyễn Văn \"An\""}
	updated := event("src", "dossier", "HS1", 2, v2)
	updated.Before = evs["HS1"].After
	at := t0.Add(time.Second)
	commit(t, s, store.Batch{Source: "src", At: at,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: "HS1", Hash: "h2", Version: 2, Fields: v2}},
		Events:   []store.OutboxEvent{{Event: updated, Sinks: []string{"a", "b"}}}})

	// a delivered v1 already: v2 is its head. b must not see v2 before v1.
	if got := keysOf(pending(t, s, "a", at)); !slices.Equal(got, []string{"HS2@1", "HS1@2"}) {
		t.Errorf("pending for a = %v, want HS2@1 HS1@2", got)
	}
	got, err := s.Pending(t.Context(), "b", at, 10, pb[0].Seq) // HS1@1 in flight
	if err != nil || !slices.Equal(keysOf(got), []string{"HS2@1"}) {
		t.Fatalf("pending for b with HS1@1 in flight = %v, %v; want HS2@1 only", keysOf(got), err)
	}
	// The delivery in flight ends: HS1@2 follows.
	settle(t, s, "b", store.Outcome{Seq: pb[0].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: at})
	got = pending(t, s, "b", at)
	if !slices.Equal(keysOf(got), []string{"HS2@1", "HS1@2"}) {
		t.Fatalf("pending for b after HS1@1 = %v, want HS2@1 HS1@2", keysOf(got))
	}
	if st := stats(t, s); st.Events != 3 || st.Outbox["b"] != 2 {
		t.Errorf("stats: events %d, outbox %v; want 3 and b 2", st.Events, st.Outbox)
	}

	// A record that changes before b had its feed event at all: b gets v1, whole,
	// then v2.
	settle(t, s, "b", store.Outcome{Seq: got[0].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: at},
		store.Outcome{Seq: got[1].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: at})
	evs = firstSync(t, s, at, []string{"b"}, "HS3")
	v2 = map[string]any{"code": "HS3", "status": int64(9), "citizen": "Nguyễn Văn \"An\""}
	updated = event("src", "dossier", "HS3", 2, v2)
	commit(t, s, store.Batch{Source: "src", At: at,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: "HS3", Hash: "h2", Version: 2, Fields: v2}},
		Events:   []store.OutboxEvent{{Event: updated, Sinks: []string{"b"}}}})
	got = pending(t, s, "b", at)
	if !slices.Equal(keysOf(got), []string{"HS3@1"}) {
		t.Fatalf("pending for b = %v, want HS3@1 (HS3@2 waits behind it)", keysOf(got))
	}
	sameEvent(t, got[0].Event, wantWhole(evs["HS3"]))
	settle(t, s, "b", store.Outcome{Seq: got[0].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: at})
	if got = pending(t, s, "b", at); !slices.Equal(keysOf(got), []string{"HS3@2"}) {
		t.Fatalf("pending for b = %v, want HS3@2", keysOf(got))
	}
}

// testSnapshotFeedPurge: a first sync every sink has is purged with the events'
// retention; one a sink still waits for is kept.
func testSnapshotFeedPurge(t *testing.T, s store.Store) {
	firstSync(t, s, t0, []string{"a"}, "HS1")
	firstSync(t, s, t0, []string{"b"}, "HS2")
	p := pending(t, s, "a", t0)
	settle(t, s, "a", store.Outcome{Seq: p[0].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0})
	if _, err := s.Purge(t.Context(), store.Retention{Events: time.Hour}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Events != 1 || st.Deliveries != 0 || st.Outbox["b"] != 1 {
		t.Fatalf("after the purge: events %d, deliveries %d, outbox %v; want HS2 waiting for b", st.Events, st.Deliveries, st.Outbox)
	}
	if got := keysOf(pending(t, s, "b", t0)); !slices.Equal(got, []string{"HS2@1"}) {
		t.Fatalf("pending for b = %v", got)
	}
}

// testNewRecordsThenChange: a batch whose records the writer marks new (which
// PostgreSQL stores with COPY) is stored and fed like any first sync, and a
// later change of one of them finds it: the record's first event is kept whole
// and goes out before the change, which carries its prior version.
func testNewRecordsThenChange(t *testing.T, s store.Store) {
	evs := firstSyncNew(t, s, t0, []string{"a"}, true, "HS1", "HS2", "HS3")
	got, err := s.Snapshot(t.Context(), "src", "dossier", []string{"HS1", "HS2", "HS3"})
	if err != nil || len(got) != 3 || got["HS2"].Version != 1 || got["HS2"].Hash != "h-HS2" || got["HS2"].Fields["code"] != "HS2" {
		t.Fatalf("snapshot after the new records = %+v, %v", got, err)
	}
	p := pending(t, s, "a", t0)
	if !slices.Equal(keysOf(p), []string{"HS1@1", "HS2@1", "HS3@1"}) {
		t.Fatalf("pending = %v, want HS1, HS2, HS3 at version 1", keysOf(p))
	}

	v2 := map[string]any{"code": "HS2", "status": int64(9), "citizen": "Nguyễn Văn \"An\""}
	updated := event("src", "dossier", "HS2", 2, v2)
	updated.Before = evs["HS2"].After
	updated.Changed = []string{"status"}
	at := t0.Add(time.Second)
	commit(t, s, store.Batch{Source: "src", At: at,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: "HS2", Hash: "h2", Version: 2, Fields: v2}},
		Events:   []store.OutboxEvent{{Event: updated, Sinks: []string{"a"}}}})

	got, err = s.Snapshot(t.Context(), "src", "dossier", []string{"HS2"})
	if err != nil || got["HS2"].Version != 2 || got["HS2"].Hash != "h2" || fmt.Sprint(got["HS2"].Fields["status"]) != "9" {
		t.Fatalf("snapshot of HS2 after its change = %+v, %v", got["HS2"], err)
	}
	p = pending(t, s, "a", at)
	if !slices.Equal(keysOf(p), []string{"HS1@1", "HS2@1", "HS3@1"}) {
		t.Fatalf("pending after HS2 changed = %v, want the three created events (HS2@2 waits behind HS2@1)", keysOf(p))
	}
	for _, it := range p {
		sameEvent(t, it.Event, wantWhole(evs[it.Event.Key]))
	}
	settle(t, s, "a", store.Outcome{Seq: p[1].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: at})
	p = pending(t, s, "a", at)
	if !slices.Equal(keysOf(p), []string{"HS1@1", "HS3@1", "HS2@2"}) {
		t.Fatalf("pending after HS2@1's delivery = %v, want HS1@1, HS3@1, HS2@2", keysOf(p))
	}
	sameEvent(t, p[2].Event, updated)
	if st := stats(t, s); st.Events != 4 || st.Outbox["a"] != 3 {
		t.Errorf("stats: events %d, outbox %v; want 4 and a 3", st.Events, st.Outbox)
	}
}

// testSnapshotFeedAcrossBlocks: the blocks of consecutive first-sync commits are
// read as one range, yet each event keeps its own block's detection time, a
// block not yet due is left out, and what is in flight is skipped.
func testSnapshotFeedAcrossBlocks(t *testing.T, s store.Store) {
	evs := firstSync(t, s, t0, []string{"a"}, "HS1", "HS2")
	later := t0.Add(time.Second)
	maps.Copy(evs, firstSync(t, s, later, []string{"a"}, "HS3", "HS4"))

	p := pending(t, s, "a", later)
	if !slices.Equal(keysOf(p), []string{"HS1@1", "HS2@1", "HS3@1", "HS4@1"}) || !slices.IsSorted(seqs(p)) {
		t.Fatalf("pending = %v (seqs %v), want HS1 to HS4 in seq order", keysOf(p), seqs(p))
	}
	for _, it := range p {
		sameEvent(t, it.Event, wantWhole(evs[it.Event.Key]))
	}
	if got := keysOf(pending(t, s, "a", t0)); !slices.Equal(got, []string{"HS1@1", "HS2@1"}) {
		t.Errorf("pending before the second block is due = %v, want HS1, HS2", got)
	}
	got, err := s.Pending(t.Context(), "a", later, 2, p[0].Seq, p[1].Seq)
	if err != nil || !slices.Equal(keysOf(got), []string{"HS3@1", "HS4@1"}) {
		t.Fatalf("pending with the first block in flight, limit 2 = %v, %v; want HS3, HS4", keysOf(got), err)
	}
	settle(t, s, "a", store.Outcome{Seq: p[2].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: later})
	if got := keysOf(pending(t, s, "a", later)); !slices.Equal(got, []string{"HS1@1", "HS2@1", "HS4@1"}) {
		t.Errorf("pending after HS3's delivery = %v, want HS1, HS2, HS4", got)
	}
	settle(t, s, "a", store.Outcome{Seq: p[0].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: later},
		store.Outcome{Seq: p[1].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: later})
	if got := pending(t, s, "a", later); !slices.Equal(keysOf(got), []string{"HS4@1"}) {
		t.Errorf("pending after HS1 to HS3 = %v, want HS4", keysOf(got))
	}
}

// testSnapshotFeedBeyondOnePageOfBlocks: a sink with more unfinished blocks than
// Pending reads at once (64) is handed the events of the later blocks while it
// has room, whether the earlier ones are in flight or not: a Pending that
// returned fewer events than its limit while more were due told run --once's
// drain that nothing more was due, and it stopped with events undelivered.
func testSnapshotFeedBeyondOnePageOfBlocks(t *testing.T, s store.Store) {
	const blocks = 70
	for i := range blocks {
		firstSync(t, s, t0, []string{"a"}, fmt.Sprintf("B%02dK1", i), fmt.Sprintf("B%02dK2", i))
	}
	all := pending(t, s, "a", t0)
	if len(all) != 2*blocks || !slices.IsSorted(seqs(all)) {
		t.Fatalf("pending = %d events (sorted %v), want all %d of %d blocks in seq order", len(all), slices.IsSorted(seqs(all)), 2*blocks, blocks)
	}
	inFlight := seqs(all[:2*(blocks-3)])
	rest, err := s.Pending(t.Context(), "a", t0, 0, inFlight...)
	if err != nil || !slices.Equal(keysOf(rest), keysOf(all[2*(blocks-3):])) {
		t.Fatalf("pending with all but the last 3 blocks in flight = %v, %v; want the last 3 blocks' %v", keysOf(rest), err, keysOf(all[2*(blocks-3):]))
	}
	for _, limit := range []int{1, 2*blocks - 1, 2 * blocks} {
		got, err := s.PendingJSON(t.Context(), "a", t0, limit)
		if err != nil || len(got) != limit || got[0].Seq != all[0].Seq {
			t.Fatalf("pending with limit %d = %d events, %v; want the first %d", limit, len(got), err, limit)
		}
	}
}

// testSettleFeedHint: Pending marks the rows it read from a feed, and their
// outcomes carry the mark so that Settle looks for them there first; the mark
// only orders the look-ups. An outcome that says feed for an outbox row, or
// not for a feed event, is recorded all the same, and a second outcome of
// either is not found, whatever it says.
func testSettleFeedHint(t *testing.T, s store.Store) {
	firstSync(t, s, t0, []string{"a"}, "HS1", "HS2")
	commit(t, s, store.Batch{Source: "src", Position: []byte("p2"), At: t0,
		Events: []store.OutboxEvent{{Event: event("src", "dossier", "HS9", 2, map[string]any{"s": "2"}), Sinks: []string{"a"}}}})
	p := pending(t, s, "a", t0)
	if len(p) != 3 || !p[0].Feed || !p[1].Feed || p[2].Feed || p[2].Event.Key != "HS9" {
		t.Fatalf("pending = %v, feed marks %v %v %v; want HS1, HS2 from the feed, then HS9 from the outbox",
			keysOf(p), p[0].Feed, p[1].Feed, p[2].Feed)
	}
	outcomes := func(feed ...bool) []store.Outcome {
		os := make([]store.Outcome, len(p))
		for i, it := range p {
			os[i] = store.Outcome{Seq: it.Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0, Feed: feed[i]}
		}
		return os
	}
	settle(t, s, "a", outcomes(false, true, true)...)
	if got := pending(t, s, "a", t0); len(got) != 0 {
		t.Fatalf("everything is delivered; pending %v", keysOf(got))
	}
	for _, feed := range [][]bool{{true, true, false}, {false, false, true}} {
		res, err := s.Settle(t.Context(), "a", nil, outcomes(feed...))
		if err != nil {
			t.Fatal(err)
		}
		for i, err := range res.Errs {
			wantNotFound(t, fmt.Sprintf("settling %s again (feed %v)", p[i].Event.Key, feed[i]), err)
		}
	}
	if st := stats(t, s); st.Deliveries != 3 || st.Outbox["a"] != 0 {
		t.Errorf("deliveries %d, outbox %v; want 3 and none", st.Deliveries, st.Outbox)
	}
}
