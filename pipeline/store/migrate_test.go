package store_test

import (
	"database/sql"
	"os"
	"testing"
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
