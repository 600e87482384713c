package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// A first sync's created event that its record leaves behind (the record moves
// on while a sink still waits for the event) must come out once for that sink,
// whole, before the record's later events; and its seq must count as settled for
// the sink's feed, so that the block it is in completes: a block that never
// completes is never purged, and Pending reads a bounded number of a sink's open
// blocks, so enough of them would hide every later block from the sink.

// moveOn commits a change of the first-sync record k (created by addCreated) to
// version 2, routed to sinks, at at.
func moveOn(t *testing.T, s store.Store, at time.Time, k string, sinks []string) {
	t.Helper()
	v2 := map[string]any{"code": k, "status": int64(9), "citizen": "Nguyễn Văn \"An\""}
	updated := &pipeline.Event{
		ID: pipeline.EventID("src", "dossier", k, 2, pipeline.EventUpdated, "h2-"+k), Type: pipeline.EventUpdated,
		Source: "src", Entity: "dossier", Key: k, Agency: "UBND-CG", Version: 2, Epoch: s.Epoch(),
		After: v2, Changed: []string{"status"}, DetectedAt: at,
	}
	commit(t, s, store.Batch{Source: "src", At: at,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: k, Hash: "h2-" + k, Version: 2, Fields: v2}},
		Events:   []store.OutboxEvent{{Event: updated, Sinks: sinks}}})
}

// drainFeed settles every event pending for sink at at as delivered, until
// none is left, and returns the keys@versions in the order they were handed out.
func drainFeed(t *testing.T, s store.Store, sink string, at time.Time) []string {
	t.Helper()
	var got []string
	for range 100 {
		p := pending(t, s, sink, at)
		if len(p) == 0 {
			return got
		}
		os := make([]store.Outcome, len(p))
		for i, it := range p {
			os[i] = store.Outcome{Seq: it.Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: at, Feed: it.Feed}
		}
		settle(t, s, sink, os...)
		got = append(got, keysOf(p)...)
	}
	t.Fatalf("sink %s: still pending after 100 rounds; delivered %v", sink, got)
	return nil
}

// testSnapshotFeedMovedTailCompletes: the record of the last feed event a sink
// waits for in a block moves on; once the sink has it (from the outbox), the
// block is complete for the sink, and a purge past the retention removes it.
func testSnapshotFeedMovedTailCompletes(t *testing.T, s store.Store) {
	sinks := []string{"a"}
	firstSync(t, s, t0, sinks, "HS1", "HS2", "HS3")
	p := pending(t, s, "a", t0)
	settle(t, s, "a", store.Outcome{Seq: p[0].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0, Feed: true},
		store.Outcome{Seq: p[1].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0, Feed: true})
	at := t0.Add(time.Second)
	moveOn(t, s, at, "HS3", sinks)
	if got := drainFeed(t, s, "a", at); !slices.Equal(got, []string{"HS3@1", "HS3@2"}) {
		t.Fatalf("delivered %v after HS3 moved on, want HS3@1 then HS3@2", got)
	}
	if _, err := s.Purge(t.Context(), store.Retention{Events: time.Hour}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Events != 0 || st.Outbox["a"] != 0 {
		t.Errorf("after every event was delivered and purged: events %d, outbox %v; want none left "+
			"(the first sync's block never completed for the sink)", st.Events, st.Outbox)
	}
}

// testSnapshotFeedManyMovedTails: more first-sync blocks than Pending reads at
// once each end with a record that moved on while the sink waited for it; a
// later first sync's events still reach the sink.
func testSnapshotFeedManyMovedTails(t *testing.T, s store.Store) {
	sinks := []string{"a"}
	const blocks = 80 // more than the open blocks one Pending reads
	at := t0
	for i := range blocks {
		k := fmt.Sprintf("HS%03d", i)
		firstSync(t, s, at, sinks, k)
		moveOn(t, s, at, k, sinks)
	}
	if got := drainFeed(t, s, "a", at); len(got) != 2*blocks {
		t.Fatalf("delivered %d events, want %d", len(got), 2*blocks)
	}
	firstSync(t, s, at, sinks, "LAST")
	if got := drainFeed(t, s, "a", at); !slices.Equal(got, []string{"LAST@1"}) {
		t.Fatalf("after %d blocks whose last record moved on, a later first sync delivered %v; want LAST@1", blocks, got)
	}
}

// deleteAndCreate commits, in one batch, record k's deletion (version 2) and
// its creation again (version 3, a snapshot event stored without its fields),
// as a first sync's commit group does when it reads k deleted and then live.
func deleteAndCreate(t *testing.T, s store.Store, at time.Time, k string, sinks []string, before map[string]any) (*pipeline.Event, *pipeline.Event) {
	t.Helper()
	deleted := pipeline.Deletion("src", "dossier", k, "UBND-CG", pipeline.Prior{Hash: "h-" + k, Version: 1, Fields: before}, at)
	deleted.Snapshot, deleted.Epoch = true, s.Epoch()
	v3 := map[string]any{"code": k, "status": int64(5), "citizen": "Nguyễn Văn \"An\""}
	created := &pipeline.Event{
		ID: pipeline.EventID("src", "dossier", k, 3, pipeline.EventCreated, "h3-"+k), Type: pipeline.EventCreated,
		Source: "src", Entity: "dossier", Key: k, Agency: "UBND-CG", Version: 3, Epoch: s.Epoch(), Snapshot: true,
		After: v3, DetectedAt: at,
	}
	b := store.Batch{Source: "src", At: at,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: k, Hash: "h3-" + k, Version: 3, Fields: v3}},
		Events:   []store.OutboxEvent{{Event: deleted, Sinks: sinks}, {Event: created, Sinks: sinks}}}
	commit(t, s, b)
	commit(t, s, b) // replayed after a crash: nothing new
	return deleted, created
}

