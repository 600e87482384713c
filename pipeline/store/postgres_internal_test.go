package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// openPGStore opens a store in a fresh schema of the test server, closed when the
// test ends.
func openPGStore(t *testing.T) *sqlStore {
	t.Helper()
	return openPGAt(t, pgSchema(t))
}

// On PostgreSQL a seq is handed out at insert, not at commit. Commits that insert
// events must therefore hold a lock from the insert to the commit, or a reader could
// see seq 10 before seq 9 commits and never look back. This checks the lock is held
// exactly that long.
func TestPostgresEventInsertHoldsLockUntilCommit(t *testing.T) {
	s := openPGStore(t)
	ctx := t.Context()

	tryLock := func() bool {
		t.Helper()
		var ok bool
		err := s.db.GetContext(ctx, &ok,
			`SELECT pg_try_advisory_xact_lock(hashtext('egov-bridge/events/' || coalesce(current_schema(), '')))`)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ev := &pipeline.Event{ID: "e1", Type: pipeline.EventCreated, Entity: "d", Key: "1"}
	b := Batch{Source: "src", At: time.Now(), Events: []OutboxEvent{{Event: ev, Sinks: []string{"a"}}}}
	snap, err := s.snapshotRows(b)
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := s.eventRows(b, snap)
	if err != nil {
		t.Fatal(err)
	}
	if !tryLock() {
		t.Fatal("events lock is held before any events were inserted")
	}
	if _, err := s.insertEvents(ctx, tx, b, rows); err != nil {
		t.Fatal(err)
	}
	if tryLock() {
		t.Fatal("another transaction could insert events while this one, holding a seq, is open")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !tryLock() {
		t.Fatal("events lock still held after commit")
	}
}

// A first sync's batches of new records are not analyzed one by one: the
// snapshot is analyzed, once it has grown, before a look-up (Snapshot) or the
// commit that ends the first sync, so that look-ups use its key index. The
// store's connections do not JIT compile.
func TestPostgresAnalyzesTheSnapshotBeforeLookUps(t *testing.T) {
	s := openPGStore(t)
	s.stats.floor = 10
	ctx := t.Context()
	tuples := func() float64 {
		t.Helper()
		var n float64
		if err := s.db.GetContext(ctx, &n, `SELECT reltuples FROM pg_class WHERE oid = to_regclass('snapshot')`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	at := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	batch := 0
	newRecords := func(batches int) {
		t.Helper()
		for range batches {
			b := Batch{Source: "src", At: at, Position: pipeline.Position(fmt.Sprint(batch))}
			for i := range 10 {
				b.Snapshot = append(b.Snapshot, SnapshotEntry{Entity: "d", Key: fmt.Sprintf("K%d-%d", batch, i), Hash: "h", Version: 1,
					Fields: map[string]any{"n": int64(i)}, New: true})
			}
			if err := s.Commit(ctx, b); err != nil {
				t.Fatal(err)
			}
			batch++
		}
	}
	newRecords(3)
	if n := tuples(); n >= 0 {
		t.Fatalf("snapshot analyzed by commits of new records (reltuples %v)", n)
	}
	if _, err := s.Snapshot(ctx, "src", "d", []string{"K0-0"}); err != nil {
		t.Fatal(err)
	}
	if n := tuples(); n != 30 {
		t.Fatalf("after a look-up the planner counts %v snapshot rows, want 30", n)
	}
	newRecords(4)
	if n := tuples(); n != 30 {
		t.Fatalf("snapshot analyzed by commits of new records (reltuples %v, want 30 still)", n)
	}
	if err := s.Commit(ctx, Batch{Source: "src", At: at, InitialDone: true}); err != nil {
		t.Fatal(err)
	}
	if n := tuples(); n != 70 {
		t.Fatalf("after the first sync the planner counts %v snapshot rows, want 70", n)
	}
	var jit string
	if err := s.db.GetContext(ctx, &jit, `SHOW jit`); err != nil || jit != "off" {
		t.Fatalf("jit = %q, %v; want off", jit, err)
	}
}

// A batch whose writer marks a stored key new fails (COPY meets the primary key)
// and leaves the stored row as it was.
func TestPostgresNewEntryOfAStoredKeyFails(t *testing.T) {
	st := openPGStore(t)
	ctx := t.Context()
	at := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	entry := SnapshotEntry{Entity: "d", Key: "K1", Hash: "h1", Version: 1, Fields: map[string]any{"n": int64(1)}, New: true}
	if err := st.Commit(ctx, Batch{Source: "src", At: at, Snapshot: []SnapshotEntry{entry}}); err != nil {
		t.Fatal(err)
	}
	entry.Hash, entry.Version = "h2", 2
	if err := st.Commit(ctx, Batch{Source: "src", At: at, Snapshot: []SnapshotEntry{entry}}); err == nil {
		t.Fatal("a new entry of a stored key was committed")
	}
	got, err := st.Snapshot(ctx, "src", "d", []string{"K1"})
	if err != nil || got["K1"].Hash != "h1" || got["K1"].Version != 1 {
		t.Fatalf("stored row = %+v, %v; want h1 at version 1", got["K1"], err)
	}
}
