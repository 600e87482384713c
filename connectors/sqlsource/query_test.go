package sqlsource

import (
	"reflect"
	"testing"
	"time"

	"github.com/golang-sql/civil"
	mssql "github.com/microsoft/go-mssqldb"
)

func TestBatchQueryPerDialect(t *testing.T) {
	at := time.Date(2025, 3, 10, 8, 59, 0, 0, time.UTC)
	up := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	table := &Options{Table: "dbo.HoSo", Cursor: CursorOptions{Column: "NgayCapNhat", Key: "MaHoSo"}}
	cols := &Options{Table: "ho_so", Columns: []string{"ma", "ten"}, Cursor: CursorOptions{Column: "ngay", Key: "ma"}}
	query := &Options{Query: "SELECT * FROM v -- trailing comment\n;", Cursor: CursorOptions{Column: "c", Key: "k"}}

	tests := []struct {
		name   string
		driver string
		opts   *Options
		w      window
		limit  int
		sql    string
		args   []any
	}{
		{
			name: "postgres after with bound", driver: "postgres", opts: table,
			w:     window{afterCursor: at, afterKey: "HS-1", upper: up},
			limit: 1000,
			// PostgreSQL sorts NULL keys last within a cursor value: they are still ahead.
			sql:  `SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" >= $1 AND ("NgayCapNhat" > $2 OR "MaHoSo" > $3 OR "MaHoSo" IS NULL) AND "NgayCapNhat" <= $4 ORDER BY "NgayCapNhat", "MaHoSo" LIMIT $5`,
			args: []any{at, at, "HS-1", up, 1000},
		},
		{
			name: "sqlserver after with bound uses TOP", driver: "sqlserver", opts: table,
			w:     window{afterCursor: at, afterKey: "HS-1", upper: up},
			limit: 1000,
			sql:   `SELECT TOP (@p5) * FROM [dbo].[HoSo] WHERE [NgayCapNhat] >= @p1 AND ([NgayCapNhat] > @p2 OR [MaHoSo] > @p3) AND [NgayCapNhat] <= @p4 ORDER BY [NgayCapNhat], [MaHoSo]`,
			args:  []any{at, at, "HS-1", up, 1000},
		},
		{
			name: "sqlite after with bound", driver: "sqlite", opts: table,
			w:     window{afterCursor: "2025-03-10 08:59:00", afterKey: int64(7), upper: "2025-03-10 09:00:00"},
			limit: 50,
			sql:   `SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" >= ? AND ("NgayCapNhat" > ? OR "MaHoSo" > ?) AND "NgayCapNhat" <= ? ORDER BY "NgayCapNhat", "MaHoSo" LIMIT ?`,
			args:  []any{"2025-03-10 08:59:00", "2025-03-10 08:59:00", int64(7), "2025-03-10 09:00:00", 50},
		},
		{
			name: "postgres first batch reads up to the bound", driver: "postgres", opts: table,
			w: window{upper: up}, limit: 10,
			sql:  `SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" <= $1 ORDER BY "NgayCapNhat", "MaHoSo" LIMIT $2`,
			args: []any{up, 10},
		},
		{
			name: "sqlserver rowversion cursor stops below the oldest open transaction", driver: "sqlserver",
			opts:  &Options{Table: "dbo.HoSo", Cursor: CursorOptions{Column: "PhienBan", Key: "MaHoSo", Kind: CursorRowversion}},
			w:     window{afterCursor: []byte{0, 0, 0, 0, 0, 0, 0x07, 0xd1}, afterKey: "HS-1", belowActive: true},
			limit: 500,
			sql:   `SELECT TOP (@p4) * FROM [dbo].[HoSo] WHERE [PhienBan] >= @p1 AND ([PhienBan] > @p2 OR [MaHoSo] > @p3) AND [PhienBan] < MIN_ACTIVE_ROWVERSION() ORDER BY [PhienBan], [MaHoSo]`,
			args:  []any{[]byte{0, 0, 0, 0, 0, 0, 0x07, 0xd1}, []byte{0, 0, 0, 0, 0, 0, 0x07, 0xd1}, "HS-1", 500},
		},
		{
			name: "sqlserver rewound window is inclusive", driver: "sqlserver", opts: table,
			w: window{from: at, upper: up}, limit: 10,
			sql:  `SELECT TOP (@p3) * FROM [dbo].[HoSo] WHERE [NgayCapNhat] >= @p1 AND [NgayCapNhat] <= @p2 ORDER BY [NgayCapNhat], [MaHoSo]`,
			args: []any{at, up, 10},
		},
		{
			name: "sqlite rewound window", driver: "sqlite", opts: table,
			w: window{from: "2025-03-10 08:59:00", upper: "2025-03-10 09:00:00"}, limit: 10,
			sql:  `SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" >= ? AND "NgayCapNhat" <= ? ORDER BY "NgayCapNhat", "MaHoSo" LIMIT ?`,
			args: []any{"2025-03-10 08:59:00", "2025-03-10 09:00:00", 10},
		},
		{
			name: "non-time cursor without a bound skips NULLs", driver: "sqlserver", opts: table,
			w: window{}, limit: 10,
			sql:  `SELECT TOP (@p1) * FROM [dbo].[HoSo] WHERE [NgayCapNhat] IS NOT NULL ORDER BY [NgayCapNhat], [MaHoSo]`,
			args: []any{10},
		},
		{
			name: "postgres non-time cursor after a key", driver: "postgres", opts: table,
			w: window{afterCursor: int64(5), afterKey: int64(9)}, limit: 10,
			sql:  `SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" >= $1 AND ("NgayCapNhat" > $2 OR "MaHoSo" > $3 OR "MaHoSo" IS NULL) ORDER BY "NgayCapNhat", "MaHoSo" LIMIT $4`,
			args: []any{int64(5), int64(5), int64(9), 10},
		},
		{
			name: "postgres after a NULL key: it was the last row of its cursor value", driver: "postgres", opts: table,
			w: window{afterCursor: at, afterNullKey: true, upper: up}, limit: 10,
			sql:  `SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" > $1 AND "NgayCapNhat" <= $2 ORDER BY "NgayCapNhat", "MaHoSo" LIMIT $3`,
			args: []any{at, up, 10},
		},
		{
			name: "sqlite after a NULL key: the keys of its cursor value follow", driver: "sqlite", opts: table,
			w: window{afterCursor: "2025-03-10 08:59:00", afterNullKey: true, upper: "2025-03-10 09:00:00"}, limit: 10,
			sql:  `SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" >= ? AND ("NgayCapNhat" > ? OR "MaHoSo" IS NOT NULL) AND "NgayCapNhat" <= ? ORDER BY "NgayCapNhat", "MaHoSo" LIMIT ?`,
			args: []any{"2025-03-10 08:59:00", "2025-03-10 08:59:00", "2025-03-10 09:00:00", 10},
		},
		{
			name: "sqlserver after a NULL key", driver: "sqlserver", opts: table,
			w: window{afterCursor: at, afterNullKey: true, upper: up}, limit: 10,
			sql:  `SELECT TOP (@p4) * FROM [dbo].[HoSo] WHERE [NgayCapNhat] >= @p1 AND ([NgayCapNhat] > @p2 OR [MaHoSo] IS NOT NULL) AND [NgayCapNhat] <= @p3 ORDER BY [NgayCapNhat], [MaHoSo]`,
			args: []any{at, at, up, 10},
		},
		{
			name: "sqlite keyset reads only what SQLite itself reads as a time", driver: "sqlite", opts: table,
			w:     window{afterCursor: "2025-03-10 08:59:00", afterKey: int64(7), upper: "2025-03-10 09:00:00", readable: `typeof("NgayCapNhat") = 'text' AND datetime("NgayCapNhat") IS NOT NULL`},
			limit: 50,
			sql:   `SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" >= ? AND ("NgayCapNhat" > ? OR "MaHoSo" > ?) AND "NgayCapNhat" <= ? AND typeof("NgayCapNhat") = 'text' AND datetime("NgayCapNhat") IS NOT NULL ORDER BY "NgayCapNhat", "MaHoSo" LIMIT ?`,
			args:  []any{"2025-03-10 08:59:00", "2025-03-10 08:59:00", int64(7), "2025-03-10 09:00:00", 50},
		},
		{
			name: "listed columns gain the cursor but not a listed key", driver: "sqlserver", opts: cols,
			w: window{upper: up}, limit: 10,
			sql:  `SELECT TOP (@p2) [ma], [ten], [ngay] FROM [ho_so] WHERE [ngay] <= @p1 ORDER BY [ngay], [ma]`,
			args: []any{up, 10},
		},
		{
			name: "custom query is a derived table", driver: "postgres", opts: query,
			w: window{upper: up}, limit: 10,
			sql:  "SELECT * FROM (\nSELECT * FROM v -- trailing comment\n) AS \"src\" WHERE \"c\" <= $1 ORDER BY \"c\", \"k\" LIMIT $2",
			args: []any{up, 10},
		},
		{
			name: "custom query on sqlserver", driver: "sqlserver", opts: query,
			w: window{upper: up}, limit: 10,
			sql:  "SELECT TOP (@p2) * FROM (\nSELECT * FROM v -- trailing comment\n) AS [src] WHERE [c] <= @p1 ORDER BY [c], [k]",
			args: []any{up, 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newQueries(dialects[tt.driver], tt.opts).batch(tt.w, tt.limit)
			if got.SQL != tt.sql {
				t.Errorf("SQL\n got  %s\n want %s", got.SQL, tt.sql)
			}
			if !reflect.DeepEqual(got.Args, tt.args) {
				t.Errorf("args\n got  %#v\n want %#v", got.Args, tt.args)
			}
		})
	}
}

