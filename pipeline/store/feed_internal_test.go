package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// A process that starts with a first sync waiting in the store (its shapes not
// cached yet) hands it out to several sinks at once: reading a shape while the
// feed's rows are open must not wait for a connection the other sinks hold. The
// reader pool is cut to one connection, so a read that needs a second one waits
// until the deadline.
func TestFeedsOfAFreshProcessReadConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	st, err := Open(ctx, Config{Driver: "sqlite", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	sinks := []string{"a", "b", "c", "d"}
	b := Batch{Source: "src", At: at}
	for _, k := range []string{"HS1", "HS2", "HS3"} {
		fields := map[string]any{"code": k, "status": int64(2)}
		ev := &pipeline.Event{ID: pipeline.EventID("src", "d", k, 1, pipeline.EventCreated, "h"+k), Type: pipeline.EventCreated,
			Source: "src", Entity: "d", Key: k, Version: 1, Snapshot: true, After: fields, DetectedAt: at}
		b.Snapshot = append(b.Snapshot, SnapshotEntry{Entity: "d", Key: k, Hash: "h" + k, Version: 1, Fields: fields})
		b.Events = append(b.Events, OutboxEvent{Event: ev, Sinks: sinks})
	}
	if err := st.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	st.Close()

	for round := range 5 {
		st, err := Open(ctx, Config{Driver: "sqlite", Path: path})
		if err != nil {
			t.Fatal(err)
		}
		st.(*sqlStore).rdb.SetMaxOpenConns(1)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, len(sinks))
		got := make([]int, len(sinks))
		for i, sink := range sinks {
			wg.Go(func() {
				<-start
				p, err := st.Pending(wctx, sink, at, 10)
				errs[i], got[i] = err, len(p)
			})
		}
		close(start)
		wg.Wait()
		cancel()
		st.Close()
		for i := range sinks {
			if errs[i] != nil || got[i] != 3 {
				t.Fatalf("round %d, sink %s: %d events, %v; want 3", round, sinks[i], got[i], errs[i])
			}
		}
	}
}

