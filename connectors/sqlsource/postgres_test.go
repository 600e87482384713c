package sqlsource

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// readAll reads from pos until done and returns the rows and the final position.
func readAll(t testing.TB, src pipeline.Source, pos pipeline.Position) ([]pipeline.Row, pipeline.Position) {
	t.Helper()
	var rows []pipeline.Row
	for range 1000 {
		next, done, err := src.ReadBatch(t.Context(), pos, pipeline.EmitFunc(func(r pipeline.Row) error {
			rows = append(rows, r)
			return nil
		}))
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		pos = next
		if done {
			return rows, pos
		}
	}
	t.Fatal("source never done")
	return nil, nil
}

func ids(rows []pipeline.Row, key string) []any {
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = r[key]
	}
	return out
}

// The lag is measured from PostgreSQL's clock, and for a timestamp column in the
// source zone whatever the session's TimeZone is: agencies' servers are often UTC
// while the application writes local time.
func TestPostgresLagUsesTheDatabaseClock(t *testing.T) {
	dsn, schema := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE TABLE ho_so (ma bigint PRIMARY KEY, ngay timestamp NOT NULL, ngay_tz timestamptz NOT NULL)`)
	var now time.Time
	if err := db.QueryRow(`SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	wall := func(d time.Duration) string { return now.Add(d).In(ict).Format("2006-01-02 15:04:05.999999") }
	inst := func(d time.Duration) time.Time { return now.Add(d) }
	mustExec(t, db, `INSERT INTO ho_so VALUES (1, $1, $2), (2, $3, $4), (3, $5, $6)`,
		wall(-2*time.Hour), inst(-2*time.Hour), // old enough
		wall(-50*time.Minute), inst(-50*time.Minute), // inside the 1h lag
		wall(time.Minute), inst(time.Minute)) // a clock slightly ahead

	for _, column := range []string{"ngay", "ngay_tz"} {
		t.Run(column, func(t *testing.T) {
			o := NewOptions()
			o.Driver, o.Table = "postgres", schema+".ho_so"
			o.DSN = testpg.WithSearchPath(dsn, schema) + "&TimeZone=America/New_York"
			o.Cursor = CursorOptions{Column: column, Key: "ma"}
			o.Lag = config.Duration(time.Hour)
			src := openSource(t, pipeline.Env{}, o)
			rows, _ := readAll(t, src, nil)
			if got := ids(rows, "ma"); !reflect.DeepEqual(got, []any{int64(1)}) {
				t.Fatalf("read keys %v, want only [1]: rows newer than the database's now - 1h must wait", got)
			}
			if got, want := rows[0]["ngay"].(time.Time), now.Add(-2*time.Hour).Truncate(time.Microsecond); !got.Equal(want) || got.Location() != time.UTC {
				t.Fatalf("ngay = %v, want %v in UTC", got, want.UTC())
			}
		})
	}
}

