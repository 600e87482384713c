package store_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// migrationCount is how many migrations a dialect ships; every one must be applied.
func migrationCount(t *testing.T, dialect string) int {
	t.Helper()
	files, err := os.ReadDir("migrations/" + dialect)
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

func openRaw(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// assertMigrations checks that schema_migrations records each version once.
func assertMigrations(t *testing.T, db *sql.DB, want int) {
	t.Helper()
	var n, distinct int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if n != want || distinct != want {
		t.Errorf("schema_migrations has %d rows (%d versions), want %d", n, distinct, want)
	}
}

// A store whose schema lacks its last migration gets it when it opens: the
// applied versions are read once and only the missing ones are applied.
func TestOpenAppliesOnlyTheMissingMigration(t *testing.T) {
	for _, tc := range []struct {
		dialect string
		open    func(t *testing.T) (reopen func() store.Store, raw *sql.DB)
	}{
		{"sqlite", func(t *testing.T) (func() store.Store, *sql.DB) {
			path := filepath.Join(t.TempDir(), "egov-bridge.db")
			return func() store.Store { return openSQLite(t, path) }, openRaw(t, "sqlite", path)
		}},
		{"postgres", func(t *testing.T) (func() store.Store, *sql.DB) {
			dsn, _ := testpg.Schema(t)
			return func() store.Store { return openPostgres(t, dsn) }, testpg.Open(t, dsn)
		}},
	} {
		t.Run(tc.dialect, func(t *testing.T) {
			reopen, raw := tc.open(t)
			s := reopen()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// As if the store was made by the release before migration 0016.
			for _, q := range []string{`DROP TABLE snapshot_bulk`, `DELETE FROM schema_migrations WHERE version = 16`} {
				if _, err := raw.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			s = reopen()
			defer s.Close()
			assertMigrations(t, raw, migrationCount(t, tc.dialect))
			if _, err := s.BeginBulkLoad(t.Context(), "src"); err != nil {
				t.Errorf("BeginBulkLoad after the missing migration was applied: %v", err)
			}
			var on int
			if err := raw.QueryRow(`SELECT count(*) FROM snapshot_bulk`).Scan(&on); err != nil || on != 1 {
				t.Errorf("snapshot_bulk after a bulk load began: %d rows, %v; want the table back and its row", on, err)
			}
		})
	}
}