// testSnapshotFeedDeletedAndCreatedAgain: a record whose first-sync created
// event still waits for a sink (in its feed, retried, or dead-lettered) is
// deleted and created again in one commit. The sink gets the first created
// event whole, once, then the deletion, then the new creation.
func testSnapshotFeedDeletedAndCreatedAgain(t *testing.T, s store.Store) {
	for _, first := range []string{"waiting", "retried", "dead"} {
		t.Run(first, func(t *testing.T) {
			sinks := []string{"a", "b"}
			evs := firstSync(t, s, t0, sinks, "A"+first, "B"+first)
			k := "A" + first
			var dl []store.DeadLetter
			if first != "waiting" {
				p := pending(t, s, "a", t0)
				if p[0].Event.Key != k {
					t.Fatalf("pending for a = %v, want %s first", keysOf(p), k)
				}
				o := store.Outcome{Seq: p[0].Seq, Kind: store.OutcomeRetry, Attempts: 1, At: t0, NextAt: t0, Err: "503", Feed: true}
				if first == "dead" {
					o.Kind, o.OnDead = store.OutcomeDead, store.OnDeadHold
				}
				settle(t, s, "a", o)
			}
			at := t0.Add(time.Second)
			deleted, created := deleteAndCreate(t, s, at, k, sinks, evs[k].After)
			if first == "dead" {
				var err error
				if dl, err = s.DeadLetters(t.Context(), "a", 0); err != nil {
					t.Fatalf("dead letters of a: %v", err)
				}
				var ids []int64
				for _, d := range dl {
					if d.Event.Key == k {
						sameEvent(t, d.Event, wantWhole(evs[k]))
						ids = append(ids, d.ID)
					}
				}
				if len(ids) != 1 {
					t.Fatalf("dead letters of a = %+v, want %s's created event", dl, k)
				}
				if r, err := s.Replay(t.Context(), ids, at); err != nil || r.Replayed != 1 {
					t.Fatalf("replay = %+v, %v", r, err)
				}
			}
			for _, sink := range sinks {
				var got []pipeline.Event
				for range 10 {
					p, err := s.Pending(t.Context(), sink, at, 0)
					if err != nil {
						t.Fatalf("pending for %s: %v", sink, err)
					}
					if len(p) == 0 {
						break
					}
					for _, it := range p {
						if it.Event.Key == k {
							got = append(got, it.Event)
						}
						settle(t, s, sink, store.Outcome{Seq: it.Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: at, Feed: it.Feed})
					}
				}
				var vs []int64
				for _, ev := range got {
					vs = append(vs, ev.Version)
				}
				if !slices.Equal(vs, []int64{1, 2, 3}) {
					t.Fatalf("sink %s got %s at versions %v, want 1 (created), 2 (deleted), 3 (created again)", sink, k, vs)
				}
				sameEvent(t, got[0], wantWhole(evs[k]))
				if got[1].ID != deleted.ID || got[2].ID != created.ID {
					t.Errorf("sink %s got ids %s %s, want the deletion's %s and the new creation's %s", sink, got[1].ID, got[2].ID, deleted.ID, created.ID)
				}
			}
		})
	}
}

