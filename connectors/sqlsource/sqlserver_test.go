package sqlsource

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/sourcetest"
)

// mssqlDSN returns the SQL Server to test against, or skips: there is no SQL
// Server in the default test environment.
func mssqlDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("EGOV_TEST_MSSQL")
	if dsn == "" {
		t.Skip("EGOV_TEST_MSSQL is not set: give it a SQL Server DSN (e.g. sqlserver://sa:Passw0rd!@127.0.0.1:1433?database=tempdb) to run the SQL Server tests")
	}
	return dsn
}

// mssqlTable creates a uniquely named table from ddl (with %s for the name) and
// drops it when the test ends.
func mssqlTable(t testing.TB, dsn, ddl string) (string, *sql.DB) {
	t.Helper()
	db, err := sql.Open("sqlserver", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "egt_" + hex.EncodeToString(b[:])
	mustExec(t, db, strings.ReplaceAll(ddl, "%s", name))
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE dbo." + name) })
	return "dbo." + name, db
}

func TestConformanceSQLServer(t *testing.T) {
	dsn := mssqlDSN(t)
	sourcetest.Run(t, sourcetest.Harness{Open: func(t *testing.T, s sourcetest.Settings) sourcetest.Fixture {
		// Nullable key and cursor for PutRaw; a filtered index keeps id unique among
		// its non-NULL values (a UNIQUE constraint would allow one NULL only).
		table, db := mssqlTable(t, dsn, `CREATE TABLE dbo.%s (id bigint NULL, updated_at datetime2(3) NULL, payload nvarchar(200) NOT NULL);
			CREATE UNIQUE INDEX ux_id ON dbo.%s (id) WHERE id IS NOT NULL`)
		src := openSource(t, pipeline.Env{}, suiteOptions("sqlserver", dsn, table, s))
		src.now = func(context.Context) (time.Time, error) { return s.Clock(), nil }
		return sourcetest.Fixture{Source: src, Put: func(t *testing.T, items ...sourcetest.Item) {
			putAll(t, db, `UPDATE `+table+` SET updated_at = @p2, payload = @p3 WHERE id = @p1;
				IF @@ROWCOUNT = 0 INSERT INTO `+table+` (id, updated_at, payload) VALUES (@p1, @p2, @p3)`,
				func(it sourcetest.Item) []any {
					return []any{it.ID, it.UpdatedAt.In(ict).Format("2006-01-02T15:04:05.000"), it.Payload}
				}, items)
		}, PutRaw: func(t *testing.T, rows ...sourcetest.Raw) {
			putAll(t, db, `INSERT INTO `+table+` (id, updated_at, payload) VALUES (@p1, @p2, @p3)`, rawArgs("2006-01-02T15:04:05.000"), rows)
		}}
	}})
}

// A dossier table as one-stop-shop systems keep it: datetime2 in local time, a
// varchar key, no rowversion. Rows are synced against SQL Server's own clock, and
// rows sharing a legacy datetime value across batch boundaries are each read once.
func TestSQLServerSyncsDatetime2Table(t *testing.T) {
	dsn := mssqlDSN(t)
	table, db := mssqlTable(t, dsn, `CREATE TABLE dbo.%s (
		MaHoSo varchar(20) NOT NULL PRIMARY KEY,
		NgayCapNhat datetime2(7) NOT NULL,
		NgayNhan datetime NOT NULL,
		TrangThai int NOT NULL,
		GhiChu nvarchar(100) NULL)`)
	var now time.Time
	if err := db.QueryRow(`SELECT SYSDATETIMEOFFSET()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	wall := func(d time.Duration) string { return now.Add(d).In(ict).Format("2006-01-02T15:04:05.0000000") }
	received := now.Add(-3 * time.Hour).In(ict).Format("2006-01-02T15:04:05.003") // one datetime value for all
	for i, r := range []struct {
		key string
		age time.Duration
	}{
		{"HS-001", 2 * time.Hour}, {"HS-002", 2 * time.Hour}, {"HS-003", 90 * time.Minute},
		{"HS-004", 80 * time.Minute}, {"HS-005", 70 * time.Minute},
		{"HS-006", 10 * time.Minute}, // inside the 1h lag: not yet
	} {
		mustExec(t, db, `INSERT INTO `+table+` VALUES (@p1, @p2, @p3, @p4, @p5)`, r.key, wall(-r.age), received, i, "ghi chú tiếng Việt")
	}

	t.Run("datetime2 cursor against the database clock", func(t *testing.T) {
		o := NewOptions()
		o.Driver, o.DSN, o.Table = "sqlserver", dsn, table
		o.Cursor = CursorOptions{Column: "NgayCapNhat", Key: "MaHoSo"}
		o.Lag = config.Duration(time.Hour)
		o.BatchSize = 2
		rows, pos := readAll(t, openSource(t, pipeline.Env{}, o), nil)
		if got := ids(rows, "MaHoSo"); !reflect.DeepEqual(got, []any{"HS-001", "HS-002", "HS-003", "HS-004", "HS-005"}) {
			t.Fatalf("read %v, want HS-001..HS-005", got)
		}
		first := rows[0]["NgayCapNhat"].(time.Time)
		if want := now.Add(-2 * time.Hour); first.Location() != time.UTC || first.Sub(want).Abs() > time.Microsecond {
			t.Fatalf("NgayCapNhat = %v, want %v in UTC", first, want.UTC())
		}
		if rows[0]["GhiChu"] != "ghi chú tiếng Việt" {
			t.Fatalf("GhiChu = %#v", rows[0]["GhiChu"])
		}
		src := openSource(t, pipeline.Env{}, o)
		if more, _ := readAll(t, src, pos); len(more) != 0 {
			t.Fatalf("resume read %d rows, want none", len(more))
		}
	})

	t.Run("datetime cursor with ties across batches", func(t *testing.T) {
		o := NewOptions()
		o.Driver, o.DSN, o.Table = "sqlserver", dsn, table
		o.Cursor = CursorOptions{Column: "NgayNhan", Key: "MaHoSo"}
		o.BatchSize = 2
		rows, _ := readAll(t, openSource(t, pipeline.Env{}, o), nil)
		if len(rows) != 6 {
			t.Fatalf("read %d rows sharing one datetime value, want 6", len(rows))
		}
	})
}

// A rowversion cursor: rows are read in rowversion order, only below
// MIN_ACTIVE_ROWVERSION(), and an update moves a row to the end.
func TestSQLServerRowversionCursor(t *testing.T) {
	dsn := mssqlDSN(t)
	table, db := mssqlTable(t, dsn, `CREATE TABLE dbo.%s (
		MaHoSo varchar(20) NOT NULL PRIMARY KEY,
		TrangThai int NOT NULL,
		PhienBan rowversion)`)
	for i, key := range []string{"HS-001", "HS-002", "HS-003"} {
		mustExec(t, db, `INSERT INTO `+table+` (MaHoSo, TrangThai) VALUES (@p1, @p2)`, key, i)
	}
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "sqlserver", dsn, table
	o.Cursor = CursorOptions{Column: "PhienBan", Key: "MaHoSo", Kind: CursorRowversion}
	o.BatchSize = 2
	rows, pos := readAll(t, openSource(t, pipeline.Env{}, o), nil)
	if got := ids(rows, "MaHoSo"); !reflect.DeepEqual(got, []any{"HS-001", "HS-002", "HS-003"}) {
		t.Fatalf("read %v, want HS-001..HS-003", got)
	}
	mustExec(t, db, `UPDATE `+table+` SET TrangThai = 9 WHERE MaHoSo = 'HS-001'`)
	more, _ := readAll(t, openSource(t, pipeline.Env{}, o), pos)
	if got := ids(more, "MaHoSo"); !reflect.DeepEqual(got, []any{"HS-001"}) {
		t.Fatalf("after an update read %v, want HS-001 again", got)
	}
}

// The mark of a rowversion cursor is @@DBTS: a row updated after it is not before
// it. Refetch binds a varchar key as varchar.
func TestSQLServerRowversionHorizonAndRefetch(t *testing.T) {
	dsn := mssqlDSN(t)
	table, db := mssqlTable(t, dsn, `CREATE TABLE dbo.%s (
		MaHoSo varchar(20) NOT NULL PRIMARY KEY,
		TrangThai int NOT NULL,
		PhienBan rowversion)`)
	mustExec(t, db, `INSERT INTO `+table+` (MaHoSo, TrangThai) VALUES ('HS-001', 1), ('HS-002', 2)`)
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "sqlserver", dsn, table
	o.Cursor = CursorOptions{Column: "PhienBan", Key: "MaHoSo", Kind: CursorRowversion}
	src := openSource(t, pipeline.Env{}, o)
	first, pos := readRecorded(t, src, nil, 3)
	mark, err := src.Mark(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `UPDATE `+table+` SET TrangThai = 9 WHERE MaHoSo = 'HS-001'`)
	again, _ := readRecorded(t, src, pos, 3)
	if len(first.rows) != 2 || len(again.rows) != 1 {
		t.Fatalf("read %d then %d rows, want 2 then 1", len(first.rows), len(again.rows))
	}
	if !src.Before(mark, first.rows[1]) || src.Before(mark, again.rows[0]) {
		t.Fatal("a row read before the mark must be before it, one updated after it not")
	}

	var rec recorder
	if err := src.Refetch(t.Context(), []pipeline.Row{{"MaHoSo": "HS-002"}, {"MaHoSo": "HS-001"}, {"MaHoSo": "HS-404"}}, &rec); err != nil {
		t.Fatal(err)
	}
	got := map[any]any{}
	for _, r := range rec.rows {
		got[r["MaHoSo"]] = r["TrangThai"]
	}
	if !reflect.DeepEqual(got, map[any]any{"HS-001": int64(9), "HS-002": int64(2)}) {
		t.Fatalf("refetched %v", got)
	}
}
