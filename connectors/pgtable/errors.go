package pgtable

import (
	"strings"
	"unicode/utf8"

	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/internal/redact"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// classify marks err permanent when retrying the same event cannot succeed because
// the server rejected the data itself; the dispatcher then moves the event to dead
// letters at once instead of retrying it for hours. Everything else is transient:
// the connection (08), a serialization failure or deadlock (40001, 40P01), the
// server's resources (53), a cancel, timeout or shutdown (57), an I/O error (58), a
// lock timeout (55P03), a cancelled context, and also a missing table or privilege
// (42), which an operator fixes without the event changing.
func classify(err error) error {
	if err == nil || pipeline.IsPermanent(err) {
		return err
	}
	if permanentCode(sqlState(err)) {
		return pipeline.Permanent(err)
	}
	return err
}

// permanentCode reports whether a SQLSTATE blames the data: a data exception (22:
// invalid text, numeric overflow, a value too long), an integrity violation (23:
// the sink's own conflicts are handled by ON CONFLICT, so any other is the data's),
// or a program limit (54: e.g. a key too large for its index).
func permanentCode(code string) bool {
	if len(code) != 5 {
		return false
	}
	switch code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// sqlState returns the PostgreSQL error code carried by err, or "".
func sqlState(err error) string {
	if e := pq.As(err); e != nil {
		return string(e.Code)
	}
	return ""
}

// connectionTrouble reports whether err says the server could not be reached or
// went away, rather than refusing what was asked.
func connectionTrouble(err error) bool {
	code := sqlState(err)
	if code == "" {
		// Not an answer from the server: a dial, DNS or TLS failure, a dropped
		// connection, a deadline.
		return true
	}
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "57P") || strings.HasPrefix(code, "53")
}

// short keeps an error message readable when a value in it (a key) is huge; errors
// end up in dead letters and on the dashboard.
func short(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// newRedactor removes the DSN's secrets from error text: a malformed URL comes back
// from net/url with the whole string in it, password included, and errors end up in
// logs, the dashboard and the dead-letter table.
func newRedactor(dsn string) redact.Redactor { return redact.ForDSN(dsn) }
