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
	"github.com/egov-bridge/egov-bridge/pipeline/config"
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

// SQLite stores whatever it is given: a NULL key or cursor, text that is no time in
// a DATETIME column, a number where text was meant, a REAL among integer keys.
// Each such row is rejected once with a reason naming its column, every good row
// around it is emitted once and in order, and the high-water mark stays a time so
// that the lookback still works.
func TestSQLitePoisonRowsAreRejectedAndReadingGoesOn(t *testing.T) {
	dir, db := sqliteTable(t,
		`CREATE TABLE items (id INTEGER UNIQUE, updated_at DATETIME, payload TEXT)`,
		`INSERT INTO items VALUES
			(1, '2025-03-10 09:00:00', 'good 1'),
			(NULL, '2025-03-10 09:00:01', 'NULL key'),
			(2, '2025-03-10 09:00:01', 'good 2'),
			(3, '2025-03-10 09:00:01', 'good 3'),
			(3.5, '2025-03-10 09:00:01', 'REAL key between 3 and 4'),
			(4, '2025-03-10 09:00:01', 'good 4'),
			(5, 12345, 'number as cursor'),
			(6, '2025-13-45 99:00:00', 'month 13'),
			(7, NULL, 'NULL cursor'),
			(8, NULL, 'NULL cursor too'),
			(9, '2025-03-10 09:00:02', 'good 9'),
			(NULL, NULL, 'NULL key and cursor: cannot be swept by key')`,
	)
	src := sqliteSource(t, dir, func(o *Options) { o.BatchSize = 2; o.Lookback = config.Duration(time.Minute) })
	rec, pos := readRecorded(t, src, nil, 12)
	if got := payloads(rec.rows); !reflect.DeepEqual(got, []string{"good 1", "good 2", "good 3", "good 4", "good 9"}) {
		t.Fatalf("emitted %v", got)
	}
	wantReasons := map[string]string{
		"NULL key":                 `key column "id" is NULL (row with cursor 2025-03-10 09:00:01)`,
		"REAL key between 3 and 4": `key column "id" holds a floating-point value`,
		"number as cursor":         `cursor column "updated_at" holds 12345, which is not a time (row with key ***)`,
		"month 13":                 `cursor column "updated_at" holds "2025-13-45 99:00:00", which is not a time`,
		"NULL cursor":              `cursor column "updated_at" is NULL (row with key ***)`,
		"NULL cursor too":          `cursor column "updated_at" is NULL`,
	}
	assertReasons(t, rec.rejected, wantReasons)

	p, err := decodePosition(pos)
	if err != nil || p.High == nil || p.High.Cursor != (value{"time", "2025-03-10T09:00:02Z"}) {
		t.Fatalf("high-water mark %+v (%v), want the last good row's time", p.High, err)
	}
	// After Rewind the window is read again: its rows with a NULL or REAL key
	// are rejected again (once per run), the swept rows are not, and a row with a
	// NULL cursor written since is.
	mustExec(t, db, `INSERT INTO items VALUES (10, '2025-03-10 09:00:03', 'good 10'), (11, NULL, 'NULL cursor, later')`)
	rec, _ = readRecorded(t, src, src.Rewind(pos), 12)
	if got := payloads(rec.rows); !reflect.DeepEqual(got, []string{"good 1", "good 2", "good 3", "good 4", "good 9", "good 10"}) {
		t.Fatalf("after Rewind emitted %v", got)
	}
	assertReasons(t, rec.rejected, map[string]string{
		"NULL key": "is NULL", "REAL key between 3 and 4": "floating-point",
		"NULL cursor, later": `cursor column "updated_at" is NULL`,
	})
}

// A batch full of poison rows still moves the position: more rows with a NULL
// cursor or key than a batch holds are each rejected once, and reading ends.
func TestSQLitePoisonRowsFillingWholeBatches(t *testing.T) {
	dir, _ := sqliteTable(t,
		`CREATE TABLE items (id INTEGER UNIQUE, updated_at DATETIME, payload TEXT)`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 7)
		 INSERT INTO items SELECT i, NULL, 'NULL cursor ' || i FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5)
		 INSERT INTO items SELECT NULL, '2025-03-10 09:00:0' || i, 'NULL key ' || i FROM n`,
		`INSERT INTO items VALUES (100, '2025-03-10 09:00:09', 'good')`,
	)
	src := sqliteSource(t, dir, func(o *Options) { o.BatchSize = 2 })
	rec, pos := readRecorded(t, src, nil, 10)
	if got := payloads(rec.rows); !reflect.DeepEqual(got, []string{"good"}) {
		t.Fatalf("emitted %v", got)
	}
	if len(rec.rejected) != 12 {
		t.Fatalf("rejected %d rows, want the 12 poison rows once each", len(rec.rejected))
	}
	rec, _ = readRecorded(t, src, pos, 2)
	if len(rec.rows)+len(rec.rejected) != 0 {
		t.Fatalf("read again %d rows and rejected %d, want nothing", len(rec.rows), len(rec.rejected))
	}
}

// Text in an integer cursor sorts after every number in SQLite: were it the read
// point, rows written after it would be skipped. The keyset reads only integers
// and the sweep rejects the rest, so the reader stays among the numbers.
func TestSQLiteTextInIntegerCursorDoesNotCarryTheReaderPastLaterRows(t *testing.T) {
	dir, db := sqliteTable(t,
		`CREATE TABLE items (id INTEGER PRIMARY KEY, phien INTEGER)`,
		`INSERT INTO items VALUES (1, 10), (2, 'abc'), (3, 11), (4, 10.5)`,
	)
	src := sqliteSource(t, dir, func(o *Options) { o.Cursor.Column = "phien"; o.BatchSize = 2 })
	rec, pos := readRecorded(t, src, nil, 5)
	if got := ids(rec.rows, "id"); !reflect.DeepEqual(got, []any{int64(1), int64(3)}) {
		t.Fatalf("emitted %v, want [1 3]", got)
	}
	assertReasons(t, rec.rejected, map[string]string{
		"2": `cursor column "phien" holds "abc", which is not an integer (row with key ***)`,
		"4": `cursor column "phien" holds a floating-point value`,
	})

	mustExec(t, db, `INSERT INTO items VALUES (5, 12)`)
	rec, _ = readRecorded(t, src, pos, 5)
	if got := ids(rec.rows, "id"); !reflect.DeepEqual(got, []any{int64(5)}) || len(rec.rejected) != 0 {
		t.Fatalf("next run emitted %v and rejected %d rows, want [5] and none", got, len(rec.rejected))
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
