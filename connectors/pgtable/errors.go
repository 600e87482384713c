package pgtable

import (
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/lib/pq"

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

// redactor removes the DSN's secrets from error text. lib/pq rarely quotes the DSN,
// but a malformed URL comes back from net/url with the whole string in it, password
// included, and errors end up in logs, the dashboard and the dead-letter table.
type redactor struct {
	secrets []string // longest first, so the whole DSN goes before its password
}

// passwordRE finds the password of a key=value DSN: password=x or password='x y'.
var passwordRE = regexp.MustCompile(`(?i)(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

func newRedactor(dsn string) redactor {
	var s []string
	add := func(v string) {
		if v != "" {
			s = append(s, v, url.QueryEscape(v), url.PathEscape(v))
		}
	}
	add(dsn)
	if u, err := url.Parse(dsn); err == nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		add(u.Query().Get("password"))
	}
	for _, m := range passwordRE.FindAllStringSubmatch(dsn, -1) {
		add(m[1])
		if len(m[1]) >= 2 && m[1][0] == '\'' {
			add(m[1][1 : len(m[1])-1])
		}
	}
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return redactor{secrets: s}
}

// err returns err unchanged when its text holds no secret. Otherwise it returns an
// error with redacted text that still answers errors.Is and errors.As for the
// original (a deadline stays a deadline, a *pq.Error keeps its code) without
// printing it.
func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := msg
	for _, s := range r.secrets {
		red = strings.ReplaceAll(red, s, "[redacted]")
	}
	if red == msg {
		return err
	}
	return &redactedError{msg: red, orig: err}
}

type redactedError struct {
	msg  string
	orig error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.orig, target) }
func (e *redactedError) As(target any) bool   { return errors.As(e.orig, target) }