// Values arrive as a mapping can use them: text as string, binary as bytes, times
// in UTC with zone-less ones read in the source zone.
func TestPostgresRowValues(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE TABLE ho_so (
		ma text PRIMARY KEY, ngay timestamp NOT NULL, han date, nhan timestamptz,
		phi numeric(12,2), anh bytea, ma_uuid uuid, meta jsonb, so int, gio time, xong boolean, ghi_chu text)`)
	mustExec(t, db, `INSERT INTO ho_so VALUES ('HS-1', '2025-03-10 09:00:00', '2025-03-12', '2025-03-10 09:00:00+07',
		12.50, '\x000102', '0f8fad5b-d9cb-469f-a165-70867728950e', '{"a":1}', 7, '07:30', true, NULL)`)
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "postgres", dsn, "ho_so"
	o.Cursor = CursorOptions{Column: "ngay", Key: "ma"}
	rows, _ := readAll(t, openSource(t, pipeline.Env{}, o), nil)
	if len(rows) != 1 {
		t.Fatalf("got %d rows", len(rows))
	}
	want := pipeline.Row{
		"ma":      "HS-1",
		"ngay":    time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC),
		"han":     time.Date(2025, 3, 11, 17, 0, 0, 0, time.UTC),
		"nhan":    time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC),
		"phi":     "12.50",
		"anh":     []byte{0, 1, 2},
		"ma_uuid": "0f8fad5b-d9cb-469f-a165-70867728950e",
		"meta":    `{"a": 1}`,
		"so":      int64(7),
		"gio":     "07:30:00",
		"xong":    true,
		"ghi_chu": nil,
	}
	for k, w := range want {
		g := rows[0][k]
		if wt, ok := w.(time.Time); ok {
			gt, ok := g.(time.Time)
			if !ok || !gt.Equal(wt) || gt.Location() != time.UTC {
				t.Errorf("%s = %#v, want %v", k, g, wt)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}
	if len(rows[0]) != len(want) {
		t.Errorf("row has %d columns, want %d: %v", len(rows[0]), len(want), rows[0])
	}
}

// A custom query is read as a derived table with the same cursor, and only the
// listed columns (plus cursor and key) are selected.
func TestPostgresCustomQueryAndColumns(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE TABLE ho_so (ma bigint PRIMARY KEY, ngay timestamp NOT NULL, trang_thai int, bi_mat text)`)
	mustExec(t, db, `INSERT INTO ho_so VALUES (1, '2025-03-10 08:00', 9, 'x'), (2, '2025-03-10 08:01', 2, 'y'), (3, '2025-03-10 08:02', 9, 'z')`)

	q := NewOptions()
	q.Driver, q.DSN = "postgres", dsn
	q.Query = "SELECT ma, ngay, trang_thai FROM ho_so WHERE trang_thai = 9 -- results only\n"
	q.Cursor = CursorOptions{Column: "ngay", Key: "ma"}
	rows, _ := readAll(t, openSource(t, pipeline.Env{Clock: time.Now}, q), nil)
	if got := ids(rows, "ma"); !reflect.DeepEqual(got, []any{int64(1), int64(3)}) {
		t.Fatalf("query read %v, want [1 3]", got)
	}

	c := NewOptions()
	c.Driver, c.DSN, c.Table = "postgres", dsn, "ho_so"
	c.Columns = []string{"trang_thai"}
	c.Cursor = CursorOptions{Column: "ngay", Key: "ma"}
	rows, _ = readAll(t, openSource(t, pipeline.Env{}, c), nil)
	if len(rows) != 3 || len(rows[0]) != 3 || rows[0]["bi_mat"] != nil {
		t.Fatalf("columns read %v, want trang_thai, ngay and ma only", rows)
	}
}

func TestPostgresConfigMistakesFoundAtFirstRead(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE TABLE ho_so (ma bigint PRIMARY KEY, phien bigint NOT NULL, ngay timestamp)`)
	tests := []struct {
		name     string
		cursor   CursorOptions
		lookback time.Duration
		want     string
	}{
		{"missing column", CursorOptions{Column: "ngay_cap_nhat", Key: "ma"}, 0, `cursor.column "ngay_cap_nhat" is not a column of the result`},
		{"lookback on an integer cursor", CursorOptions{Column: "phien", Key: "ma"}, time.Minute, `lookback needs a time cursor, but cursor.column "phien" is INT8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOptions()
			o.Driver, o.DSN, o.Table, o.Cursor = "postgres", dsn, "ho_so", tt.cursor
			o.Lookback = config.Duration(tt.lookback)
			_, _, err := openSource(t, pipeline.Env{}, o).ReadBatch(t.Context(), nil, pipeline.EmitFunc(func(pipeline.Row) error { return nil }))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !pipeline.IsPermanent(err) {
				t.Fatalf("got %v, want a permanent error containing %q", err, tt.want)
			}
		})
	}
}