// testNewBrokenInMixedBatch: a writer that marks New (SnapshotEntry.New) a
// record the store holds, in a batch that also changes a known record, has its
// commit refused, as an all-new batch is: stored over, the record's created
// event would be fed again under a new seq, and a sink that had it would get it
// twice.
func testNewBrokenInMixedBatch(t *testing.T, s store.Store) {
	sinks := []string{"a"}
	firstSync(t, s, t0, sinks, "HS1", "HS2")
	if got := drainFeed(t, s, "a", t0); !slices.Equal(got, []string{"HS1@1", "HS2@1"}) {
		t.Fatalf("delivered %v, want HS1@1 HS2@1", got)
	}
	before := stats(t, s)
	var b store.Batch
	b.Source, b.At = "src", t0
	addCreated(&b, s, t0, sinks, "HS1", map[string]any{"code": "HS1", "status": int64(2), "citizen": "Nguyễn Văn \"An\""}, true)
	v2 := map[string]any{"code": "HS2", "status": int64(9)}
	b.Snapshot = append(b.Snapshot, store.SnapshotEntry{Entity: "dossier", Key: "HS2", Hash: "h2-HS2", Version: 2, Fields: v2})
	b.Events = append(b.Events, store.OutboxEvent{Event: &pipeline.Event{
		ID: pipeline.EventID("src", "dossier", "HS2", 2, pipeline.EventUpdated, "h2-HS2"), Type: pipeline.EventUpdated,
		Source: "src", Entity: "dossier", Key: "HS2", Version: 2, After: v2, DetectedAt: t0}, Sinks: sinks})
	if err := s.Commit(t.Context(), b); err == nil {
		t.Error("a batch marking New a stored record was committed; want it refused")
	}
	if got := drainFeed(t, s, "a", t0); len(got) != 0 {
		t.Errorf("after the refused commit the sink got %v; want nothing (HS1@1 again would be a duplicate)", got)
	}
	if after := stats(t, s); after.Events != before.Events {
		t.Errorf("events %d after the refused commit, %d before", after.Events, before.Events)
	}
}

// testSnapshotFeedMovedInFlight: the record of the last feed event of a block
// moves on while the event is in flight to the sink. The delivery, reported as
// a feed outcome, settles the event's outbox row; the sink is not handed it
// again, gets the change next, and the block completes.
func testSnapshotFeedMovedInFlight(t *testing.T, s store.Store) {
	sinks := []string{"a"}
	firstSync(t, s, t0, sinks, "HS1", "HS2")
	p := pending(t, s, "a", t0)
	settle(t, s, "a", store.Outcome{Seq: p[0].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0, Feed: true})
	at := t0.Add(time.Second)
	moveOn(t, s, at, "HS2", sinks) // HS2@1 is in flight
	got, err := s.Pending(t.Context(), "a", at, 0, p[1].Seq)
	if err != nil || len(got) != 0 {
		t.Fatalf("pending with HS2@1 in flight = %v, %v; want nothing (HS2@2 waits behind it)", keysOf(got), err)
	}
	settle(t, s, "a", store.Outcome{Seq: p[1].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: at, Feed: true})
	if got := drainFeed(t, s, "a", at); !slices.Equal(got, []string{"HS2@2"}) {
		t.Fatalf("after HS2@1's delivery the sink got %v, want HS2@2 only", got)
	}
	if _, err := s.Purge(t.Context(), store.Retention{Events: time.Hour}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Events != 0 || st.Deliveries != 0 {
		t.Errorf("after every event was delivered and purged: events %d, deliveries %d; want none left", st.Events, st.Deliveries)
	}
}
