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
