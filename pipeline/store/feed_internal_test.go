package store

import (
	"context"
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
