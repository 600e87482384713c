package sqlsource

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/egov-bridge/egov-bridge/internal/testmysql"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/sourcetest"
)

func TestConformanceMySQLDatetime(t *testing.T) {
	sourcetest.Run(t, mysqlHarness("datetime(3)"))
}

func TestConformanceMySQLTimestamp(t *testing.T) {
	sourcetest.Run(t, mysqlHarness("timestamp(3)"))
}

// mysqlHarness runs the suite on a fresh MariaDB/MySQL database per case. A
// DATETIME column is written as wall-clock text in the source zone, a TIMESTAMP
// column as UTC text in a UTC session (the instant), so the source's zone handling
// is what the suite's UTC times check. The database clock cannot be moved, so the
// source's now is the suite's clock; the real clock is covered by
// TestMySQLZonesAndLag.
func mysqlHarness(colType string) sourcetest.Harness {
	return sourcetest.Harness{Open: func(t *testing.T, s sourcetest.Settings) sourcetest.Fixture {
		dsn, _ := testmysql.Database(t)
		db := testmysql.Open(t, dsn)
		// Nullable key and cursor, so that PutRaw can write poison rows.
		mustExec(t, db, "CREATE TABLE items (id bigint UNIQUE, updated_at "+colType+" NULL DEFAULT NULL, payload text NOT NULL, INDEX (updated_at, id))")
		o := suiteOptions("mysql", dsn, "items", s)
		src := openSource(t, pipeline.Env{}, o)
		src.now = func(context.Context) (time.Time, error) { return s.Clock(), nil }
		zone := ict
		if strings.HasPrefix(colType, "timestamp") {
			zone = time.UTC
		}
		const layout = "2006-01-02 15:04:05.000"
		return sourcetest.Fixture{Source: src, Put: func(t *testing.T, items ...sourcetest.Item) {
			putAll(t, db, `INSERT INTO items (id, updated_at, payload) VALUES (?, ?, ?)
				ON DUPLICATE KEY UPDATE updated_at = VALUES(updated_at), payload = VALUES(payload)`,
				func(it sourcetest.Item) []any {
					return []any{it.ID, it.UpdatedAt.In(zone).Format(layout), it.Payload}
				}, items)
		}, PutRaw: func(t *testing.T, rows ...sourcetest.Raw) {
			putAll(t, db, `INSERT INTO items (id, updated_at, payload) VALUES (?, ?, ?)`, func(r sourcetest.Raw) []any {
				var id, at any
				if r.ID != nil {
					id = *r.ID
				}
				if r.UpdatedAt != nil {
					at = r.UpdatedAt.In(zone).Format(layout)
				}
				return []any{id, at, r.Payload}
			}, rows)
		}}
	}}
}

// DATETIME holds a wall clock, read in the source's zone; TIMESTAMP holds an
// instant. Whatever the server's, the session's or the DSN's zone settings, both
// arrive as the right instant in UTC, and the lag is measured from the database's
// UTC clock.
func TestMySQLZonesAndLag(t *testing.T) {
	dsn, _ := testmysql.Database(t)
	db := testmysql.Open(t, dsn) // a UTC session
	mustExec(t, db, "CREATE TABLE ho_so (ma bigint PRIMARY KEY, ngay datetime(6) NOT NULL, ngay_ts timestamp(6) NOT NULL, ngay_date date NOT NULL)")
	var now time.Time
	if err := db.QueryRow(`SELECT UTC_TIMESTAMP(6)`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	wall := func(d time.Duration) string { return now.Add(d).In(ict).Format("2006-01-02 15:04:05.999999") }
	utc := func(d time.Duration) string { return now.Add(d).UTC().Format("2006-01-02 15:04:05.999999") }
	mustExec(t, db, `INSERT INTO ho_so VALUES (1, ?, ?, '2026-08-11'), (2, ?, ?, '2026-08-11'), (3, ?, ?, '2026-08-11')`,
		wall(-2*time.Hour), utc(-2*time.Hour), // old enough
		wall(-50*time.Minute), utc(-50*time.Minute), // inside the 1h lag
		wall(time.Minute), utc(time.Minute)) // a clock slightly ahead

	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	// Settings a user might leave in the DSN; the source overrides them.
	cfg.Loc, _ = time.LoadLocation("America/New_York")
	cfg.ParseTime = false
	cfg.Params = map[string]string{"time_zone": "'+09:00'"}
	for _, column := range []string{"ngay", "ngay_ts"} {
		t.Run(column, func(t *testing.T) {
			o := NewOptions()
			o.Driver, o.Table, o.DSN = "mysql", "ho_so", cfg.FormatDSN()
			o.Cursor = CursorOptions{Column: column, Key: "ma"}
			o.Lag = config.Duration(time.Hour)
			src := openSource(t, pipeline.Env{}, o)
			rows, _ := readAll(t, src, nil)
			if got := ids(rows, "ma"); !reflect.DeepEqual(got, []any{int64(1)}) {
				t.Fatalf("read keys %v, want only [1]: rows newer than the database's now - 1h must wait", got)
			}
			want := now.Add(-2 * time.Hour).Truncate(time.Microsecond)
			for _, c := range []string{"ngay", "ngay_ts"} {
				if got, ok := rows[0][c].(time.Time); !ok || !got.Equal(want) || got.Location() != time.UTC {
					t.Errorf("%s = %v, want %v in UTC", c, rows[0][c], want.UTC())
				}
			}
			// A DATE is midnight in the source zone.
			if got, want := rows[0]["ngay_date"], time.Date(2026, 8, 10, 17, 0, 0, 0, time.UTC); got != want {
				t.Errorf("ngay_date = %v, want %v", got, want)
			}
		})
	}
}

// Values arrive as a mapping reads them, and MySQL's identifiers are quoted with
// backticks, so a column named like a keyword reads.
func TestMySQLValuesAndQuoting(t *testing.T) {
	dsn, _ := testmysql.Database(t)
	db := testmysql.Open(t, dsn)
	mustExec(t, db, "CREATE TABLE `order` (`key` varchar(20) PRIMARY KEY, `group` int unsigned, ngay datetime NOT NULL, "+
		"so_tien decimal(12,2), anh blob, ghi_chu text, gio time, co tinyint(1))")
	mustExec(t, db, "INSERT INTO `order` VALUES ('HS-01', 7, '2026-11-01 08:00:00', 1250000.50, x'00ff', 'Nguyễn Thị Ánh', '07:30:00', 1)")
	o := NewOptions()
	o.Driver, o.Table, o.DSN = "mysql", "order", dsn
	o.Cursor = CursorOptions{Column: "ngay", Key: "key"}
	src := openSource(t, pipeline.Env{}, o)
	src.now = func(context.Context) (time.Time, error) { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), nil }
	rows, _ := readAll(t, src, nil)
	if len(rows) != 1 {
		t.Fatalf("read %d rows, want 1", len(rows))
	}
	r := rows[0]
	want := pipeline.Row{
		"key": "HS-01", "group": int64(7), "ngay": time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC),
		"so_tien": "1250000.50", "anh": []byte{0, 0xff}, "ghi_chu": "Nguyễn Thị Ánh", "gio": "07:30:00", "co": int64(1),
	}
	for k, w := range want {
		if !reflect.DeepEqual(r[k], w) {
			t.Errorf("%s = %#v (%T), want %#v", k, r[k], r[k], w)
		}
	}
	cols, err := src.Columns(t.Context())
	if err != nil || len(cols) != 8 {
		t.Fatalf("Columns = %v, %v", cols, err)
	}
}

