package sqlsource

import (
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// redactor removes a DSN's secrets from error text. Drivers quote DSNs in their
// errors (a URL parse error prints the whole URL, password included), and errors
// end up in logs, the dashboard and the state store.
type redactor struct {
	secrets []string // longest first, so a password inside the DSN goes with it
}

// passwordRE finds password=... in key=value DSNs: lib/pq's "password='x y'",
// ADO's "Password=x;", ODBC's "PWD={x;y}".
var passwordRE = regexp.MustCompile(`(?i)(?:^|[;\s])(?:password|pwd)\s*=\s*('(?:[^'\\]|\\.|'')*'|"(?:[^"]|"")*"|\{(?:[^}]|\}\})*\}|[^;\s]+)`)

func newRedactor(dsns ...string) redactor {
	var s []string
	add := func(v string) {
		if v != "" {
			s = append(s, v, url.QueryEscape(v), url.PathEscape(v))
		}
	}
	for _, dsn := range dsns {
		add(dsn)
		if u, err := url.Parse(dsn); err == nil {
			if u.User != nil {
				p, _ := u.User.Password()
				add(p)
			}
			add(u.Query().Get("password"))
		}
		for _, m := range passwordRE.FindAllStringSubmatch(dsn, -1) {
			v := m[1]
			add(v)
			if len(v) >= 2 && strings.ContainsRune(`'"{`, rune(v[0])) {
				add(v[1 : len(v)-1]) // without its quotes
			}
		}
	}
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return redactor{secrets: s}
}

func (r redactor) text(msg string) string {
	for _, s := range r.secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return msg
}

// err returns err unchanged when its text holds no secret. Otherwise it returns an
// error with redacted text that still answers errors.Is for the original (so a
// deadline is still a deadline) but does not unwrap to it, since the original's
// text is what must not escape.
func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := r.text(msg); red != msg {
		return &redactedError{msg: red, orig: err}
	}
	return err
}

type redactedError struct {
	msg  string
	orig error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.orig, target) }
