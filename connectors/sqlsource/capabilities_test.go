package sqlsource

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-sql/civil"
	mssql "github.com/microsoft/go-mssqldb"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/sourcetest"
)

// A sequence hands out ids in order but transactions commit in any order: a row
// holding id 3 can become visible after the reader has read id 4. Every run
// re-reads the last lookback_ids ids, so the next run reads it.
func TestPostgresIntegerCursorReadsRowsCommittedOutOfOrder(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE SEQUENCE phien_seq`)
	mustExec(t, db, `CREATE TABLE nhat_ky (ma text PRIMARY KEY, phien bigint NOT NULL DEFAULT nextval('phien_seq'))`)
	mustExec(t, db, `INSERT INTO nhat_ky (ma) VALUES ('a'), ('b')`)
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "postgres", dsn, "nhat_ky"
	o.Cursor = CursorOptions{Column: "phien", Key: "ma"}
	src := openSource(t, pipeline.Env{}, o)
	_, pos := readAll(t, src, nil)

	slow, err := db.Begin() // takes phien 3 and commits last
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback()
	if _, err := slow.Exec(`INSERT INTO nhat_ky (ma) VALUES ('slow')`); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `INSERT INTO nhat_ky (ma) VALUES ('fast')`) // phien 4, committed first

	rows, pos := readAll(t, src, src.Rewind(pos)) // a run between the two commits
	if got := keysOf(rows, "ma"); !slices.Contains(got, "fast") || slices.Contains(got, "slow") {
		t.Fatalf("run between the commits read %v, want fast and not slow", got)
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	rows, _ = readAll(t, src, src.Rewind(pos))
	if got := keysOf(rows, "ma"); !slices.Contains(got, "slow") {
		t.Fatalf("the next run read %v, want the row committed late (phien 3 after 4)", got)
	}
}

func keysOf(rows []pipeline.Row, key string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprint(r[key])
	}
	return out
}

func TestPostgresLookbackIDsNeedsAnIntegerCursor(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE TABLE ho_so (ma bigint PRIMARY KEY, phien bigint NOT NULL, ngay timestamp, ma_ho_so text)`)
	tests := []struct {
		column, want string
	}{
		{"ngay", `lookback_ids needs an integer cursor, but cursor.column "ngay" is TIMESTAMP, a time: use lookback`},
		{"ma_ho_so", `lookback_ids needs an integer cursor, but cursor.column "ma_ho_so" is TEXT`},
	}
	for _, tt := range tests {
		t.Run(tt.column, func(t *testing.T) {
			o := NewOptions()
			o.Driver, o.DSN, o.Table = "postgres", dsn, "ho_so"
			o.Cursor = CursorOptions{Column: tt.column, Key: "ma"}
			o.LookbackIDs = ptr(int64(100))
			_, _, err := openSource(t, pipeline.Env{}, o).ReadBatch(t.Context(), nil, &recorder{})
			if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a permanent error containing %q", err, tt.want)
			}
		})
	}
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "postgres", dsn, "ho_so"
	o.Cursor = CursorOptions{Column: "phien", Key: "ma"}
	o.LookbackIDs = ptr(int64(100))
	if _, _, err := openSource(t, pipeline.Env{}, o).ReadBatch(t.Context(), nil, &recorder{}); err != nil {
		t.Fatalf("an integer cursor with lookback_ids: %v", err)
	}
}

