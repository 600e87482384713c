package sqlsource

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Defaults are chosen to be gentle with an agency's server: small pool, bounded
// batches, a timeout on every query.
const (
	DefaultBatchSize       = 1000
	MaxBatchSize           = 100000
	DefaultLag             = 5 * time.Second
	DefaultQueryTimeout    = 30 * time.Second
	DefaultMaxOpenConns    = 2
	DefaultMaxIdleConns    = 1
	DefaultConnMaxLifetime = 5 * time.Minute
	// DefaultLookbackIDs is the re-read window of an integer cursor when
	// lookback_ids is not given.
	DefaultLookbackIDs = 1000
)

// Options are the `type: sql` keys of a source in the config file. The daemon decodes
// the common keys (name, schedule, mapping, agency, zone, ...) itself.
//
// driver, dsn (or dsn_file), table or query, and cursor are required. Validate checks
// them rather than `required` tags, so that a key that is present but empty (for
// example dsn: "${DSN}" with DSN set to "") is caught too, with one message.
type Options struct {
	// Driver is postgres, sqlserver, sqlite or mysql (MySQL and MariaDB).
	Driver string `yaml:"driver"`
	// DSN is the connection string; dsn_file reads it from a file so it need not sit
	// in the config. For sqlite it is a file path (relative to the config file) or a
	// file: URI.
	DSN string `yaml:"dsn" secret:"true"`
	// Table is read whole, e.g. dbo.HoSo or public.ho_so. Exactly one of Table and
	// Query is given.
	Table string `yaml:"table"`
	// Query is a custom SELECT, read as a subquery; it must not have ORDER BY.
	Query string `yaml:"query"`
	// Columns limits what is read; empty means every column. The cursor and key
	// columns are always read.
	Columns []string `yaml:"columns"`
	// Cursor names the columns that order the rows and resume reading.
	Cursor CursorOptions `yaml:"cursor"`
	// BatchSize is the most rows one query returns.
	BatchSize int `yaml:"batch_size"`
	// Lag keeps the reader behind the database's clock, so rows of transactions
	// still in flight (which commit with an older cursor value) are not skipped.
	Lag config.Duration `yaml:"lag"`
	// Lookback re-reads this window before the greatest cursor value read, at the
	// start of every run; 0 turns it off. Only for time cursors.
	Lookback config.Duration `yaml:"lookback"`
	// LookbackIDs is lookback for an integer cursor, in cursor units: every run
	// re-reads from the greatest value read minus LookbackIDs, inclusive. Sequences
	// commit out of order (a transaction holding id 41 may commit after one holding
	// 42 was read), and an integer cursor has no clock to lag behind, so this window
	// is what catches such rows. Unset means DefaultLookbackIDs; it cannot be turned
	// off. Only for integer cursors.
	LookbackIDs *int64 `yaml:"lookback_ids"`
	// QueryTimeout bounds each query, including streaming its rows.
	QueryTimeout    config.Duration `yaml:"query_timeout"`
	MaxOpenConns    int             `yaml:"max_open_conns"`
	MaxIdleConns    int             `yaml:"max_idle_conns"`
	ConnMaxLifetime config.Duration `yaml:"conn_max_lifetime"`
}

// CursorOptions name the composite cursor: rows are read in (Column, Key) order.
type CursorOptions struct {
	// Column is the last-modified column, usually a timestamp.
	Column string `yaml:"column"`
	// Key is a unique, non-null column (the primary key) that orders rows sharing
	// one cursor value.
	Key string `yaml:"key"`
	// Kind is "" (the column's own type decides) or "rowversion": a SQL Server
	// rowversion column, which grows with every write. Rows are then read only below
	// MIN_ACTIVE_ROWVERSION(), so a transaction still in flight (whose rows carry
	// lower rowversions than rows already committed) is never skipped; lag and
	// lookback do not apply.
	Kind string `yaml:"kind"`
}

// CursorRowversion is the cursor kind of a SQL Server rowversion column.
const CursorRowversion = "rowversion"

// NewOptions returns options with every default set.
func NewOptions() *Options {
	return &Options{
		BatchSize:       DefaultBatchSize,
		Lag:             config.Duration(DefaultLag),
		QueryTimeout:    config.Duration(DefaultQueryTimeout),
		MaxOpenConns:    DefaultMaxOpenConns,
		MaxIdleConns:    DefaultMaxIdleConns,
		ConnMaxLifetime: config.Duration(DefaultConnMaxLifetime),
	}
}

var _ pipeline.Validator = (*Options)(nil)

