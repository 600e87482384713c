package storetest

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Several sources commit while one dispatcher per sink drains the outbox, as the
// daemon runs. Every event must reach every sink exactly once, in seq order.
func testConcurrent(t *testing.T, s store.Store) {
	const (
		sources  = 4
		batches  = 20
		perBatch = 5
	)
	sinks := []string{"a", "b", "c"}
	ctx := t.Context()
	far := t0.Add(24 * time.Hour)

	writersDone := make(chan struct{})
	var writers sync.WaitGroup
	errs := make(chan error, sources+len(sinks)+1)
	for w := range sources {
		writers.Add(1)
		go func() {
			defer writers.Done()
			src := fmt.Sprintf("src%d", w)
			for b := range batches {
				batch := store.Batch{Source: src, Position: []byte(fmt.Sprint(b)), At: t0}
				for i := range perBatch {
					key := fmt.Sprintf("K%d", i)
					version := int64(b + 1)
					batch.Snapshot = append(batch.Snapshot, store.SnapshotEntry{Entity: "d", Key: key, Hash: fmt.Sprint(version), Version: version})
					batch.Events = append(batch.Events, routed(event(src, "d", key, version, nil), sinks...))
				}
				if err := s.Commit(ctx, batch); err != nil {
					errs <- err
					return
				}
				// Readers of the snapshot run alongside, as change detection does.
				if _, err := s.Snapshot(ctx, src, "d", []string{"K0", "K1"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() { writers.Wait(); close(writersDone) }()

	delivered := make([]map[string]int, len(sinks))
	var dispatchers sync.WaitGroup
	for i, sink := range sinks {
		delivered[i] = map[string]int{}
		dispatchers.Add(1)
		go func() {
			defer dispatchers.Done()
			last := map[string]int64{} // per record: delivery order is kept per record
			for {
				// Read "done" before Pending: if every writer had finished before
				// the query began, an empty answer means the outbox is drained.
				var done bool
				select {
				case <-writersDone:
					done = true
				default:
				}
				ps, err := s.Pending(ctx, sink, far, 7)
				if err != nil {
					errs <- err
					return
				}
				if len(ps) == 0 {
					if done {
						return
					}
					runtime.Gosched()
					continue
				}
				for _, p := range ps {
					rec := store.RecordID(p.Event.Source, p.Event.Entity, p.Event.Key)
					if p.Seq <= last[rec] {
						errs <- fmt.Errorf("sink %s, record %s: seq %d after %d", sink, rec, p.Seq, last[rec])
						return
					}
					last[rec] = p.Seq
					if err := s.Delivered(ctx, sink, p.Seq, 1, t0); err != nil {
						errs <- err
						return
					}
					delivered[i][p.Event.ID]++
				}
			}
		}()
	}
	writers.Wait()
	dispatchers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	total := sources * batches * perBatch
	for i, sink := range sinks {
		if len(delivered[i]) != total {
			t.Errorf("sink %s got %d distinct events, want %d", sink, len(delivered[i]), total)
		}
		for id, n := range delivered[i] {
			if n != 1 {
				t.Errorf("sink %s got event %s %d times", sink, id, n)
			}
		}
	}
	st := stats(t, s)
	if st.Events != int64(total) || st.Deliveries != int64(total*len(sinks)) {
		t.Errorf("Stats events %d deliveries %d, want %d and %d", st.Events, st.Deliveries, total, total*len(sinks))
	}
	checkCounts(t, "Outbox", st.Outbox, map[string]int{})
	for w := range sources {
		src := fmt.Sprintf("src%d", w)
		if c := cursor(t, s, src); string(c.Position) != fmt.Sprint(batches-1) {
			t.Errorf("cursor of %s = %q, want %q", src, c.Position, fmt.Sprint(batches-1))
		}
		snap, err := s.Snapshot(ctx, src, "d", []string{"K0", "K4"})
		if err != nil {
			t.Fatal(err)
		}
		if snap["K0"].Version != batches || snap["K4"].Version != batches {
			t.Errorf("snapshot of %s = %+v, want version %d", src, snap, batches)
		}
	}
}
