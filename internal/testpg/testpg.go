// Package testpg gives tests a fresh PostgreSQL schema on the real server.
//
// The server is EGOV_TEST_PG_DSN, default postgres://postgres@127.0.0.1:5432/test.
// When it cannot be reached the test fails if CI=true and is skipped otherwise, with
// a message that says what is missing.
package testpg

import (
	"database/sql"
	"net/url"
	"os"
	"testing"

	_ "github.com/lib/pq" // the driver the tests talk to PostgreSQL with

	"github.com/egov-bridge/egov-bridge/internal/testsvc"
)

// DefaultDSN is used when EGOV_TEST_PG_DSN is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseDSN returns the server DSN, failing or skipping the test when it is unreachable.
func BaseDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("EGOV_TEST_PG_DSN")
	if dsn == "" {
		dsn = DefaultDSN
	}
	testsvc.Require(t, "PostgreSQL", redact(dsn), "set EGOV_TEST_PG_DSN or start it", testsvc.Ping("postgres", dsn))
	return dsn
}

// Schema creates a fresh, uniquely named schema, drops it when the test ends, and
// returns a DSN whose search_path is that schema, plus the schema name.
func Schema(t testing.TB) (dsn, schema string) {
	t.Helper()
	base := BaseDSN(t)
	schema = testsvc.UniqueName("egt_")
	db, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		db.Close()
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		db.Close()
	})
	return WithSearchPath(base, schema), schema
}

// WithSearchPath sets search_path on a URL-form DSN; lib/pq sends unknown URL
// parameters as run-time settings.
func WithSearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a connection to the schema, closed when the test ends.
func Open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable DSN)"
	}
	return u.Redacted()
}