// Validate reports every semantic mistake, with field paths relative to the source.
func (o *Options) Validate(report pipeline.Reporter) {
	if o.Driver == "" {
		report("driver", "is required: postgres, sqlserver, sqlite or mysql")
	} else if _, ok := dialects[o.Driver]; !ok {
		report("driver", "unknown driver %q: want postgres, sqlserver, sqlite or mysql", o.Driver)
	}
	if strings.TrimSpace(o.DSN) == "" {
		report("dsn", "is required: give dsn or dsn_file")
	}
	switch {
	case o.Table == "" && strings.TrimSpace(o.Query) == "":
		report("table", "is required: give table or query")
	case o.Table != "" && o.Query != "":
		report("query", "give table or query, not both")
	case o.Table != "":
		if err := checkTableName(o.Table); err != "" {
			report("table", "%s", err)
		}
	default:
		if err := checkQuery(o.Query, o.Driver); err != "" {
			report("query", "%s", err)
		}
	}
	seen := map[string]bool{}
	for i, c := range o.Columns {
		field := "columns[" + strconv.Itoa(i) + "]"
		if err := checkIdent(c); err != "" {
			report(field, "%s", err)
		}
		if seen[strings.ToLower(c)] {
			report(field, "column %q is listed twice", c)
		}
		seen[strings.ToLower(c)] = true
	}
	if o.Cursor.Column == "" {
		report("cursor.column", "is required: the column that orders rows by last change")
	} else if err := checkIdent(o.Cursor.Column); err != "" {
		report("cursor.column", "%s", err)
	}
	if o.Cursor.Key == "" {
		report("cursor.key", "is required: a unique, non-null column, usually the primary key")
	} else if err := checkIdent(o.Cursor.Key); err != "" {
		report("cursor.key", "%s", err)
	}
	switch o.Cursor.Kind {
	case "":
	case CursorRowversion:
		if o.Driver != "" && o.Driver != "sqlserver" {
			report("cursor.kind", "rowversion is a SQL Server column type; driver is %s", o.Driver)
		}
		if o.Lookback > 0 {
			report("lookback", "does not apply to a rowversion cursor (MIN_ACTIVE_ROWVERSION() already waits for transactions in flight): remove it")
		}
		if o.LookbackIDs != nil {
			report("lookback_ids", "does not apply to a rowversion cursor (MIN_ACTIVE_ROWVERSION() already waits for transactions in flight): remove it")
		}
	default:
		report("cursor.kind", "unknown kind %q (want rowversion, or leave it out)", o.Cursor.Kind)
	}
	o.validateLookbackIDs(report)
	if o.Cursor.Key != "" && strings.EqualFold(o.Cursor.Key, o.Cursor.Column) {
		report("cursor.key", "must differ from cursor.column: the key breaks ties between rows sharing a cursor value")
	}
	if o.BatchSize < 1 || o.BatchSize > MaxBatchSize {
		report("batch_size", "must be between 1 and %d, got %d", MaxBatchSize, o.BatchSize)
	}
	if o.QueryTimeout <= 0 {
		report("query_timeout", "must be more than 0")
	}
	if o.MaxOpenConns < 1 {
		report("max_open_conns", "must be at least 1, got %d", o.MaxOpenConns)
	}
	if o.MaxIdleConns < 0 || o.MaxIdleConns > o.MaxOpenConns {
		report("max_idle_conns", "must be between 0 and max_open_conns (%d), got %d", o.MaxOpenConns, o.MaxIdleConns)
	}
}

// validateLookbackIDs checks what can be known without the database; that the
// cursor is an integer is checked at the first read.
func (o *Options) validateLookbackIDs(report pipeline.Reporter) {
	if o.LookbackIDs == nil {
		return
	}
	switch n := *o.LookbackIDs; {
	case n < 0:
		report("lookback_ids", "must be more than 0, got %d", n)
	case n == 0:
		report("lookback_ids", "0 is refused: without a re-read window, a row whose id was taken before a higher one "+
			"but committed after it was read is skipped for ever (sequences commit out of order); leave lookback_ids "+
			"out for the default %d, or give at least the number of ids other writers can take while one transaction is open", DefaultLookbackIDs)
	}
	if o.Lookback > 0 {
		report("lookback_ids", "give lookback (a time cursor) or lookback_ids (an integer cursor), not both")
	}
}

// identRE accepts what can be quoted safely in all three dialects without surprises:
// letters (Vietnamese included), digits and underscores.
var identRE = regexp.MustCompile(`^[\p{L}\p{N}_]+$`)

// maxIdentLen is SQL Server's limit; PostgreSQL truncates at 63 bytes.
const maxIdentLen = 128

func checkIdent(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len([]rune(s)) > maxIdentLen:
		return "is longer than 128 characters"
	case !identRE.MatchString(s):
		return "\"" + s + "\" is not a plain identifier: use letters, digits and underscores only"
	}
	return ""
}

func checkTableName(s string) string {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return "\"" + s + "\" has too many parts: want table or schema.table"
	}
	for _, p := range parts {
		if err := checkIdent(p); err != "" {
			return "\"" + s + "\": " + err
		}
	}
	return ""
}

// queryStartRE matches the statements that can be read as a subquery.
var queryStartRE = regexp.MustCompile(`(?is)^\s*(select|with)\b`)

// checkQuery catches what would break wrapping the query as a subquery. SQL Server
// does not allow WITH inside a derived table, so there the query must be a SELECT.
func checkQuery(q, driver string) string {
	m := queryStartRE.FindStringSubmatch(q)
	switch {
	case m == nil:
		return "must be a SELECT statement"
	case strings.EqualFold(m[1], "with") && driver == "sqlserver":
		return "SQL Server cannot read a WITH query as a subquery: write it as one SELECT"
	}
	return ""
}