func TestUnreadableCursorSweepPerDialect(t *testing.T) {
	table := &Options{Table: "dbo.HoSo", Cursor: CursorOptions{Column: "NgayCapNhat", Key: "MaHoSo"}}
	timeCol := column{name: "NgayCapNhat", kind: kindTextTime}
	tests := []struct {
		name, driver string
		readable     string
		after        any
		sql          string
		args         []any
	}{
		{"postgres from the first", "postgres", "", nil,
			`SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" IS NULL AND "MaHoSo" IS NOT NULL ORDER BY "MaHoSo" LIMIT $1`, []any{7}},
		{"postgres after a key", "postgres", "", "HS-9",
			`SELECT * FROM "dbo"."HoSo" WHERE "NgayCapNhat" IS NULL AND "MaHoSo" > $1 ORDER BY "MaHoSo" LIMIT $2`, []any{"HS-9", 7}},
		{"sqlserver after a key", "sqlserver", "", "HS-9",
			`SELECT TOP (@p2) * FROM [dbo].[HoSo] WHERE [NgayCapNhat] IS NULL AND [MaHoSo] > @p1 ORDER BY [MaHoSo]`, []any{"HS-9", 7}},
		{"sqlite time cursor: NULL or not a time to SQLite", "sqlite", dialects["sqlite"].readable(`"NgayCapNhat"`, timeCol), int64(3),
			`SELECT * FROM "dbo"."HoSo" WHERE ("NgayCapNhat" IS NULL OR NOT (typeof("NgayCapNhat") = 'text' AND datetime("NgayCapNhat") IS NOT NULL)) AND "MaHoSo" > ? ORDER BY "MaHoSo" LIMIT ?`, []any{int64(3), 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newQueries(dialects[tt.driver], table).unreadable(tt.readable, tt.after, 7)
			if got.SQL != tt.sql || !reflect.DeepEqual(got.Args, tt.args) {
				t.Fatalf("got  %s %#v\nwant %s %#v", got.SQL, got.Args, tt.sql, tt.args)
			}
		})
	}
}

