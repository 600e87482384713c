package sqlsource

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// sqliteTable creates a database file in a fresh folder and returns the folder and
// an open handle.
func sqliteTable(t testing.TB, ddl ...string) (string, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "agency.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range ddl {
		mustExec(t, db, q)
	}
	return dir, db
}

func sqliteSource(t testing.TB, dir string, configure func(*Options)) *Source {
	t.Helper()
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "sqlite", "agency.db", "items"
	o.Cursor = CursorOptions{Column: "updated_at", Key: "id"}
	if configure != nil {
		configure(o)
	}
	clock := func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	return openSource(t, pipeline.Env{Clock: clock, Resolve: func(p string) string { return filepath.Join(dir, p) }}, o)
}

// Memory must not grow with the table: rows are streamed to emit and dropped, so
// after each batch the live heap is what it was before the first.
func TestSQLiteStreamsLargeTableInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 200k rows")
	}
	total, batchSize := 200_000, 1000
	if raceEnabled {
		total = 20_000 // the same property, in the time budget of an instrumented build
	}
	dir, db := sqliteTable(t,
		`CREATE TABLE items (id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL, payload TEXT NOT NULL)`,
		`WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < `+strconv.Itoa(total)+`)
		 INSERT INTO items SELECT n, strftime('%Y-%m-%d %H:%M:%S', '2025-01-01', '+' || (n / 7) || ' seconds'),
		        printf('payload %08d: a line of text the size of a real field, to give each row some weight', n) FROM seq`,
		`CREATE INDEX items_cursor ON items (updated_at, id)`,
	)
	db.Close()
	src := sqliteSource(t, dir, func(o *Options) { o.BatchSize = batchSize })

	var before, now runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var pos pipeline.Position
	read, batches, maxGrowth := 0, 0, int64(0)
	for done := false; !done; batches++ {
		if batches > total/batchSize+1 {
			t.Fatalf("still not done after %d batches", batches)
		}
		n := 0
		var err error
		pos, done, err = src.ReadBatch(t.Context(), pos, pipeline.EmitFunc(func(pipeline.Row) error { n++; return nil }))
		if err != nil {
			t.Fatal(err)
		}
		if n > batchSize {
			t.Fatalf("batch %d emitted %d rows, more than batch_size %d", batches, n, batchSize)
		}
		read += n
		if batches%10 == 0 || done {
			runtime.GC()
			runtime.ReadMemStats(&now)
			maxGrowth = max(maxGrowth, int64(now.HeapAlloc)-int64(before.HeapAlloc))
		}
	}
	if read != total {
		t.Fatalf("read %d rows, want %d", read, total)
	}
	// Holding 200k rows would take well over 50 MiB (20k: over 5 MiB); one batch in
	// flight is far below the bound.
	const bound = 4 << 20
	if maxGrowth > bound {
		t.Fatalf("live heap grew by %d KiB while streaming, more than %d KiB", maxGrowth>>10, bound>>10)
	}
	t.Logf("%d rows in %d batches; live heap grew by at most %d KiB", read, batches, maxGrowth>>10)
}

func TestSQLiteRowsWithNullCursorAreNotRead(t *testing.T) {
	dir, _ := sqliteTable(t,
		`CREATE TABLE items (id INTEGER PRIMARY KEY, updated_at DATETIME)`,
		`INSERT INTO items VALUES (1, '2025-03-10 09:00:00'), (2, NULL), (3, '2025-03-10 09:00:01')`,
	)
	rows, _ := readAll(t, sqliteSource(t, dir, nil), nil)
	if got := ids(rows, "id"); !reflect.DeepEqual(got, []any{int64(1), int64(3)}) {
		t.Fatalf("read %v, want [1 3]", got)
	}
}

func TestSQLiteNullKeyIsAnError(t *testing.T) {
	dir, _ := sqliteTable(t,
		`CREATE TABLE items (id TEXT, updated_at DATETIME NOT NULL)`,
		`INSERT INTO items VALUES (NULL, '2025-03-10 09:00:00')`,
	)
	_, _, err := sqliteSource(t, dir, nil).ReadBatch(t.Context(), nil, pipeline.EmitFunc(func(pipeline.Row) error { return nil }))
	if err == nil || !strings.Contains(err.Error(), `key column "id": value is NULL`) {
		t.Fatalf("got %v, want an error about the NULL key", err)
	}
}

// Cursor text with trailing zeros in its fraction does not compare equal to the
// value bound back; the source must stop with an error instead of returning the
// same batch forever.
func TestSQLiteCursorThatDoesNotBindBackStops(t *testing.T) {
	dir, _ := sqliteTable(t,
		`CREATE TABLE items (id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL)`,
		`INSERT INTO items VALUES (1, '2025-03-10 09:00:00.500'), (2, '2025-03-10 09:00:00.500'), (3, '2025-03-10 09:00:00.500')`,
	)
	src := sqliteSource(t, dir, func(o *Options) { o.BatchSize = 2 })
	pos, _, err := src.ReadBatch(t.Context(), nil, pipeline.EmitFunc(func(pipeline.Row) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = src.ReadBatch(t.Context(), pos, pipeline.EmitFunc(func(pipeline.Row) error { return nil }))
	if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "do not bind back exactly") {
		t.Fatalf("got %v, want a permanent error about the cursor value", err)
	}
}

// A typo in the path must not create an empty database that reads nothing forever.
func TestSQLiteMissingFileIsNotCreated(t *testing.T) {
	dir := t.TempDir()
	_, _, err := sqliteSource(t, dir, nil).ReadBatch(t.Context(), nil, pipeline.EmitFunc(func(pipeline.Row) error { return nil }))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "agency.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the database file was created")
	}
}

func TestEmitErrorIsReturnedUnchanged(t *testing.T) {
	dir, _ := sqliteTable(t,
		`CREATE TABLE items (id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL)`,
		`INSERT INTO items VALUES (1, '2025-03-10 09:00:00')`,
	)
	stop := errors.New("mapping failed")
	_, _, err := sqliteSource(t, dir, nil).ReadBatch(t.Context(), nil, pipeline.EmitFunc(func(pipeline.Row) error { return stop }))
	if err != stop {
		t.Fatalf("got %v, want the emit error itself", err)
	}
}

func TestQueryTimeoutBoundsABatch(t *testing.T) {
	dir, _ := sqliteTable(t,
		`CREATE TABLE items (id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL)`,
		`INSERT INTO items VALUES (1, '2025-03-10 09:00:00')`,
	)
	src := sqliteSource(t, dir, nil)
	src.opts.QueryTimeout = 1 // nanosecond: expired before the query runs
	_, _, err := src.ReadBatch(t.Context(), nil, pipeline.EmitFunc(func(pipeline.Row) error { return nil }))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
}
