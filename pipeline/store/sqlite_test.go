package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/store/storetest"
)

func openSQLite(t testing.TB, path string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: path})
	if err != nil {
		t.Fatalf("Open sqlite: %v", err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "state", "egov-bridge.db"))
	})
}

func TestSQLiteHandles(t *testing.T) {
	storetest.RunHandles(t, func(t *testing.T) (store.Store, storetest.Reopen) {
		path := filepath.Join(t.TempDir(), "egov-bridge.db")
		return openSQLite(t, path), func(t *testing.T) store.Store { return openSQLite(t, path) }
	})
}

func TestSQLiteMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "egov-bridge.db")
	s := openSQLite(t, path)
	if err := s.Commit(t.Context(), store.Batch{Source: "src", Position: []byte("p1")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLite(t, path)
	defer s.Close()
	c, err := s.Cursor(t.Context(), "src")
	if err != nil || string(c.Position) != "p1" {
		t.Fatalf("after reopening: cursor %+v, %v; want position p1", c, err)
	}
	assertMigrations(t, openRaw(t, "sqlite", path), migrationCount(t, "sqlite"))
}

// On SQLite the locks are files beside the database, so the daemon and an operator
// command in another process exclude each other.
func TestSQLiteLocksExcludeOtherStoresOnTheSameFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	open := func() store.Store {
		s, err := store.Open(t.Context(), store.Config{Driver: store.DriverSQLite, Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	defer b.Close()
	l, ok, err := a.TryLock(t.Context(), "source/motcua")
	if err != nil || !ok {
		t.Fatalf("a: %v, %v", ok, err)
	}
	if _, ok, err := b.TryLock(t.Context(), "source/motcua"); err != nil || ok {
		t.Fatalf("b took a lock a holds: %v, %v", ok, err)
	}
	l.Unlock()
	if _, ok, _ := a.TryLock(t.Context(), "dispatch/zalo"); !ok {
		t.Fatal("a could not lock dispatch/zalo")
	}
	a.Close() // a process that ends releases its locks
	if _, ok, err := b.TryLock(t.Context(), "dispatch/zalo"); err != nil || !ok {
		t.Fatalf("lock of a closed store still held: %v, %v", ok, err)
	}
}
