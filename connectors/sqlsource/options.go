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
	Driver string `yaml:"driver" enum:"postgres,sqlserver,sqlite,mysql" doc:"The database: postgres, sqlserver, sqlite or mysql (MySQL and MariaDB). Required."`
	DSN    string `yaml:"dsn" secret:"true" doc:"The connection string, never logged. For sqlite a file path (relative to the config file, and it must exist) or a file: URI; for mysql user:password@tcp(host:3306)/db or mysql://user:password@host:3306/db; for postgres lib/pq's URL or key=value form, where binary_parameters is on unless the DSN sets it (a query with arguments then takes one round trip). Required." example:"postgres://reader@db.agency.gov.vn:5432/motcua"`
	Table  string `yaml:"table" doc:"The table read whole, as table or schema.table (validated, and quoted in the database's dialect). Give table or query." example:"motcua.hs_hoso"`
	Query  string `yaml:"query" doc:"A custom SELECT, read as a subquery; no ORDER BY (SQL Server: no WITH). Give table or query."`
	// The cursor and key columns are always read, whatever columns says.
	Columns []string      `yaml:"columns" doc:"The columns read; empty reads every column. The cursor and key columns are always read."`
	Cursor  CursorOptions `yaml:"cursor" doc:"The columns that order the rows and resume reading: rows are read in (column, key) order."`
	// Bounded batches keep the daemon gentle with an agency's server.
	BatchSize int             `yaml:"batch_size" min:"1" max:"100000" doc:"The most rows one query returns; memory is bounded by it, not by the table."`
	Lag       config.Duration `yaml:"lag" doc:"Rows newer than the database's now minus lag are left for the next run, so rows of transactions still in flight (which commit with an older cursor value) are not skipped."`
	Lookback  config.Duration `yaml:"lookback" doc:"Re-reads this window before the greatest cursor value read, at the start of every run; 0 turns it off. Time cursors only."`
	// Sequences commit out of order (a transaction holding id 41 may commit after
	// one holding 42 was read), and an integer cursor has no clock to lag behind,
	// so this window is what catches such rows; it cannot be turned off.
	LookbackIDs     *int64          `yaml:"lookback_ids" default:"1000" doc:"For an integer cursor: every run re-reads from the greatest value read minus this many, so rows whose ids were taken before a higher one but committed after it was read are not skipped. Cannot be 0. Integer cursors only."`
	QueryTimeout    config.Duration `yaml:"query_timeout" doc:"Bounds each query, including streaming its rows."`
	MaxOpenConns    int             `yaml:"max_open_conns" min:"1" doc:"Connections to the agency's database at most."`
	MaxIdleConns    int             `yaml:"max_idle_conns" doc:"Idle connections kept, at most max_open_conns."`
	ConnMaxLifetime config.Duration `yaml:"conn_max_lifetime" doc:"A connection is closed after this long."`
}

// CursorOptions name the composite cursor: rows are read in (Column, Key) order.
type CursorOptions struct {
	Column string `yaml:"column" doc:"The last-modified column, usually a timestamp (or an increasing integer). Required." example:"ngay_cap_nhat"`
	Key    string `yaml:"key" doc:"A unique, non-null column (the primary key) that orders rows sharing one cursor value. Required." example:"ma_ho_so"`
	// With rowversion, rows are read only below MIN_ACTIVE_ROWVERSION(), so a
	// transaction still in flight (whose rows carry lower rowversions than rows
	// already committed) is never skipped.
	Kind string `yaml:"kind" enum:"rowversion" doc:"Leave out to let the column's type decide; rowversion for a SQL Server rowversion column, which grows with every write: rows are read only below MIN_ACTIVE_ROWVERSION(), so no transaction in flight is skipped, and lag and lookback do not apply."`
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
	config.Check(o, report)
	if o.Driver == "" {
		report("driver", "is required: postgres, sqlserver, sqlite or mysql")
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
	}
	o.validateLookbackIDs(report)
	if o.Cursor.Key != "" && strings.EqualFold(o.Cursor.Key, o.Cursor.Column) {
		report("cursor.key", "must differ from cursor.column: the key breaks ties between rows sharing a cursor value")
	}
	if o.QueryTimeout <= 0 {
		report("query_timeout", "must be more than 0")
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