// An integer cursor (a sequence) is read without a time bound.
func TestPostgresIntegerCursor(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE TABLE nhat_ky (id bigint PRIMARY KEY, phien bigint NOT NULL)`)
	mustExec(t, db, `INSERT INTO nhat_ky SELECT g, g / 3 FROM generate_series(1, 10) g`)
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "postgres", dsn, "nhat_ky"
	o.Cursor = CursorOptions{Column: "phien", Key: "id"}
	o.BatchSize = 4
	src := openSource(t, pipeline.Env{}, o)
	rows, pos := readAll(t, src, nil)
	if len(rows) != 10 {
		t.Fatalf("read %d rows, want 10", len(rows))
	}
	mustExec(t, db, `INSERT INTO nhat_ky VALUES (11, 100)`)
	rows, _ = readAll(t, src, pos)
	if got := ids(rows, "id"); !reflect.DeepEqual(got, []any{int64(11)}) {
		t.Fatalf("resume read %v, want [11]", got)
	}
}

// Keys of every kind PostgreSQL has bind back exactly in the keyset query, which
// goes out in one round trip (lib/pq's binary_parameters, []byte as the bytes
// themselves): rows sharing one cursor value are each read once, in key order,
// two to a batch, whatever the key's type.
func TestPostgresKeysOfEveryTypeBindBack(t *testing.T) {
	dsn, schema := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	keys := []struct{ typ, a, b, c string }{
		{"bytea", `'\x00ff'`, `'\x01'`, `'\x0100'`},
		{"uuid", `'0f8fad5b-d9cb-469f-a165-70867728950e'`, `'7c9e6679-7425-40de-944b-e07fc1f90ae7'`, `'f47ac10b-58cc-4372-a567-0e02b2c3d479'`},
		{"numeric(12,2)", `1.50`, `2`, `10.25`},
		{"text", `'HS-1'`, `'HS-10'`, `'HS-2'`},
		{"bigint", `-5`, `7`, `1000000000000`},
	}
	for i, k := range keys {
		t.Run(k.typ, func(t *testing.T) {
			table := fmt.Sprintf("ho_so_%d", i)
			mustExec(t, db, `CREATE TABLE `+table+` (ma `+k.typ+` PRIMARY KEY, ngay timestamptz NOT NULL)`)
			mustExec(t, db, `INSERT INTO `+table+` VALUES (`+k.a+`, '2025-03-10T01:00:00Z'), (`+k.b+`, '2025-03-10T01:00:00Z'), (`+k.c+`, '2025-03-10T01:00:00Z')`)
			o := NewOptions()
			o.Driver, o.Table, o.BatchSize = "postgres", schema+"."+table, 2
			o.DSN = testpg.WithSearchPath(dsn, schema)
			o.Cursor = CursorOptions{Column: "ngay", Key: "ma"}
			src := openSource(t, pipeline.Env{}, o)
			rows, _ := readAll(t, src, nil)
			if len(rows) != 3 {
				t.Fatalf("read %d rows (%v), want the 3 sharing one cursor value, each once", len(rows), ids(rows, "ma"))
			}
			seen := map[string]bool{}
			for _, r := range rows {
				seen[fmt.Sprint(r["ma"])] = true
			}
			if len(seen) != 3 {
				t.Fatalf("keys read %v: one was read twice", ids(rows, "ma"))
			}
		})
	}
}

// The database's clock is read once and carried forward by the local clock for
// dbClockFor, then read again.
func TestPostgresClockIsCarriedForwardBetweenReads(t *testing.T) {
	dsn, schema := testpg.Schema(t)
	o := NewOptions()
	o.Driver, o.Table, o.DSN = "postgres", schema+".ho_so", testpg.WithSearchPath(dsn, schema)
	o.Cursor = CursorOptions{Column: "ngay", Key: "ma"}
	// The application's clock stands still (an injected one may); the local
	// clock that carries the reading forward is the one that moves.
	frozen := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	src := openSource(t, pipeline.Env{Clock: func() time.Time { return frozen }}, o)
	local := frozen
	src.local = func() time.Time { return local }
	first, err := src.now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	local = local.Add(time.Second)
	if carried, err := src.now(t.Context()); err != nil || !carried.Equal(first.Add(time.Second)) {
		t.Fatalf("a second later: %v, %v; want the first reading carried forward, %v", carried, err, first.Add(time.Second))
	}
	local = local.Add(dbClockFor)
	again, err := src.now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if again.Sub(first) > dbClockFor/2 {
		t.Fatalf("after %s: %v, %s after the first reading; want the database asked again (its clock moved by far less)", dbClockFor, again, again.Sub(first))
	}
}
