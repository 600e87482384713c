package sqlsource

import (
	"strconv"
	"strings"
	"time"

	"github.com/golang-sql/civil"
	mssql "github.com/microsoft/go-mssqldb"
)

// colKind says how a column's values are emitted and how cursor values taken from
// it are bound back into a query.
type colKind int

const (
	kindText      colKind = iota // []byte is text (numeric, json, ...): emitted as string
	kindBinary                   // []byte is data (bytea, varbinary, blob): kept as []byte
	kindLocalTime                // zone-less timestamp holding wall-clock time in the source zone
	kindAwareTime                // timestamp with a zone: an instant
	kindTextTime                 // SQLite DATETIME text: wall clock unless the text carried an offset
	kindTimeOfDay                // TIME: a time of day, emitted as "15:04:05.999999999"
	kindGUID                     // SQL Server uniqueidentifier: emitted in its canonical string form
)

// isTime reports whether a cursor of this kind is a point in time, which is what the
// lag bound and the lookback window need.
func (k colKind) isTime() bool {
	return k == kindLocalTime || k == kindAwareTime || k == kindTextTime
}

// dialect is what differs between the three databases: identifier quoting, parameter
// placeholders, how a batch is bounded, where "now" comes from, and how Go values
// must be bound so that they compare exactly with the column they came from.
type dialect interface {
	// driverName is the database/sql driver.
	driverName() string
	// quote quotes one identifier part.
	quote(ident string) string
	// placeholder is the text for the n-th bound argument, counting from 1.
	placeholder(n int) string
	// limit returns the text that bounds a batch to the rows bound at ph: top goes
	// after SELECT, tail after ORDER BY.
	limit(ph string) (top, tail string)
	// nowQuery returns the database's current instant; "" means the Go clock (the
	// database lives on the same machine).
	nowQuery() string
	// kind classifies a column by its DatabaseTypeName.
	kind(dbType string) colKind
	// bind turns a cursor value (or the upper bound) into the argument that compares
	// exactly with a column of dbType.
	bind(v any, dbType string) any
	// nullsFirst reports whether NULL sorts before every value in ascending order
	// (SQLite, SQL Server) or after (PostgreSQL). The keyset around a row with a NULL
	// key depends on it.
	nullsFirst() bool
	// isInteger reports whether a column of dbType holds integers.
	isInteger(dbType string) bool
	// readable returns a condition on the quoted cursor column that holds for the
	// values the keyset may read, or "" when the column's type already ensures it.
	// Rows failing it are left to the sweep, which rejects them: a value of the
	// wrong type can sort after rows written later and must not become the read
	// point.
	readable(cursor string, c column) string
}

var dialects = map[string]dialect{
	"postgres":  postgres{},
	"sqlserver": sqlserver{},
	"sqlite":    sqlite{},
	"mysql":     mysqlDialect{},
}

// quoteWith doubles the closing quote character, the escape every database here uses.
func quoteWith(open, close, ident string) string {
	return open + strings.ReplaceAll(ident, close, close+close) + close
}

type postgres struct{}

func (postgres) driverName() string               { return "postgres" }
func (postgres) quote(s string) string            { return quoteWith(`"`, `"`, s) }
func (postgres) placeholder(n int) string         { return "$" + strconv.Itoa(n) }
func (postgres) limit(ph string) (string, string) { return "", " LIMIT " + ph }
func (postgres) nowQuery() string                 { return "SELECT now()" }
func (postgres) nullsFirst() bool                 { return false }

func (postgres) isInteger(t string) bool {
	return t == "INT2" || t == "INT4" || t == "INT8"
}

func (postgres) readable(string, column) string { return "" }

func (postgres) kind(t string) colKind {
	switch t {
	case "TIMESTAMP", "DATE":
		return kindLocalTime
	case "TIMESTAMPTZ":
		return kindAwareTime
	case "TIME", "TIMETZ":
		return kindTimeOfDay
	case "BYTEA":
		return kindBinary
	}
	return kindText
}

// bind passes times through: lib/pq sends them as text with the value's offset, and
// PostgreSQL uses the offset for timestamptz but silently ignores it for timestamp,
// so a value in the source zone compares as wall-clock time there and as an instant
// here. Cursor values read from a timestamp column carry offset 0 and their wall
// clock, so they bind back unchanged.
func (postgres) bind(v any, _ string) any { return v }

