package sqlsource

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/sourcetest"
)

// ict is the source zone in these tests: Asia/Ho_Chi_Minh, which has no DST.
var ict = time.FixedZone("ICT", 7*3600)

func TestConformancePostgresTimestamp(t *testing.T) {
	sourcetest.Run(t, postgresHarness("timestamp(3)"))
}

func TestConformancePostgresTimestampTZ(t *testing.T) {
	sourcetest.Run(t, postgresHarness("timestamptz(3)"))
}

func TestConformanceSQLite(t *testing.T) {
	sourcetest.Run(t, sqliteHarness())
}

// openSource opens a source from options and closes it when the test ends.
func openSource(t testing.TB, env pipeline.Env, o *Options) *Source {
	t.Helper()
	if env.Zone == nil {
		env.Zone = ict
	}
	if env.Name == "" {
		env.Name = "test"
	}
	src, err := Open(context.Background(), env, o)
	if err != nil {
		t.Fatalf("open source: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func suiteOptions(driver, dsn, table string, s sourcetest.Settings) *Options {
	o := NewOptions()
	o.Driver, o.DSN, o.Table = driver, dsn, table
	o.Cursor = CursorOptions{Column: sourcetest.CursorField, Key: sourcetest.KeyField}
	o.BatchSize = s.BatchSize
	o.Lag = config.Duration(s.Lag)
	o.Lookback = config.Duration(s.Lookback)
	return o
}

func mustExec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// rawArgs binds a raw row with NULLs where it has none, times as wall clock in
// the source zone written in layout.
func rawArgs(layout string) func(sourcetest.Raw) []any {
	return func(r sourcetest.Raw) []any {
		var id, at any
		if r.ID != nil {
			id = *r.ID
		}
		if r.UpdatedAt != nil {
			at = r.UpdatedAt.In(ict).Format(layout)
		}
		return []any{id, at, r.Payload}
	}
}

// putAll writes items in one transaction with one statement per item.
func putAll[T any](t *testing.T, db *sql.DB, query string, args func(T) []any, items []T) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare(query)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if _, err := stmt.Exec(args(it)...); err != nil {
			t.Fatalf("put %v: %v", it, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// postgresHarness runs the suite on a fresh schema per case. A timestamp column is
// written as wall-clock text in the source zone, a timestamptz column with its
// offset, so the source's zone handling is what the suite's UTC times check. The
// database clock cannot be moved, so the source's now is the suite's clock; the
// real clock is covered by TestPostgresLagUsesTheDatabaseClock.
func postgresHarness(colType string) sourcetest.Harness {
	return sourcetest.Harness{Open: func(t *testing.T, s sourcetest.Settings) sourcetest.Fixture {
		dsn, schema := testpg.Schema(t)
		db := testpg.Open(t, dsn)
		// Nullable key and cursor, so that PutRaw can write poison rows.
		mustExec(t, db, `CREATE TABLE items (id bigint UNIQUE, updated_at `+colType+`, payload text NOT NULL)`)
		mustExec(t, db, `CREATE INDEX ON items (updated_at, id)`)
		src := openSource(t, pipeline.Env{}, suiteOptions("postgres", dsn, schema+".items", s))
		src.now = func(context.Context) (time.Time, error) { return s.Clock(), nil }
		layout := "2006-01-02 15:04:05.000"
		if colType == "timestamptz(3)" {
			layout = "2006-01-02 15:04:05.000-07:00"
		}
		return sourcetest.Fixture{Source: src, Put: func(t *testing.T, items ...sourcetest.Item) {
			putAll(t, db, `INSERT INTO items (id, updated_at, payload) VALUES ($1, $2, $3)
				ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, payload = excluded.payload`,
				func(it sourcetest.Item) []any {
					return []any{it.ID, it.UpdatedAt.In(ict).Format(layout), it.Payload}
				}, items)
		}, PutRaw: func(t *testing.T, rows ...sourcetest.Raw) {
			putAll(t, db, `INSERT INTO items (id, updated_at, payload) VALUES ($1, $2, $3)`, rawArgs(layout), rows)
		}}
	}}
}

// sqliteHarness runs the suite on a fresh database file per case, named relative
// to the config folder as a user would write it; the source's clock is Env.Clock.
func sqliteHarness() sourcetest.Harness {
	return sourcetest.Harness{Open: func(t *testing.T, s sourcetest.Settings) sourcetest.Fixture {
		dir := t.TempDir()
		db, err := sql.Open("sqlite", filepath.Join(dir, "agency.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		// Not INTEGER PRIMARY KEY, which SQLite fills in when given NULL.
		mustExec(t, db, `CREATE TABLE items (id INTEGER UNIQUE, updated_at DATETIME, payload TEXT NOT NULL)`)
		mustExec(t, db, `CREATE INDEX items_cursor ON items (updated_at, id)`)
		env := pipeline.Env{Clock: s.Clock, Resolve: func(p string) string { return filepath.Join(dir, p) }}
		src := openSource(t, env, suiteOptions("sqlite", "agency.db", "items", s))
		return sourcetest.Fixture{Source: src, Put: func(t *testing.T, items ...sourcetest.Item) {
			putAll(t, db, `INSERT INTO items (id, updated_at, payload) VALUES (?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, payload = excluded.payload`,
				func(it sourcetest.Item) []any {
					return []any{it.ID, it.UpdatedAt.In(ict).Format(sqliteTimeLayout), it.Payload}
				}, items)
		}, PutRaw: func(t *testing.T, rows ...sourcetest.Raw) {
			putAll(t, db, `INSERT INTO items (id, updated_at, payload) VALUES (?, ?, ?)`, rawArgs(sqliteTimeLayout), rows)
		}}
	}}
}