// Columns is asked afresh, with names spelled as in rows: a column renamed while
// the daemon runs shows at once.
func TestPostgresColumnsAreAskedAfresh(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE TABLE ho_so (ma bigint PRIMARY KEY, "NgayCapNhat" timestamp NOT NULL, mahoso text)`)
	mustExec(t, db, `INSERT INTO ho_so VALUES (1, '2025-03-10 09:00', 'HS-1')`)
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "postgres", dsn, "ho_so"
	o.Cursor = CursorOptions{Column: "NgayCapNhat", Key: "ma"}
	src := openSource(t, pipeline.Env{}, o)

	cols, err := src.Columns(t.Context())
	if err != nil || !reflect.DeepEqual(cols, []string{"ma", "NgayCapNhat", "mahoso"}) {
		t.Fatalf("Columns() = %v, %v; want [ma NgayCapNhat mahoso]", cols, err)
	}
	rows, _ := readAll(t, src, nil)
	for name := range rows[0] {
		if !slices.Contains(cols, name) {
			t.Fatalf("rows carry %q, which Columns() = %v does not name", name, cols)
		}
	}
	mustExec(t, db, `ALTER TABLE ho_so RENAME COLUMN mahoso TO ma_ho_so`)
	cols, err = src.Columns(t.Context())
	if err != nil || !reflect.DeepEqual(cols, []string{"ma", "NgayCapNhat", "ma_ho_so"}) {
		t.Fatalf("after the rename Columns() = %v, %v; want [ma NgayCapNhat ma_ho_so]", cols, err)
	}
}

func TestSQLiteColumns(t *testing.T) {
	dir, db := sqliteTable(t, `CREATE TABLE items (id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL, TenCongDan TEXT)`)
	src := sqliteSource(t, dir, nil)
	cols, err := src.Columns(t.Context())
	if err != nil || !reflect.DeepEqual(cols, []string{"id", "updated_at", "TenCongDan"}) {
		t.Fatalf("Columns() = %v, %v", cols, err)
	}
	mustExec(t, db, `ALTER TABLE items ADD COLUMN so_dien_thoai TEXT`)
	cols, _ = src.Columns(t.Context())
	if !slices.Contains(cols, "so_dien_thoai") {
		t.Fatalf("Columns() = %v after a column was added", cols)
	}
}

// refetchFixture is one table of 1200 dossiers in one database, keyed by an
// integer, with a zone-less cursor.
type refetchFixture struct {
	src  *Source
	exec func(q string, args ...any)
}

func refetchFixtures(t *testing.T) map[string]func(t *testing.T) refetchFixture {
	return map[string]func(t *testing.T) refetchFixture{
		"postgres": func(t *testing.T) refetchFixture {
			dsn, _ := testpg.Schema(t)
			db := testpg.Open(t, dsn)
			mustExec(t, db, `CREATE TABLE ho_so (ma bigint PRIMARY KEY, ngay timestamp, ten text)`)
			mustExec(t, db, `INSERT INTO ho_so SELECT g, '2025-03-10 09:00', 'v1' FROM generate_series(1, 1200) g`)
			o := NewOptions()
			o.Driver, o.DSN, o.Table = "postgres", dsn, "ho_so"
			o.Cursor = CursorOptions{Column: "ngay", Key: "ma"}
			return refetchFixture{openSource(t, pipeline.Env{}, o), func(q string, args ...any) { mustExec(t, db, q, args...) }}
		},
		"sqlite": func(t *testing.T) refetchFixture {
			dir, db := sqliteTable(t,
				`CREATE TABLE ho_so (ma INTEGER PRIMARY KEY, ngay DATETIME, ten TEXT)`,
				`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
				 INSERT INTO ho_so SELECT i, '2025-03-10 09:00:00', 'v1' FROM n`)
			src := sqliteSource(t, dir, func(o *Options) { o.Table = "ho_so"; o.Cursor = CursorOptions{Column: "ngay", Key: "ma"} })
			sqliteQ := func(q string) string { return strings.NewReplacer("$1", "?", "$2", "?").Replace(q) }
			return refetchFixture{src, func(q string, args ...any) { mustExec(t, db, sqliteQ(q), args...) }}
		},
	}
}

// Refetch reads the current version of rows read earlier, from their keys as text
// (how quarantined rows are kept), in chunks, with the conversions of ReadBatch,
// rejecting rows that have become poison and leaving out rows that are gone.
func TestRefetchReadsCurrentRowsByKey(t *testing.T) {
	for name, open := range refetchFixtures(t) {
		t.Run(name, func(t *testing.T) {
			fx := open(t)
			before, _ := readAll(t, fx.src, nil)
			if len(before) != 1200 {
				t.Fatalf("read %d rows", len(before))
			}
			fx.exec(`UPDATE ho_so SET ten = 'v2', ngay = '2025-03-10 09:05:00' WHERE ma = 7`)
			fx.exec(`DELETE FROM ho_so WHERE ma = 8`)
			fx.exec(`UPDATE ho_so SET ngay = NULL WHERE ma = 9`)

			asked := make([]pipeline.Row, 0, len(before)+2)
			for _, r := range before {
				asked = append(asked, sourcetest.TextRow(r))
			}
			asked = append(asked, pipeline.Row{"ma": "not a number", "ten": "x"}, pipeline.Row{"ten": "no key"})
			var rec recorder
			if err := fx.src.Refetch(t.Context(), asked, &rec); err != nil {
				t.Fatalf("Refetch: %v", err)
			}
			if len(rec.rows) != 1198 {
				t.Fatalf("refetched %d rows, want 1198 (1200 less one deleted, one poison)", len(rec.rows))
			}
			assertReasons(t, rec.rejected, map[string]string{"9": `cursor column "ngay" is NULL (row with key ***)`})
			var seven pipeline.Row
			for _, r := range rec.rows {
				switch r["ma"] {
				case int64(7):
					seven = r
				case int64(8), int64(9):
					t.Fatalf("refetched %v", r)
				}
			}
			want := pipeline.Row{"ma": int64(7), "ngay": time.Date(2025, 3, 10, 2, 5, 0, 0, time.UTC), "ten": "v2"}
			if !reflect.DeepEqual(seven, want) {
				t.Fatalf("row 7 = %#v, want %#v (its current version, zone-less time read in the source zone)", seven, want)
			}
		})
	}
}

// A key bound as text must still match an integer key column; one bound as the
// column's own type needs no conversion by the database.
func TestKeyArgsBindAsTheKeyColumnsType(t *testing.T) {
	wall := time.Date(2025, 3, 10, 9, 0, 0, 0, ict)
	guid := "0F8FAD5B-D9CB-469F-A165-70867728950E"
	var u mssql.UniqueIdentifier
	if err := u.Scan(guid); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		driver string
		info   cursorInfo
		v      any
		want   []any
	}{
		{"postgres bigint from text", "postgres", cursorInfo{keyType: "INT8", keyInt: true}, " 42", []any{int64(42)}},
		{"postgres bigint from a number", "postgres", cursorInfo{keyType: "INT8", keyInt: true}, int32(42), []any{int64(42)}},
		{"postgres bigint from text that is no number", "postgres", cursorInfo{keyType: "INT8", keyInt: true}, "HS-1", nil},
		{"postgres text from a number", "postgres", cursorInfo{keyType: "TEXT"}, int64(42), []any{"42"}},
		{"postgres bytea from its text", "postgres", cursorInfo{keyType: "BYTEA", keyKind: kindBinary}, "\x01\x02", []any{[]byte{1, 2}}},
		{"sqlserver bigint from text", "sqlserver", cursorInfo{keyType: "BIGINT", keyInt: true}, "42", []any{int64(42)}},
		{"sqlserver varchar stays varchar", "sqlserver", cursorInfo{keyType: "VARCHAR"}, "HS-1", []any{mssql.VarChar("HS-1")}},
		{"sqlserver uniqueidentifier", "sqlserver", cursorInfo{keyType: "UNIQUEIDENTIFIER", keyKind: kindGUID}, guid, []any{u}},
		{"sqlserver uniqueidentifier that is not one", "sqlserver", cursorInfo{keyType: "UNIQUEIDENTIFIER", keyKind: kindGUID}, "HS-1", nil},
		{"sqlserver datetime2 key as wall clock", "sqlserver", cursorInfo{keyType: "DATETIME2", keyKind: kindLocalTime}, wall.UTC().Format(time.RFC3339Nano), []any{civil.DateTimeOf(wall)}},
		{"sqlite integer from text", "sqlite", cursorInfo{keyType: "INTEGER", keyInt: true}, "42", []any{int64(42)}},
		{"sqlite expression of no type: both forms", "sqlite", cursorInfo{}, "42", []any{"42", int64(42)}},
		{"sqlite expression of no type: text", "sqlite", cursorInfo{}, "HS-1", []any{"HS-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Source{d: dialects[tt.driver], opts: Options{Driver: tt.driver}, zone: ict}
			if got := s.keyArgs(tt.v, tt.info); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("keyArgs(%#v) = %#v, want %#v", tt.v, got, tt.want)
			}
		})
	}
}

// Mark and Before on PostgreSQL: the database's clock for a time cursor, the
// greatest value for an integer one; rows as emitted and as text.
func TestPostgresHorizon(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE TABLE ho_so (ma bigint PRIMARY KEY, phien bigint, ngay timestamp, ngay_tz timestamptz)`)
	var now time.Time
	if err := db.QueryRow(`SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	wall := func(d time.Duration) string { return now.Add(d).In(ict).Format("2006-01-02 15:04:05.999999") }
	open := func(cursor string) *Source {
		o := NewOptions()
		o.Driver, o.DSN, o.Table = "postgres", dsn, "ho_so"
		o.Cursor = CursorOptions{Column: cursor, Key: "ma"}
		o.Lag = config.Duration(0)
		return openSource(t, pipeline.Env{}, o)
	}

	t.Run("integer cursor on an empty table places nothing before the mark", func(t *testing.T) {
		src := open("phien")
		mark, err := src.Mark(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if src.Before(mark, pipeline.Row{"ma": int64(1), "phien": int64(-5)}) {
			t.Fatal("a row is before the mark of an empty table")
		}
	})

	mustExec(t, db, `INSERT INTO ho_so VALUES (1, 10, $1, $2), (2, 11, $3, $4), (4, NULL, NULL, NULL)`,
		wall(-time.Hour), now.Add(-time.Hour), wall(-time.Minute), now.Add(-time.Minute))
	later := map[string]any{"phien": int64(12), "ngay": now.Add(time.Hour).UTC(), "ngay_tz": now.Add(time.Hour).UTC()}
	for _, cursor := range []string{"phien", "ngay", "ngay_tz"} {
		t.Run(cursor, func(t *testing.T) {
			src := open(cursor)
			rec, _ := readRecorded(t, src, nil, 3)
			mark, err := src.Mark(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.rows) != 2 || len(rec.rejected) != 1 {
				t.Fatalf("read %v, rejected %d", rec.rows, len(rec.rejected))
			}
			after := pipeline.Row{"ma": int64(3), cursor: later[cursor]}
			for _, tt := range []struct {
				row  pipeline.Row
				want bool
			}{
				{rec.rows[0], true}, {rec.rows[1], true}, {after, false},
				{sourcetest.TextRow(rec.rows[1]), true}, {sourcetest.TextRow(after), false},
				{rec.rejected[0].row, false}, {sourcetest.TextRow(rec.rejected[0].row), false},
			} {
				if got := src.Before(mark, tt.row); got != tt.want {
					t.Errorf("Before(mark, %v) = %v, want %v", tt.row, got, tt.want)
				}
			}
		})
	}
}

// Rows the engine refetches or checks may come from a source that has since been
// opened again: Before works before anything was described.
func TestBeforeWithoutDescribe(t *testing.T) {
	s := &Source{opts: Options{Cursor: CursorOptions{Column: "NgayCapNhat", Key: "MaHoSo"}}}
	mark := []byte(`{"v":1,"mark":{"type":"time","value":"2025-03-10T02:00:00Z"}}`)
	at := time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		row  pipeline.Row
		want bool
	}{
		{pipeline.Row{"NgayCapNhat": at}, true},
		{pipeline.Row{"ngaycapnhat": at.Add(time.Second)}, false},
		{pipeline.Row{"NgayCapNhat": "2025-03-10T01:59:59Z"}, true},
		{pipeline.Row{"NgayCapNhat": "not a time"}, false},
		{pipeline.Row{"MaHoSo": "HS-1"}, false},
	}
	for _, tt := range tests {
		if got := s.Before(mark, tt.row); got != tt.want {
			t.Errorf("Before(%v) = %v, want %v", tt.row, got, tt.want)
		}
	}
	if s.Before([]byte("garbage"), pipeline.Row{"NgayCapNhat": at}) {
		t.Error("a damaged mark places a row before it")
	}
	rv := []byte(`{"v":1,"mark":{"type":"bytes","value":"00000000000007d1"}}`)
	s.opts.Cursor.Column = "PhienBan"
	if !s.Before(rv, pipeline.Row{"PhienBan": []byte{0, 0, 0, 0, 0, 0, 7, 0xd0}}) || s.Before(rv, pipeline.Row{"PhienBan": []byte{0, 0, 0, 0, 0, 0, 7, 0xd2}}) {
		t.Error("rowversions compare as 8-byte numbers")
	}
}

func TestSQLServerMarkQueryNeedsNoTable(t *testing.T) {
	if dbtsQuery != "SELECT @@DBTS" {
		t.Fatalf("rowversion mark query %q", dbtsQuery)
	}
}

// On SQLite an integer cursor's mark is the greatest integer: text in the column,
// which SQLite sorts after every number, does not hide it.
func TestSQLiteIntegerHorizonIgnoresText(t *testing.T) {
	dir, _ := sqliteTable(t,
		`CREATE TABLE items (id INTEGER PRIMARY KEY, phien INTEGER)`,
		`INSERT INTO items VALUES (1, 10), (2, 'abc'), (3, 11)`,
	)
	src := sqliteSource(t, dir, func(o *Options) { o.Cursor.Column = "phien" })
	mark, err := src.Mark(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !src.Before(mark, pipeline.Row{"phien": int64(11)}) || src.Before(mark, pipeline.Row{"phien": int64(12)}) || src.Before(mark, pipeline.Row{"phien": "abc"}) {
		t.Fatalf("mark %s: want 11 before it, 12 and text not", mark)
	}
}

// ReadUntil reads past the lag bound up to a mark, for every cursor kind the mark
// covers: the first sync's rows that moved past the reader while it ran.
func TestPostgresReadUntilReadsPastTheLagUpToTheMark(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	mustExec(t, db, `CREATE TABLE ho_so (ma bigint PRIMARY KEY, ngay timestamp NOT NULL, ngay_tz timestamptz NOT NULL)`)
	var now time.Time
	if err := db.QueryRow(`SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	wall := func(d time.Duration) string { return now.Add(d).In(ict).Format("2006-01-02 15:04:05.999999") }
	// 1: long committed; 2: touched seconds ago (inside the lag); 3: after the mark.
	mustExec(t, db, `INSERT INTO ho_so VALUES (1, $1, $2), (2, $3, $4)`, wall(-time.Hour), now.Add(-time.Hour), wall(-2*time.Second), now.Add(-2*time.Second))
	for _, cursor := range []string{"ngay", "ngay_tz"} {
		t.Run(cursor, func(t *testing.T) {
			o := NewOptions()
			o.Driver, o.DSN, o.Table = "postgres", dsn, "ho_so"
			o.Cursor = CursorOptions{Column: cursor, Key: "ma"}
			o.Lag = config.Duration(time.Minute)
			src := openSource(t, pipeline.Env{Zone: ict}, o)
			rec, pos := readRecorded(t, src, nil, 3)
			if len(rec.rows) != 1 {
				t.Fatalf("under the lag bound: %d rows, want only the old one", len(rec.rows))
			}
			mark, err := src.Mark(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, db, `INSERT INTO ho_so VALUES (3, $1, $2) ON CONFLICT DO NOTHING`, wall(time.Hour), now.Add(time.Hour))
			until := &recorder{}
			next, done, err := src.ReadUntil(t.Context(), pos, mark, until)
			if err != nil || !done {
				t.Fatalf("ReadUntil = %v, done %v", err, done)
			}
			if len(until.rows) != 1 || fmt.Sprint(until.rows[0]["ma"]) != "2" || next == nil {
				t.Fatalf("ReadUntil read %v; want row 2 only (row 3 is after the mark)", until.rows)
			}
		})
	}
}
