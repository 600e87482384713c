package sqlsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func TestRedactorRemovesPasswords(t *testing.T) {
	tests := []struct {
		dsn, password string
	}{
		{"postgres://reader:s3cr%21t@10.0.0.5:5432/motcua?sslmode=disable", "s3cr!t"},
		{"host=10.0.0.5 user=reader password='p@ss word' dbname=motcua", "p@ss word"},
		{"host=10.0.0.5 user=reader password=hunter22 dbname=motcua", "hunter22"},
		{"sqlserver://sa:Str0ng!Pass@db.local:1433?database=MotCua", "Str0ng!Pass"},
		{"server=db.local;user id=sa;Password=Str0ng!Pass;database=MotCua", "Str0ng!Pass"},
		{"odbc:server=db.local;uid=sa;PWD={se;cret}", "se;cret"}, // secrets under redact.MinLen characters are not replaced
	}
	for _, tt := range tests {
		r := newRedactor(tt.dsn)
		msg := fmt.Sprintf("open %q: login with %s failed; dsn was %s", tt.password, tt.password, tt.dsn)
		got := r.Text(msg)
		if strings.Contains(got, tt.password) || strings.Contains(got, tt.dsn) {
			t.Errorf("%s: secret left in %q", tt.dsn, got)
		}
		if !strings.Contains(got, "[redacted]") {
			t.Errorf("%s: nothing redacted in %q", tt.dsn, got)
		}
	}
}

func TestRedactedErrorStillMatchesItsCause(t *testing.T) {
	r := newRedactor("postgres://u:topsecret@h/db")
	err := r.Err(fmt.Errorf("dial with topsecret: %w", context.DeadlineExceeded))
	if strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("secret in %q", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("errors.Is lost the cause")
	}
	if errors.Unwrap(err) != nil {
		t.Fatalf("the unredacted error can be unwrapped")
	}
	plain := errors.New("relation does not exist")
	if r.Err(plain) != plain {
		t.Fatalf("an error without secrets should pass unchanged")
	}
}

// A DSN that the driver cannot parse must not come back in the error: net/url
// quotes the whole string, password included.
func TestOpenErrorsDoNotLeakTheDSN(t *testing.T) {
	o := NewOptions()
	o.Driver, o.Table = "postgres", "ho_so"
	o.DSN = "postgres://reader:hunter22@10.0.0.5:badport/motcua"
	o.Cursor = CursorOptions{Column: "ngay", Key: "ma"}
	src, err := Open(t.Context(), pipeline.Env{Name: "motcua"}, o)
	if err == nil {
		// lib/pq parses lazily on some paths: the first read must fail instead.
		defer src.Close()
		_, _, err = src.ReadBatch(t.Context(), nil, pipeline.EmitFunc(func(pipeline.Row) error { return nil }))
	}
	if err == nil {
		t.Fatal("a bad DSN was accepted")
	}
	if strings.Contains(err.Error(), "hunter22") || strings.Contains(err.Error(), o.DSN) {
		t.Fatalf("error leaks the DSN: %v", err)
	}
	if !strings.Contains(err.Error(), `sql source "motcua" (ho_so)`) {
		t.Fatalf("error does not name the source and table: %v", err)
	}
}
