package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// redactErr keeps the DSN's secrets out of an error. Drivers and net/url quote the
// connection string in some parse errors; when the text contains a secret, the
// error is replaced by its redacted text (dropping the chain, which would still
// carry the secret), except that context errors stay recognisable.
func redactErr(err error, dsn string) error {
	if err == nil || dsn == "" {
		return err
	}
	msg := err.Error()
	red := msg
	for _, s := range dsnSecrets(dsn) {
		red = strings.ReplaceAll(red, s, "xxxxx")
	}
	if red == msg {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", red, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", red, context.DeadlineExceeded)
	}
	return errors.New(red)
}

// dsnSecrets lists the strings of a DSN that must not be shown, the whole DSN first
// so it is replaced before its parts. Both lib/pq forms are understood: a URL with a
// password in its user info or query, and key=value pairs with optional quotes.
func dsnSecrets(dsn string) []string {
	out := []string{dsn}
	add := func(p string) {
		if p != "" {
			out = append(out, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if u.User != nil {
			p, _ := u.User.Password()
			add(p)
		}
		for _, k := range secretKeys {
			add(u.Query().Get(k))
		}
		return out
	}
	for k, v := range keyValues(dsn) {
		for _, sk := range secretKeys {
			if k == sk {
				add(v)
			}
		}
	}
	return out
}

var secretKeys = []string{"password", "sslpassword"}

// keyValues parses lib/pq's key=value form leniently: values may be single-quoted
// with backslash escapes. It only feeds redaction, so it never fails.
func keyValues(dsn string) map[string]string {
	out := map[string]string{}
	r := []rune(dsn)
	for i := 0; i < len(r); {
		for i < len(r) && (r[i] == ' ' || r[i] == '\t' || r[i] == '\n') {
			i++
		}
		start := i
		for i < len(r) && r[i] != '=' && r[i] != ' ' {
			i++
		}
		key := strings.TrimSpace(string(r[start:i]))
		for i < len(r) && r[i] == ' ' {
			i++
		}
		if i >= len(r) || r[i] != '=' {
			i++
			continue
		}
		i++ // '='
		for i < len(r) && r[i] == ' ' {
			i++
		}
		var val strings.Builder
		if i < len(r) && r[i] == '\'' {
			i++
			for i < len(r) && r[i] != '\'' {
				if r[i] == '\\' && i+1 < len(r) {
					i++
				}
				val.WriteRune(r[i])
				i++
			}
			i++ // closing quote
		} else {
			for i < len(r) && r[i] != ' ' {
				if r[i] == '\\' && i+1 < len(r) {
					i++
				}
				val.WriteRune(r[i])
				i++
			}
		}
		out[key] = val.String()
	}
	return out
}
