// Package testsvc holds what the helpers for the real services the tests talk to
// (PostgreSQL, MariaDB, NATS) share: checking that a service answers — failing
// the test when CI=true, skipping it elsewhere with what is missing — and fresh
// unique names for the schemas and databases each test gets.
package testsvc

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"
)

// Require ends the test when err says the service is unreachable: a failure under
// CI=true, where every service must run, a skip elsewhere. what names the service,
// where its (redacted) address, hint what to do about it.
func Require(t testing.TB, what, where, hint string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI (CI=true) but unreachable at %s: %v", what, where, err)
	}
	t.Skipf("%s not reachable at %s (%s): %v", what, where, hint, err)
}

// Ping opens a database/sql connection and pings it within five seconds.
func Ping(driver, dsn string) error {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// UniqueName returns prefix followed by twelve random hex digits: a schema or
// database name no other test, in this process or another, will pick.
func UniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