type sqlserver struct{}

func (sqlserver) driverName() string               { return "sqlserver" }
func (sqlserver) quote(s string) string            { return quoteWith("[", "]", s) }
func (sqlserver) placeholder(n int) string         { return "@p" + strconv.Itoa(n) }
func (sqlserver) limit(ph string) (string, string) { return "TOP (" + ph + ") ", "" }
func (sqlserver) nullsFirst() bool                 { return true }

func (sqlserver) isInteger(t string) bool {
	return t == "TINYINT" || t == "SMALLINT" || t == "INT" || t == "BIGINT"
}

func (sqlserver) readable(string, column) string { return "" }

// nowQuery asks for an instant with the server's offset, so the server's own time
// zone setting does not matter; the source zone is applied in Go (see bind).
func (sqlserver) nowQuery() string { return "SELECT SYSDATETIMEOFFSET()" }

func (sqlserver) kind(t string) colKind {
	switch t {
	case "DATETIME", "DATETIME2", "SMALLDATETIME", "DATE":
		return kindLocalTime
	case "DATETIMEOFFSET":
		return kindAwareTime
	case "TIME":
		return kindTimeOfDay
	case "VARBINARY", "BINARY", "IMAGE":
		return kindBinary
	case "UNIQUEIDENTIFIER":
		return kindGUID
	}
	return kindText
}

// bind sends values with the column's own type. go-mssqldb sends a time.Time as
// datetimeoffset, and SQL Server would convert a zone-less column to +00:00 to
// compare, shifting it by the zone's offset; a Go string goes as nvarchar, which
// compares a varchar column under different collation rules than its ORDER BY.
// datetime columns are bound as datetime, not datetime2, because their 1/300 s ticks
// do not convert to datetime2 exactly and equality on the cursor would fail.
func (sqlserver) bind(v any, t string) any {
	switch v := v.(type) {
	case time.Time:
		switch t {
		case "DATETIME", "SMALLDATETIME":
			return mssql.DateTime1(v)
		case "DATETIME2", "DATE":
			return civil.DateTimeOf(v)
		}
	case string:
		switch t {
		case "VARCHAR", "CHAR", "TEXT":
			return mssql.VarChar(v)
		}
	}
	return v
}

type sqlite struct{}

func (sqlite) driverName() string               { return "sqlite" }
func (sqlite) quote(s string) string            { return quoteWith(`"`, `"`, s) }
func (sqlite) placeholder(int) string           { return "?" }
func (sqlite) limit(ph string) (string, string) { return "", " LIMIT " + ph }
func (sqlite) nowQuery() string                 { return "" }
func (sqlite) nullsFirst() bool                 { return true }

// isInteger follows SQLite's affinity rule: a declared type containing INT has
// integer affinity. A column of no declared type (an expression in a custom query)
// is not known to be one.
func (sqlite) isInteger(t string) bool { return strings.Contains(t, "INT") }

// readable keeps the keyset to what SQLite's own types say fits the column, as a
// column of any declared type holds any value: text that datetime() reads for a
// time cursor (a number sorts before every text, "2025-13-45" among them), an
// integer for an integer cursor (text sorts after every number).
func (sqlite) readable(cursor string, c column) string {
	switch {
	case c.kind == kindTextTime:
		return "typeof(" + cursor + ") = 'text' AND datetime(" + cursor + ") IS NOT NULL"
	case c.integer:
		return "typeof(" + cursor + ") = 'integer'"
	}
	return ""
}

func (sqlite) kind(t string) colKind {
	switch t {
	case "DATE", "DATETIME", "TIMESTAMP":
		return kindTextTime
	case "BLOB":
		return kindBinary
	}
	return kindText
}

// sqliteTimeLayout is how SQLite time text sorts: fixed-width up to the seconds,
// fractional digits only when non-zero. Binding a time.Time directly would make
// modernc write its String() form with a zone suffix, which sorts differently.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999"

func (sqlite) bind(v any, _ string) any {
	if t, ok := v.(time.Time); ok {
		return t.Format(sqliteTimeLayout)
	}
	return v
}