// A Settle that commits while Pending reads a feed, closing the gap before seqs
// settled out of order, must not make Pending hand those seqs out again: they
// left snapshot_feed_done as the progress moved past them.
func TestPendingFeedDoesNotResendWhatASettleBetweenItsReadsRecorded(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	b := Batch{Source: "src", At: at}
	for _, k := range []string{"HS1", "HS2", "HS3", "HS4", "HS5", "HS6"} {
		fields := map[string]any{"code": k}
		ev := &pipeline.Event{ID: pipeline.EventID("src", "d", k, 1, pipeline.EventCreated, "h"+k), Type: pipeline.EventCreated,
			Source: "src", Entity: "d", Key: k, Version: 1, Snapshot: true, After: fields, DetectedAt: at}
		b.Snapshot = append(b.Snapshot, SnapshotEntry{Entity: "d", Key: k, Hash: "h" + k, Version: 1, Fields: fields})
		b.Events = append(b.Events, OutboxEvent{Event: ev, Sinks: []string{"a"}})
	}
	if err := st.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	all, err := st.Pending(ctx, "a", at, 10)
	if err != nil || len(all) != 6 {
		t.Fatalf("pending: %d, %v; want the 6 feed events", len(all), err)
	}
	delivered := func(items ...Pending) {
		t.Helper()
		var os []Outcome
		for _, it := range items {
			os = append(os, Outcome{Seq: it.Seq, Kind: OutcomeDelivered, Attempts: 1, At: at})
		}
		if _, err := st.Settle(ctx, "a", nil, os); err != nil {
			t.Fatal(err)
		}
	}
	delivered(all[1], all[2]) // out of order: HS1 is still in flight
	betweenFeedReads = func() {
		betweenFeedReads = nil
		delivered(all[0]) // HS1's outcome commits while the poll reads
	}
	defer func() { betweenFeedReads = nil }()
	got, err := st.Pending(ctx, "a", at, 10, all[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range got {
		keys = append(keys, p.Event.Key)
	}
	if want := []string{"HS4", "HS5", "HS6"}; !slices.Equal(keys, want) {
		t.Fatalf("pending after a settle between the reads: %v, want %v", keys, want)
	}
}

// Stores written by earlier versions hold unfinished blocks in which no event
// waits any more: the last event a sink waited for moved on to the outbox
// without the progress moving past it (it is in snapshot_feed_done), or left the
// feed unsettled (a record deleted and created again in one commit). A purge
// finishes them, then removes them with the events' retention; a block whose
// event still waits is kept, and still fed.
func TestPurgeFinishesBlocksLeftWithNothingWaiting(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			// A second handle, as a process started on the old store: the first
			// one's feed cache does not see what the SQL below changes.
			var s, fresh *sqlStore
			if backend == "sqlite" {
				path := filepath.Join(t.TempDir(), "state.db")
				s, fresh = openSQLiteAt(t, path), openSQLiteAt(t, path)
			} else {
				dsn := pgSchema(t)
				s, fresh = openPGAt(t, dsn), openPGAt(t, dsn)
			}
			ctx := t.Context()
			at := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
			seq := map[string]int64{}
			for _, keys := range [][]string{{"HS1", "HS2", "HS3"}, {"HS4"}, {"HS5"}} {
				b := Batch{Source: "src", At: at}
				for _, k := range keys {
					fields := map[string]any{"code": k}
					b.Snapshot = append(b.Snapshot, SnapshotEntry{Entity: "d", Key: k, Hash: "h" + k, Version: 1, Fields: fields})
					b.Events = append(b.Events, OutboxEvent{Sinks: []string{"a"}, Event: &pipeline.Event{
						ID: pipeline.EventID("src", "d", k, 1, pipeline.EventCreated, "h"+k), Type: pipeline.EventCreated,
						Source: "src", Entity: "d", Key: k, Version: 1, Snapshot: true, After: fields, DetectedAt: at}})
				}
				if err := s.Commit(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			p, err := s.Pending(ctx, "a", at, 0)
			if err != nil || len(p) != 5 {
				t.Fatalf("pending = %d, %v", len(p), err)
			}
			for _, it := range p {
				seq[it.Event.Key] = it.Seq
			}
			res, err := s.Settle(ctx, "a", nil, []Outcome{{Seq: seq["HS1"], Kind: OutcomeDelivered, Attempts: 1, At: at, Feed: true},
				{Seq: seq["HS2"], Kind: OutcomeDelivered, Attempts: 1, At: at, Feed: true}})
			if err != nil || res.Errs[0] != nil || res.Errs[1] != nil {
				t.Fatalf("settle = %+v, %v", res, err)
			}
			// What the earlier versions left: HS3 moved on to the outbox (its
			// delivery from there settles nothing of the feed), HS4 left the feed
			// unsettled.
			for _, q := range []string{
				`UPDATE snapshot SET lazy_seq = NULL WHERE key IN ('HS3', 'HS4')`,
				fmt.Sprintf(`INSERT INTO snapshot_feed_done (sink, seq) VALUES ('a', %d)`, seq["HS3"]),
			} {
				if _, err := s.db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			open := func() int {
				var n int
				if err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM snapshot_feeds WHERE done < hi`); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := open(); n != 3 {
				t.Fatalf("%d open blocks before the purge, want 3", n)
			}
			s = fresh
			if p, err := s.Pending(ctx, "a", at, 0); err != nil || len(p) != 1 || p[0].Event.Key != "HS5" {
				t.Fatalf("pending before the purge = %v, %v; want HS5", p, err)
			}
			if _, err := s.Purge(ctx, Retention{Events: time.Hour}, at.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if n := open(); n != 1 {
				t.Errorf("%d open blocks after the purge, want 1 (HS5's)", n)
			}
			var blocks, done int
			if err := s.db.GetContext(ctx, &blocks, `SELECT COUNT(*) FROM snapshot_events`); err != nil {
				t.Fatal(err)
			}
			if err := s.db.GetContext(ctx, &done, `SELECT COUNT(*) FROM snapshot_feed_done`); err != nil {
				t.Fatal(err)
			}
			if blocks != 1 || done != 0 {
				t.Errorf("after the purge: %d blocks, %d seqs settled out of order; want HS5's block only, none", blocks, done)
			}
			if p, err := s.Pending(ctx, "a", at, 0); err != nil || len(p) != 1 || p[0].Event.Key != "HS5" {
				t.Errorf("pending after the purge = %v, %v; want HS5", p, err)
			}
		})
	}
}
