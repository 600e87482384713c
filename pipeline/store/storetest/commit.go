package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// observed is everything a failed commit could have touched.
type observed struct {
	Cursor     store.CursorState
	Snapshot   map[string]store.SnapshotEntry
	Pending    []store.Pending
	Quarantine []store.QuarantineEntry
	Stats      store.Stats
}

func observe(t *testing.T, s store.Store) observed {
	t.Helper()
	ctx := t.Context()
	snap, err := s.Snapshot(ctx, "src", "dossier", []string{"HS1", "HS2", "HS3"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.Quarantined(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return observed{
		Cursor:     cursor(t, s, "src"),
		Snapshot:   snap,
		Pending:    pending(t, s, "a", t0.Add(time.Hour)),
		Quarantine: q,
		Stats:      stats(t, s),
	}
}

// seedForAtomicity commits one batch so that a failed commit has state to disturb.
func seedForAtomicity(t *testing.T, s store.Store) {
	commit(t, s, store.Batch{
		Source: "src", Position: []byte("p1"), At: t0,
		Snapshot:   []store.SnapshotEntry{{Entity: "dossier", Key: "HS1", Hash: "h1", Version: 1, Fields: map[string]any{"s": "1"}}},
		Events:     []store.OutboxEvent{{Event: event("src", "dossier", "HS1", 1, map[string]any{"s": "1"}), Sinks: []string{"a"}}},
		Quarantine: []store.QuarantineEntry{{Entity: "dossier", RowKey: "BAD", Reason: "r", Raw: map[string]string{"k": "v"}}},
	})
}

// failingBatch touches every table; its last event carries extra in After.
func failingBatch(extra any) store.Batch {
	return store.Batch{
		Source: "src", Position: []byte("p2"), InitialDone: true, At: t0.Add(time.Minute),
		Snapshot: []store.SnapshotEntry{
			{Entity: "dossier", Key: "HS1", Hash: "h2", Version: 2, Fields: map[string]any{"s": "2"}},
			{Entity: "dossier", Key: "HS2", Hash: "h1", Version: 1, Fields: map[string]any{"s": "1"}},
		},
		Events: []store.OutboxEvent{
			{Event: event("src", "dossier", "HS1", 2, map[string]any{"s": "2"}), Sinks: []string{"a"}},
			{Event: event("src", "dossier", "HS2", 1, map[string]any{"s": "1"}), Sinks: []string{"a"}},
			{Event: event("src", "dossier", "HS3", 1, map[string]any{"s": extra}), Sinks: []string{"a"}},
		},
		Quarantine: []store.QuarantineEntry{
			{Entity: "dossier", RowKey: "BAD", Reason: "r", Raw: map[string]string{"k": "v2"}},
			{Entity: "dossier", RowKey: "BAD2", Reason: "r", Raw: map[string]string{"k": "v"}},
		},
	}
}

func testCommitAtomicPayload(t *testing.T, s store.Store) {
	seedForAtomicity(t, s)
	before := observe(t, s)
	// NaN has no JSON form: the event cannot be stored, after the snapshot rows were.
	if err := s.Commit(t.Context(), failingBatch(math.NaN())); err == nil {
		t.Fatal("Commit of an event that cannot be stored succeeded")
	}
	if after := observe(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("failed commit changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
}

// cancelOnMarshal cancels the commit's context while the batch's events are being
// encoded, that is after the transaction has begun and written snapshot rows.
type cancelOnMarshal struct{ cancel context.CancelFunc }

func (c cancelOnMarshal) MarshalJSON() ([]byte, error) {
	c.cancel()
	return []byte(`"x"`), nil
}

func testCommitAtomicCancel(t *testing.T, s store.Store) {
	seedForAtomicity(t, s)
	before := observe(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := s.Commit(ctx, failingBatch(cancelOnMarshal{cancel})); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit whose context was cancelled part-way: got error %v, want context.Canceled", err)
	}
	if after := observe(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("cancelled commit changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
}

func testCommitCancelledBefore(t *testing.T, s store.Store) {
	seedForAtomicity(t, s)
	before := observe(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Commit(ctx, failingBatch("fine")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context: got error %v, want context.Canceled", err)
	}
	if after := observe(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("cancelled commit changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
}

// After a crash the last batch is read and committed again; it must not queue its
// events a second time, whether or not they were delivered in between.
func testCommitReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	batch := store.Batch{
		Source: "src", Position: []byte("p1"), At: t0,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: "HS1", Hash: "h1", Version: 1}},
		Events: []store.OutboxEvent{
			{Event: event("src", "dossier", "HS1", 1, nil), Sinks: []string{"a", "b"}},
			{Event: event("src", "dossier", "HS2", 1, nil), Sinks: []string{"a"}},
		},
	}
	commit(t, s, batch)
	commit(t, s, batch)
	if st := stats(t, s); st.Events != 2 || st.Outbox["a"] != 2 || st.Outbox["b"] != 1 {
		t.Fatalf("after replay: events %d outbox %v; want 2 events, a:2 b:1", st.Events, st.Outbox)
	}
	for _, p := range pending(t, s, "a", t0) {
		if err := s.Delivered(ctx, "a", p.Seq, 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, s, batch)
	if p := pending(t, s, "a", t0.Add(time.Hour)); len(p) != 0 {
		t.Errorf("replay after delivery queued again: %v", seqs(p))
	}
	if st := stats(t, s); st.Events != 2 || st.Deliveries != 2 || st.Outbox["b"] != 1 {
		t.Errorf("after replay: events %d deliveries %d outbox %v", st.Events, st.Deliveries, st.Outbox)
	}
	// Within one batch, an id listed twice is one event for the union of sinks.
	ev := event("src", "dossier", "HS9", 1, nil)
	commit(t, s, store.Batch{Source: "src", At: t0, Events: []store.OutboxEvent{
		{Event: ev, Sinks: []string{"c"}}, {Event: ev, Sinks: []string{"c", "d"}},
	}})
	if c, d := pending(t, s, "c", t0), pending(t, s, "d", t0); len(c) != 1 || len(d) != 1 || c[0].Seq != d[0].Seq {
		t.Errorf("duplicate id in a batch: c %v d %v, want one row each for one event", seqs(c), seqs(d))
	}
}

// testSnapshotEventsKeepTheirFields: a first sync's created events are stored
// without their fields (the snapshot row holds them); they still come out whole,
// and keep their own fields after the record changes.
func testSnapshotEventsKeepTheirFields(t *testing.T, s store.Store) {
	v1 := map[string]any{"code": "HS1", "status": int64(2), "citizen": "Lê Thị \"Hoa\"\n", "due": t0}
	created := event("src", "dossier", "HS1", 1, v1)
	created.Snapshot = true
	commit(t, s, store.Batch{Source: "src", At: t0,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: "HS1", Hash: "h1", Version: 1, Fields: v1}},
		Events:   []store.OutboxEvent{{Event: created, Sinks: []string{"a", "b"}}}})
	want := *created
	want.After = map[string]any{"code": "HS1", "status": 2, "citizen": "Lê Thị \"Hoa\"\n", "due": t0.Format(time.RFC3339Nano)}
	p := pending(t, s, "a", t0)
	if len(p) != 1 {
		t.Fatalf("pending = %d rows", len(p))
	}
	sameEvent(t, p[0].Event, &want)

	// Sink a delivers; the record changes before sink b has it.
	if err := s.Delivered(t.Context(), "a", p[0].Seq, 1, t0); err != nil {
		t.Fatal(err)
	}
	v2 := map[string]any{"code": "HS1", "status": int64(9), "citizen": "Lê Thị \"Hoa\"\n", "due": t0}
	updated := event("src", "dossier", "HS1", 2, v2)
	updated.Before = v1
	commit(t, s, store.Batch{Source: "src", At: t0,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: "HS1", Hash: "h2", Version: 2, Fields: v2}},
		Events:   []store.OutboxEvent{{Event: updated, Sinks: []string{"b"}}}})
	p = pending(t, s, "b", t0)
	if len(p) != 1 || p[0].Event.Version != 1 {
		t.Fatalf("pending for b = %+v; want version 1 first", p)
	}
	sameEvent(t, p[0].Event, &want)
	// Dead-lettered, it keeps its fields too.
	if err := s.Dead(t.Context(), "b", p[0].Seq, 1, "refused", t0, store.OnDeadHold); err != nil {
		t.Fatal(err)
	}
	dl, err := s.DeadLetters(t.Context(), "b", 0)
	if err != nil || len(dl) != 1 {
		t.Fatalf("dead letters = %v, %v", dl, err)
	}
	sameEvent(t, dl[0].Event, &want)
}

// A commit of more events than one statement takes (several full-size chunks and
// a partial one) inserts each and queues each for its sink: the seqs that insert
// returns are all read.
func testCommitManyEvents(t *testing.T, s store.Store) {
	const n = 2500
	events := make([]store.OutboxEvent, n)
	for i := range events {
		events[i] = routed(ev(fmt.Sprintf("HS%05d", i), 1), "a")
	}
	queue(t, s, t0, events...)
	if got := stats(t, s).Outbox["a"]; got != n {
		t.Fatalf("outbox of sink a holds %d rows, want %d", got, n)
	}
	// Committed again, none is new.
	queue(t, s, t0, events...)
	if got := stats(t, s).Outbox["a"]; got != n {
		t.Fatalf("after replaying the commit the outbox holds %d rows, want %d", got, n)
	}
}
