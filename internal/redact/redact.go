// Package redact keeps secrets (passwords, tokens, whole DSNs) out of error text.
// Drivers and net/url quote connection strings in some of their errors, and errors
// end up in logs, the state store's dead letters and the operator's screen; every
// connector and the store use this one implementation so they leak alike: not at all.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// MinLen is the shortest secret that is replaced. A one-letter "password" replaced
// everywhere would garble every message (the reviewer's "xxxxxostgres") while
// protecting nothing worth the name.
const MinLen = 4

// Mask replaces each secret in error text.
const Mask = "[redacted]"

// Redactor removes a fixed set of secrets from text and errors. The zero value
// removes nothing.
type Redactor struct {
	secrets []string // longest first, so a whole DSN goes before its password
}

// New returns a redactor for literal secrets (tokens, passwords), each also in its
// URL-escaped forms.
func New(secrets ...string) Redactor {
	var r Redactor
	for _, s := range secrets {
		r.add(s)
	}
	r.sort()
	return r
}

// ForDSN returns a redactor for connection strings in any of the forms the drivers
// take: URLs (postgres://user:pass@host/db?password=…, sqlserver://…), lib/pq's
// key=value pairs (password=x, password='x y'), and ADO/ODBC pairs (Password=x;,
// PWD={x;y}). The whole DSN and every password in it are secrets.
func ForDSN(dsns ...string) Redactor {
	var r Redactor
	for _, dsn := range dsns {
		r.add(dsn)
		r.add(rawURLPassword(dsn))
		if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
			if u.User != nil {
				p, _ := u.User.Password()
				r.add(p)
			}
			for _, k := range []string{"password", "sslpassword", "pwd"} {
				r.add(u.Query().Get(k))
			}
		}
		for _, m := range passwordRE.FindAllStringSubmatch(dsn, -1) {
			v := m[1]
			r.add(v)
			if len(v) >= 2 && strings.ContainsRune(`'"{`, rune(v[0])) {
				r.add(v[1 : len(v)-1]) // without its quotes
			}
			// An unquoted password with a space ("password=Tr0ub4dor&3 horse") is
			// misread by the driver, which then quotes the second word in its error.
			for _, w := range strings.Fields(m[2]) {
				r.add(w)
			}
		}
	}
	r.sort()
	return r
}

// passwordRE finds password=… in key=value DSNs: the value as the driver reads it
// (group 1), and the words that follow it up to the next key= (group 2), which a
// mistyped unquoted password with spaces leaves behind.
var passwordRE = regexp.MustCompile(`(?i)(?:^|[;\s])(?:password|sslpassword|pwd)\s*=\s*('(?:[^'\\]|\\.|'')*'|"(?:[^"]|"")*"|\{(?:[^}]|\}\})*\}|[^;\s]+)((?:\s+[^=;\s]+(?:\s|$))*)`)

// rawURLPassword reads user:password@ out of a URL by hand, because net/url cuts a
// password at '#' or '?' that the user meant as part of it.
func rawURLPassword(dsn string) string {
	i := strings.Index(dsn, "://")
	if i < 0 {
		return ""
	}
	rest := dsn[i+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	userinfo := rest[:at]
	if _, p, ok := strings.Cut(userinfo, ":"); ok {
		if unescaped, err := url.PathUnescape(p); err == nil && unescaped != p {
			return unescaped
		}
		return p
	}
	return ""
}

func (r *Redactor) add(s string) {
	if len(s) < MinLen {
		return
	}
	r.secrets = append(r.secrets, s, url.QueryEscape(s), url.PathEscape(s))
}

func (r *Redactor) sort() {
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	r.secrets = compact(r.secrets)
}

func compact(s []string) []string {
	out := s[:0]
	seen := map[string]bool{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Text returns s with every secret replaced.
func (r Redactor) Text(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, Mask)
	}
	return s
}

// Err returns err unchanged when its text holds no secret. Otherwise it returns an
// error showing the redacted text that still answers errors.Is and errors.As for the
// original (a deadline stays a deadline, a *pq.Error keeps its code, a permanent
// error stays permanent) but does not unwrap to it, since the original's text is
// what must not escape.
func (r Redactor) Err(err error) error {
	if err == nil || len(r.secrets) == 0 {
		return err
	}
	msg := err.Error()
	if red := r.Text(msg); red != msg {
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
func (e *redactedError) As(target any) bool   { return errors.As(e.orig, target) }
