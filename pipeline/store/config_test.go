package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // "field: message"
	}{
		{"zero value means sqlite defaults", Config{}, nil},
		{"defaults", DefaultConfig(), nil},
		{"postgres with dsn", Config{Driver: "postgres", DSN: "postgres://db/x"}, nil},
		{"unknown driver", Config{Driver: "mysql"}, []string{`driver: unknown driver "mysql" (want sqlite or postgres)`}},
		{"postgres without dsn", Config{Driver: "postgres"}, []string{"dsn: is required for driver postgres (give dsn or dsn_file)"}},
		{"dsn given to sqlite", Config{DSN: "postgres://db/x"}, []string{"dsn: is for driver postgres; the sqlite driver uses path"}},
		{"path with a query", Config{Path: "x.db?mode=ro"}, []string{"path: must not contain '?'"}},
		{"negative pool", Config{Driver: "postgres", DSN: "x", MaxOpenConns: -1}, []string{"max_open_conns: must not be negative, got -1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			tc.cfg.Validate(func(field, format string, args ...any) {
				got = append(got, field+": "+fmt.Sprintf(format, args...))
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("Validate reported %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	_, err := Open(t.Context(), Config{Driver: "mysql"})
	if err == nil || !strings.Contains(err.Error(), `unknown driver "mysql"`) {
		t.Errorf("Open(mysql) = %v, want an unknown driver error", err)
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	const secret = "s3cr3t-pw"
	dsns := []string{
		// nothing listens on port 1: the connection fails
		"postgres://egov:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		// net/url quotes the whole DSN in its parse error
		"postgres://egov:" + secret + "@127.0.0.1:notaport/db",
		"host=127.0.0.1 port=1 user=egov password='" + secret + "' sslmode=disable connect_timeout=2",
		"host=127.0.0.1 port=1 password=" + secret + " sslmode=nonsense",
	}
	for _, dsn := range dsns {
		_, err := Open(t.Context(), Config{Driver: DriverPostgres, DSN: dsn})
		if err == nil {
			t.Errorf("Open succeeded with an unusable DSN")
			continue
		}
		if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, dsn) {
			t.Errorf("error shows the secret: %s", msg)
		}
	}
}

func TestRedactErr(t *testing.T) {
	dsn := "postgres://u:pa%24%24@h/db"
	err := redactErr(fmt.Errorf("wrap: %w", fmt.Errorf(`parse %q: bad; password pa$$`, dsn)), dsn)
	if msg := err.Error(); strings.Contains(msg, "pa$$") || strings.Contains(msg, "pa%24%24") {
		t.Errorf("redactErr left a secret: %s", msg)
	}
	canceled := redactErr(fmt.Errorf("dial %s: %w", dsn, context.Canceled), dsn)
	if !errors.Is(canceled, context.Canceled) || strings.Contains(canceled.Error(), "pa$$") {
		t.Errorf("redactErr(canceled) = %v, want a redacted error that is still context.Canceled", canceled)
	}
	plain := errors.New("connection refused")
	if got := redactErr(plain, dsn); got != plain {
		t.Errorf("an error without secrets was replaced: %v", got)
	}
}
