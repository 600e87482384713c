package sqlsource

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// mysqlDialect reads MySQL and MariaDB (github.com/go-sql-driver/mysql).
//
// Times: the connection always reads times as time.Time in UTC (parseTime,
// loc=UTC) with the session's time_zone set to +00:00, whatever the DSN says.
// TIMESTAMP columns store instants and the server converts them to the session
// zone, so they arrive as the right instant in UTC. DATETIME and DATE columns store
// a wall clock with no zone, which the driver hands over unchanged (labelled UTC);
// the source reads that wall clock in its `zone`, as it does for PostgreSQL's
// timestamp and SQL Server's datetime2. Bound values follow the same rule (see
// bind), and "now" is UTC_TIMESTAMP(6), so neither the server's nor the session's
// zone setting changes what is read.
type mysqlDialect struct{}

func (mysqlDialect) driverName() string               { return "mysql" }
func (mysqlDialect) quote(s string) string            { return quoteWith("`", "`", s) }
func (mysqlDialect) placeholder(int) string           { return "?" }
func (mysqlDialect) limit(ph string) (string, string) { return "", " LIMIT " + ph }
func (mysqlDialect) nowQuery() string                 { return "SELECT UTC_TIMESTAMP(6)" }
func (mysqlDialect) nullsFirst() bool                 { return true }

func (mysqlDialect) isInteger(t string) bool {
	switch strings.TrimPrefix(t, "UNSIGNED ") {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT":
		return true
	}
	return false
}

func (mysqlDialect) readable(string, column) string { return "" }

func (mysqlDialect) kind(t string) colKind {
	switch t {
	case "DATETIME", "DATE":
		return kindLocalTime
	case "TIMESTAMP":
		return kindAwareTime
	case "TIME":
		return kindTimeOfDay
	case "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "BINARY", "VARBINARY", "BIT", "GEOMETRY":
		return kindBinary
	}
	return kindText
}

// bind sends a time as the wall clock the column compares by. The driver sends a
// time.Time as its wall clock in UTC (loc): for a TIMESTAMP column that is the
// instant in the session zone (+00:00); for DATETIME and DATE the wall clock is
// what the column holds, so a value in the source zone (the lag bound) keeps its
// wall clock. Cursor values read from such a column carry UTC and their wall
// clock already, and bind back unchanged.
func (mysqlDialect) bind(v any, t string) any {
	tm, ok := v.(time.Time)
	if !ok {
		return v
	}
	switch t {
	case "DATETIME", "DATE":
		return wallClockIn(tm, time.UTC)
	}
	return tm.UTC()
}

// mysqlDSN accepts the driver's own form (user:password@tcp(host:3306)/db?params)
// or a URL (mysql://user:password@host:3306/db?params) and returns the driver's
// form with the settings the source relies on forced, and the password (for the
// redactor, which cannot find it in the driver's form by itself).
func mysqlDSN(dsn string) (string, string, error) {
	native := dsn
	if strings.HasPrefix(dsn, "mysql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("the DSN is not a valid mysql:// URL")
		}
		cfg := mysql.NewConfig()
		cfg.Net, cfg.Addr, cfg.DBName = "tcp", u.Host, strings.TrimPrefix(u.Path, "/")
		if u.Port() == "" {
			cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
		}
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		if len(u.RawQuery) > 0 {
			q := cfg.FormatDSN()
			native = q + "?" + u.RawQuery
		} else {
			native = cfg.FormatDSN()
		}
	}
	cfg, err := mysql.ParseDSN(native)
	if err != nil {
		// The driver's messages quote no part of the DSN.
		return "", "", fmt.Errorf("the DSN is not one the mysql driver reads (user:password@tcp(host:3306)/database or mysql://…): %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	return cfg.FormatDSN(), cfg.Passwd, nil
}
