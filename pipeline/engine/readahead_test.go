package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// hookSource lets a test act before each ReadBatch of a memSource: hook gets the
// read's number (from 1) and its context, and may fail the read.
type hookSource struct {
	*memSource
	reads  atomic.Int32
	active atomic.Int32
	hook   func(ctx context.Context, n int) error
}

func (s *hookSource) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	s.active.Add(1)
	defer s.active.Add(-1)
	n := int(s.reads.Add(1))
	if s.hook != nil {
		if err := s.hook(ctx, n); err != nil {
			return nil, false, err
		}
	}
	return s.memSource.ReadBatch(ctx, pos, out)
}

// gateStore runs before ahead of each Commit that carries events.
type gateStore struct {
	store.Store
	commits atomic.Int32
	before  func(n int) error
}

func (s *gateStore) Commit(ctx context.Context, b store.Batch) error {
	if len(b.Events) > 0 {
		if err := s.before(int(s.commits.Add(1))); err != nil {
			return err
		}
	}
	return s.Store.Commit(ctx, b)
}

// readAheadRecords are read two per batch: in three batches, the last one short.
const readAheadRecords = 5

// readAheadFixture is a source of readAheadRecords records, synced once, then
// all changed: the second run reads them in three batches, each committed on its
// own.
func readAheadFixture(t *testing.T) (*jobFixture, *hookSource) {
	t.Helper()
	f := newJobFixture(t, 2)
	for i := range readAheadRecords {
		f.src.put(fmt.Sprintf("K%d", i), pipeline.Row{"status": "2"})
	}
	f.run(t)
	for i := range readAheadRecords {
		f.src.put(fmt.Sprintf("K%d", i), pipeline.Row{"status": "3"})
	}
	src := &hookSource{memSource: f.src}
	f.job.Source = src
	return f, src
}

// The source's next batch is read while the engine commits the one before it.
func TestRunReadsTheNextBatchWhileItCommits(t *testing.T) {
	f, src := readAheadFixture(t)
	secondRead := make(chan struct{})
	src.hook = func(_ context.Context, n int) error {
		if n == 2 {
			close(secondRead)
		}
		return nil
	}
	f.job.Store = &gateStore{Store: f.store, before: func(n int) error {
		if n != 1 {
			return nil
		}
		select {
		case <-secondRead:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("the first batch's commit waited 10 s: the next batch was not read meanwhile")
		}
	}}
	st := f.run(t)
	if st.Batches != 3 || st.Events != readAheadRecords {
		t.Fatalf("run %+v: want 3 batches and %d events", st, readAheadRecords)
	}
	if n := src.reads.Load(); n != 3 {
		t.Fatalf("%d reads of the source, want 3 (the last batch is short: nothing is read after it)", n)
	}
	checkVersions(t, f.store, readAheadRecords, 2)
}

// A run that fails does not return while its read ahead is still reading: the
// source may be closed once the run is over.
func TestFailedRunEndsItsReadAhead(t *testing.T) {
	f, src := readAheadFixture(t)
	blocked := make(chan struct{})
	src.hook = func(ctx context.Context, n int) error {
		if n != 2 {
			return nil
		}
		close(blocked)
		<-ctx.Done() // an agency that does not answer: only the run's end stops it
		return ctx.Err()
	}
	refused := errors.New("disk full")
	f.job.Store = &gateStore{Store: f.store, before: func(int) error {
		select {
		case <-blocked:
			return refused
		case <-time.After(10 * time.Second):
			return errors.New("the next batch was not read while the first one committed")
		}
	}}
	_, err := f.job.Run(context.Background())
	if !errors.Is(err, refused) {
		t.Fatalf("run error = %v, want the commit's", err)
	}
	if n := src.active.Load(); n != 0 {
		t.Fatalf("%d reads still running after the run returned", n)
	}
	checkVersions(t, f.store, readAheadRecords, 1)
}

// A read ahead that fails fails the run after the batches before it are
// committed, and the next run goes on from there, reading nothing twice.
func TestReadAheadErrorStopsTheRunAfterTheBatchesBefore(t *testing.T) {
	f, src := readAheadFixture(t)
	outage := errors.New("connection reset by peer")
	src.hook = func(_ context.Context, n int) error {
		if n == 3 {
			return outage
		}
		return nil
	}
	st, err := f.job.Run(context.Background())
	if !errors.Is(err, outage) {
		t.Fatalf("run error = %v, want the read's", err)
	}
	if st.Batches != 2 || st.Events != 4 {
		t.Fatalf("failed run %+v: want the 2 batches before the outage committed", st)
	}
	src.hook = nil
	st = f.run(t)
	if st.Rows != 1 || st.Events != 1 {
		t.Fatalf("next run %+v: want the last row only", st)
	}
	checkVersions(t, f.store, readAheadRecords, 2)
}

// checkVersions asserts records K0…K(n-1) are all at version v.
func checkVersions(t *testing.T, st store.Store, n int, v int64) {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("K%d", i)
	}
	snap, err := st.Snapshot(context.Background(), "motcua", "dossier", keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if snap[k].Version != v {
			t.Errorf("%s is at version %d, want %d", k, snap[k].Version, v)
		}
	}
}