func TestRefetchAndMarkQueriesPerDialect(t *testing.T) {
	o := &Options{Table: "dbo.HoSo", Cursor: CursorOptions{Column: "NgayCapNhat", Key: "MaHoSo"}}
	tests := []struct{ driver, byKeys, max string }{
		{"postgres", `SELECT * FROM "dbo"."HoSo" WHERE "MaHoSo" IN ($1, $2) ORDER BY "NgayCapNhat", "MaHoSo"`, `SELECT MAX("NgayCapNhat") FROM "dbo"."HoSo"`},
		{"sqlserver", `SELECT * FROM [dbo].[HoSo] WHERE [MaHoSo] IN (@p1, @p2) ORDER BY [NgayCapNhat], [MaHoSo]`, `SELECT MAX([NgayCapNhat]) FROM [dbo].[HoSo]`},
		{"sqlite", `SELECT * FROM "dbo"."HoSo" WHERE "MaHoSo" IN (?, ?) ORDER BY "NgayCapNhat", "MaHoSo"`, `SELECT MAX("NgayCapNhat") FROM "dbo"."HoSo"`},
	}
	for _, tt := range tests {
		q := newQueries(dialects[tt.driver], o)
		if got := q.byKeys([]any{int64(1), int64(2)}); got.SQL != tt.byKeys || len(got.Args) != 2 {
			t.Errorf("%s byKeys = %s %v, want %s", tt.driver, got.SQL, got.Args, tt.byKeys)
		}
		if got := q.maxCursor(""); got.SQL != tt.max {
			t.Errorf("%s maxCursor = %s, want %s", tt.driver, got.SQL, tt.max)
		}
	}
	// SQLite: text in an integer column is greater than every number.
	q := newQueries(dialects["sqlite"], o)
	if got, want := q.maxCursor(`typeof("NgayCapNhat") = 'integer'`).SQL, `SELECT MAX("NgayCapNhat") FROM "dbo"."HoSo" WHERE typeof("NgayCapNhat") = 'integer'`; got != want {
		t.Errorf("sqlite maxCursor = %s, want %s", got, want)
	}
}