func TestMySQLDSN(t *testing.T) {
	tests := []struct {
		in, wantAddr, wantDB, wantUser, wantPass string
	}{
		{"reader:s3cret!@tcp(10.0.0.5:3306)/motcua", "10.0.0.5:3306", "motcua", "reader", "s3cret!"},
		{"mysql://reader:s3cr%21t@db.local/motcua?charset=utf8mb4", "db.local:3306", "motcua", "reader", "s3cr!t"},
		{"mysql://reader@db.local:3307/motcua", "db.local:3307", "motcua", "reader", ""},
		{"root@tcp(127.0.0.1:3306)/test?loc=Asia%2FTokyo&parseTime=false&time_zone=%27%2B09%3A00%27", "127.0.0.1:3306", "test", "root", ""},
	}
	for _, tt := range tests {
		dsn, pass, err := mysqlDSN(tt.in)
		if err != nil {
			t.Errorf("mysqlDSN(%q): %v", tt.in, err)
			continue
		}
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatalf("%q gave %q, which does not parse: %v", tt.in, dsn, err)
		}
		if cfg.Addr != tt.wantAddr || cfg.DBName != tt.wantDB || cfg.User != tt.wantUser || cfg.Passwd != tt.wantPass || pass != tt.wantPass {
			t.Errorf("mysqlDSN(%q) = %s:%s@%s/%s (password %q)", tt.in, cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName, pass)
		}
		if !cfg.ParseTime || cfg.Loc != time.UTC || cfg.Params["time_zone"] != "'+00:00'" {
			t.Errorf("mysqlDSN(%q) does not force parseTime, loc=UTC and time_zone +00:00: %s", tt.in, dsn)
		}
	}
	for _, bad := range []string{"reader:hunter22@10.0.0.5/motcua", "mysql://reader:hunter22@[::1/motcua"} {
		_, _, err := mysqlDSN(bad)
		if err == nil {
			t.Errorf("mysqlDSN(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "hunter22") {
			t.Errorf("mysqlDSN(%q) error leaks the password: %v", bad, err)
		}
	}
}

// The password never reaches an error, in the driver's DSN form (which the generic
// redactor cannot parse) or as a URL.
func TestMySQLErrorsDoNotLeakThePassword(t *testing.T) {
	for _, dsn := range []string{
		"reader:Hunter2Pass@tcp(127.0.0.1:1)/motcua?timeout=1s",
		"mysql://reader:Hunter2Pass@127.0.0.1:1/motcua?timeout=1s",
	} {
		o := NewOptions()
		o.Driver, o.Table, o.DSN = "mysql", "ho_so", dsn
		o.Cursor = CursorOptions{Column: "ngay", Key: "ma"}
		src := openSource(t, pipeline.Env{Name: "motcua"}, o)
		_, _, err := src.ReadBatch(t.Context(), nil, pipeline.EmitFunc(func(pipeline.Row) error { return nil }))
		if err == nil {
			t.Fatal("read from a closed port succeeded")
		}
		if strings.Contains(err.Error(), "Hunter2Pass") {
			t.Fatalf("error leaks the password: %v", err)
		}
		r := src.red.Text(fmt.Sprintf("dial %s failed with Hunter2Pass", dsn))
		if strings.Contains(r, "Hunter2Pass") {
			t.Fatalf("redactor leaves the password in %q", r)
		}
	}
}
