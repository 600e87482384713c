package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/store/storetest"
)

func openPostgres(t testing.TB, dsn string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{Driver: store.DriverPostgres, DSN: dsn, MaxOpenConns: 4})
	if err != nil {
		t.Fatalf("Open postgres: %v", err)
	}
	return s
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		dsn, _ := testpg.Schema(t)
		return openPostgres(t, dsn)
	})
}

func TestPostgresHandles(t *testing.T) {
	storetest.RunHandles(t, func(t *testing.T) (store.Store, storetest.Reopen) {
		dsn, _ := testpg.Schema(t)
		return openPostgres(t, dsn), func(t *testing.T) store.Store { return openPostgres(t, dsn) }
	})
}

func TestPostgresMigrationsAreIdempotent(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	s := openPostgres(t, dsn)
	if err := s.Commit(t.Context(), store.Batch{Source: "src", Position: []byte("p1")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openPostgres(t, dsn)
	defer s.Close()
	c, err := s.Cursor(t.Context(), "src")
	if err != nil || string(c.Position) != "p1" {
		t.Fatalf("after reopening: cursor %+v, %v; want position p1", c, err)
	}
	assertMigrations(t, testpg.Open(t, dsn), migrationCount(t, "postgres"))
}

// Two replicas starting together on a fresh database must both come up, with the
// schema applied once.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn, schema := testpg.Schema(t)
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	stores := make([]store.Store, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = store.Open(t.Context(), store.Config{Driver: store.DriverPostgres, DSN: dsn})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Open: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	db := testpg.Open(t, dsn)
	assertMigrations(t, db, migrationCount(t, "postgres"))
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	// schema_migrations, the eight tables of 0001_init, store_meta, leases and the
	// three zalo tables of 0006, the seven of 0009 (inbox, subscriptions, feedback
	// and its numbers, ratings, look-up index and its fill marks), seen_keys and
	// miss_counts of 0010, fact_days, fact_open and timers of 0011 (its facts
	// went onto the snapshot in 0014, naming their kind and agency in
	// fact_groups), announcements and their recipients of 0012, and the four
	// snapshot tables of 0008 (feeds, shapes), and snapshot_bulk of 0016.
	if tables != 34 {
		t.Errorf("schema %s has %d tables, want 34", schema, tables)
	}
}

// Two replicas sharing one PostgreSQL store: a lock taken by one is refused to the
// other until it is released, explicitly or by the holder's death.
func TestPostgresLocksAreSharedBetweenReplicas(t *testing.T) {
	dsn, schema := testpg.Schema(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	defer b.Close()
	ctx := t.Context()
	unlock, ok, err := a.TryLock(ctx, "source/motcua")
	if err != nil || !ok {
		t.Fatalf("replica a: %v, %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "source/motcua"); err != nil || ok {
		t.Fatalf("replica b took a lock a holds: %v, %v", ok, err)
	}
	unlock.Unlock()
	unlockB, ok, err := b.TryLock(ctx, "source/motcua")
	if err != nil || !ok {
		t.Fatalf("replica b after a unlocked: %v, %v", ok, err)
	}
	unlockB.Unlock()

	// A lock whose session is killed (an idle timeout, a DBA) is released by the
	// server; the holder must see that it lost it.
	lost, ok, err := a.TryLock(ctx, "dispatch/sms")
	if err != nil || !ok {
		t.Fatalf("replica a: %v, %v", ok, err)
	}
	// Kill exactly the session holding this schema's dispatch/sms lock, waiting for it to end (other tests
	// run in parallel): a bigint advisory key shows as classid = high, objid = low half.
	admin := testpg.Open(t, dsn)
	var killed int
	if err := admin.QueryRow(`WITH k AS (SELECT hashtext('egov-bridge/lock/' || $1 || '/dispatch/sms')::bigint AS key)
		SELECT count(pg_terminate_backend(l.pid, 5000)) FROM pg_locks l, k
		WHERE l.locktype = 'advisory' AND l.objsubid = 1
		  AND l.objid = (k.key & 4294967295)::oid AND l.classid = ((k.key >> 32) & 4294967295)::oid`, schema).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d lock sessions (%v), want 1", killed, err)
	}
	if lost.Held(ctx) {
		t.Fatal("a lock whose session was killed still reports held")
	}
	taken, ok, err := b.TryLock(ctx, "dispatch/sms")
	if err != nil || !ok {
		t.Fatalf("replica b after a's session died: %v, %v", ok, err)
	}
	lost.Unlock() // a's stale unlock must not touch b's lock
	if !taken.Held(ctx) {
		t.Fatal("b lost its lock")
	}
	if _, ok, _ := a.TryLock(ctx, "dispatch/sms"); ok {
		t.Fatal("a took a lock b holds")
	}
	taken.Unlock()

	// A replica that dies (its connections close) releases what it held.
	if _, ok, _ := a.TryLock(ctx, "dispatch/zalo"); !ok {
		t.Fatal("replica a could not lock dispatch/zalo")
	}
	a.Close()
	// The server releases it when its backend notices the closed connection, which
	// takes a moment; wait for that, as a standing-by replica does on its next poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, ok, err := b.TryLock(ctx, "dispatch/zalo")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lock of a closed replica still held after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Locks are per schema: another store schema does not see them.
	other, _ := testpg.Schema(t)
	c := openPostgres(t, other)
	defer c.Close()
	if _, ok, err := c.TryLock(ctx, "dispatch/zalo"); err != nil || !ok {
		t.Fatalf("a lock leaked into another schema: %v, %v", ok, err)
	}
}