func TestReadableCursorValuesPerDialect(t *testing.T) {
	tests := []struct {
		driver string
		c      column
		want   string
	}{
		{"sqlite", column{kind: kindTextTime}, `typeof("c") = 'text' AND datetime("c") IS NOT NULL`},
		{"sqlite", column{kind: kindText, integer: true}, `typeof("c") = 'integer'`},
		{"sqlite", column{kind: kindText}, ""},
		{"postgres", column{kind: kindLocalTime}, ""},
		{"sqlserver", column{kind: kindText, integer: true}, ""},
	}
	for _, tt := range tests {
		if got := dialects[tt.driver].readable(`"c"`, tt.c); got != tt.want {
			t.Errorf("%s readable(%+v) = %q, want %q", tt.driver, tt.c, got, tt.want)
		}
	}
}

func TestDialectNullOrderAndIntegerTypes(t *testing.T) {
	if dialects["postgres"].nullsFirst() || !dialects["sqlite"].nullsFirst() || !dialects["sqlserver"].nullsFirst() {
		t.Fatal("NULLs sort last ascending on PostgreSQL only")
	}
	tests := []struct {
		driver, dbType string
		want           bool
	}{
		{"postgres", "INT8", true}, {"postgres", "INT4", true}, {"postgres", "NUMERIC", false}, {"postgres", "TIMESTAMP", false},
		{"sqlserver", "BIGINT", true}, {"sqlserver", "INT", true}, {"sqlserver", "DECIMAL", false}, {"sqlserver", "BINARY", false},
		{"sqlite", "INTEGER", true}, {"sqlite", "BIGINT", true}, {"sqlite", "DATETIME", false}, {"sqlite", "", false},
	}
	for _, tt := range tests {
		if got := dialects[tt.driver].isInteger(tt.dbType); got != tt.want {
			t.Errorf("%s isInteger(%q) = %v, want %v", tt.driver, tt.dbType, got, tt.want)
		}
	}
}

func TestDescribeQueryReturnsNoRows(t *testing.T) {
	o := &Options{Table: "public.ho_so", Columns: []string{"ten"}, Cursor: CursorOptions{Column: "ngay", Key: "ma"}}
	got := newQueries(dialects["postgres"], o).describe()
	want := `SELECT "ten", "ngay", "ma" FROM "public"."ho_so" WHERE 1 = 0`
	if got.SQL != want || len(got.Args) != 0 {
		t.Fatalf("got %q %v, want %q and no args", got.SQL, got.Args, want)
	}
}

