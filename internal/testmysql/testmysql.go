// Package testmysql gives tests a fresh MySQL/MariaDB database on the real server.
//
// The server is EGOV_TEST_MYSQL_DSN, default root@tcp(127.0.0.1:3306)/test (the
// go-sql-driver/mysql form). When it cannot be reached the test fails if CI=true
// and is skipped otherwise, with a message that says what is missing.
package testmysql

import (
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/egov-bridge/egov-bridge/internal/testsvc"
)

// DefaultDSN is used when EGOV_TEST_MYSQL_DSN is unset.
const DefaultDSN = "root@tcp(127.0.0.1:3306)/test"

// BaseDSN returns the server DSN, failing or skipping the test when it is unreachable.
func BaseDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("EGOV_TEST_MYSQL_DSN")
	if dsn == "" {
		dsn = DefaultDSN
	}
	testsvc.Require(t, "MariaDB/MySQL", redact(dsn), "set EGOV_TEST_MYSQL_DSN or start mariadbd", testsvc.Ping("mysql", dsn))
	return dsn
}

// Database creates a fresh, uniquely named database, drops it when the test ends,
// and returns a DSN that uses it, plus its name.
func Database(t testing.TB) (dsn, name string) {
	t.Helper()
	base := BaseDSN(t)
	name = testsvc.UniqueName("egt_")
	db, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	if _, err := db.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		db.Close()
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE " + name)
		db.Close()
	})
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parse %s: %v", redact(base), err)
	}
	cfg.DBName = name
	return cfg.FormatDSN(), name
}

// Open returns a connection to the database, closed when the test ends. Its
// sessions run in UTC (time_zone +00:00) and read times as time.Time in UTC, so a
// TIMESTAMP written as text is that UTC instant.
func Open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", redact(dsn), err)
	}
	cfg.ParseTime, cfg.Loc, cfg.MultiStatements = true, time.UTC, true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func redact(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "(unparseable DSN)"
	}
	if cfg.Passwd != "" {
		cfg.Passwd = "xxxxx"
	}
	return cfg.FormatDSN()
}
