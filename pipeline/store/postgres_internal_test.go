package store

import (
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// On PostgreSQL a seq is handed out at insert, not at commit. Commits that insert
// events must therefore hold a lock from the insert to the commit, or a reader could
// see seq 10 before seq 9 commits and never look back. This checks the lock is held
// exactly that long.
func TestPostgresEventInsertHoldsLockUntilCommit(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	st, err := Open(t.Context(), Config{Driver: DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
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