func TestQuoteEscapesTheClosingCharacter(t *testing.T) {
	tests := []struct{ driver, in, want string }{
		{"postgres", "HoSo", `"HoSo"`},
		{"postgres", `a"b`, `"a""b"`},
		{"sqlite", `a"b`, `"a""b"`},
		{"sqlserver", "HoSo", "[HoSo]"},
		{"sqlserver", "a]b", "[a]]b]"},
		{"sqlserver", "Ngày_Cập_Nhật", "[Ngày_Cập_Nhật]"},
	}
	for _, tt := range tests {
		if got := dialects[tt.driver].quote(tt.in); got != tt.want {
			t.Errorf("%s quote(%q) = %s, want %s", tt.driver, tt.in, got, tt.want)
		}
	}
}

func TestNowQueryPerDialect(t *testing.T) {
	tests := map[string]string{
		"postgres":  "SELECT now()",
		"sqlserver": "SELECT SYSDATETIMEOFFSET()",
		"sqlite":    "", // the daemon's clock: same machine
	}
	for driver, want := range tests {
		if got := dialects[driver].nowQuery(); got != want {
			t.Errorf("%s nowQuery() = %q, want %q", driver, got, want)
		}
	}
}

// The upper bound is now - lag in the source zone; each dialect must bind it so
// that zone-less columns compare by wall clock and zone-aware ones by instant.
func TestBindPerDialectAndColumnType(t *testing.T) {
	ict := time.FixedZone("ICT", 7*3600)
	bound := time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC).In(ict) // 09:00 wall clock
	raw := time.Date(2025, 3, 10, 8, 59, 0, 3_000_000, time.UTC)  // as a driver returns a zone-less value

	tests := []struct {
		name   string
		driver string
		v      any
		dbType string
		want   any
	}{
		{"postgres passes times with their offset", "postgres", bound, "TIMESTAMP", bound},
		{"postgres timestamptz", "postgres", bound, "TIMESTAMPTZ", bound},
		{"sqlserver datetime2 as wall clock", "sqlserver", bound, "DATETIME2", civil.DateTime{Date: civil.Date{Year: 2025, Month: 3, Day: 10}, Time: civil.Time{Hour: 9}}},
		{"sqlserver date as wall clock", "sqlserver", bound, "DATE", civil.DateTime{Date: civil.Date{Year: 2025, Month: 3, Day: 10}, Time: civil.Time{Hour: 9}}},
		{"sqlserver datetime keeps its type", "sqlserver", raw, "DATETIME", mssql.DateTime1(raw)},
		{"sqlserver smalldatetime", "sqlserver", raw, "SMALLDATETIME", mssql.DateTime1(raw)},
		{"sqlserver datetimeoffset is an instant", "sqlserver", bound, "DATETIMEOFFSET", bound},
		{"sqlserver varchar key", "sqlserver", "HS-1", "VARCHAR", mssql.VarChar("HS-1")},
		{"sqlserver nvarchar key", "sqlserver", "HS-1", "NVARCHAR", "HS-1"},
		{"sqlserver rowversion bytes", "sqlserver", []byte{0, 0, 0, 0, 0, 0, 7, 209}, "BINARY", []byte{0, 0, 0, 0, 0, 0, 7, 209}},
		{"sqlite time as sortable text", "sqlite", bound, "DATETIME", "2025-03-10 09:00:00"},
		{"sqlite fraction only when non-zero", "sqlite", raw, "DATETIME", "2025-03-10 08:59:00.003"},
		{"sqlite integer key", "sqlite", int64(7), "INTEGER", int64(7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dialects[tt.driver].bind(tt.v, tt.dbType)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("bind = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestPlaceholders(t *testing.T) {
	tests := []struct {
		driver string
		n      int
		want   string
	}{
		{"postgres", 1, "$1"}, {"postgres", 12, "$12"},
		{"sqlserver", 1, "@p1"}, {"sqlserver", 12, "@p12"},
		{"sqlite", 1, "?"}, {"sqlite", 12, "?"},
	}
	for _, tt := range tests {
		if got := dialects[tt.driver].placeholder(tt.n); got != tt.want {
			t.Errorf("%s placeholder(%d) = %q, want %q", tt.driver, tt.n, got, tt.want)
		}
	}
}
