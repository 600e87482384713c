package redact

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestForDSNRemovesEveryPasswordForm(t *testing.T) {
	tests := []struct {
		name, dsn, msg string
		leaks          []string
	}{
		{"url user info", "postgres://egov:S3cr3t!pw@db:5432/egov", `parse "postgres://egov:S3cr3t!pw@db:5432/egov": bad`, []string{"S3cr3t!pw"}},
		{"url query", "postgres://db/egov?password=Qu3ryPw", "password Qu3ryPw rejected", []string{"Qu3ryPw"}},
		{"url password with #", "postgres://u:pa#ssw0rd@db/egov", "connect u:pa#ssw0rd@db failed", []string{"pa#ssw0rd"}},
		{"url-escaped", "postgres://u:p%40ss%2Fw0rd@db/egov", "password p@ss/w0rd and p%40ss%2Fw0rd", []string{"p@ss/w0rd", "p%40ss%2Fw0rd"}},
		{"lib/pq key=value", "host=db user=egov password=Kv-Pass1 dbname=egov", "bad password Kv-Pass1", []string{"Kv-Pass1"}},
		{"lib/pq quoted", "host=db password='two words' dbname=x", "two words", []string{"two words"}},
		{"unquoted with a space", "host=db password=Tr0ub4dor&3 horse dbname=x", `missing "=" after "horse" in connection info string`, []string{"horse", "Tr0ub4dor&3"}},
		{"sqlserver ado", "server=db;user id=sa;Password=Ad0Pass;database=MotCua", "login failed Ad0Pass", []string{"Ad0Pass"}},
		{"odbc braces", "Server=db;PWD={se;cret};", "PWD {se;cret} se;cret", []string{"se;cret"}},
		{"sslpassword", "host=db sslpassword=Cl13ntKey", "key Cl13ntKey", []string{"Cl13ntKey"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ForDSN(tt.dsn).Text(tt.msg)
			for _, leak := range tt.leaks {
				if strings.Contains(got, leak) {
					t.Errorf("%q still shows %q", got, leak)
				}
			}
			if !strings.Contains(got, Mask) {
				t.Errorf("%q: nothing was redacted", got)
			}
		})
	}
}

func TestShortSecretsDoNotGarbleMessages(t *testing.T) {
	got := ForDSN("postgres://u:p@db/egov").Text("connect to postgres: dial tcp 10.0.0.1:5432")
	if got != "connect to postgres: dial tcp 10.0.0.1:5432" {
		t.Fatalf("a one-letter password garbled the message: %q", got)
	}
}

type codeErr struct{ code string }

func (e *codeErr) Error() string { return "pq: code " + e.code + " for password hunter22" }

func TestErrKeepsClassesButNotText(t *testing.T) {
	r := New("hunter22")
	base := &codeErr{code: "08006"}
	err := r.Err(fmt.Errorf("deliver: %w", base))
	if strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("secret in %q", err)
	}
	var ce *codeErr
	if !errors.As(err, &ce) || ce.code != "08006" {
		t.Fatal("errors.As lost the driver's error and its code")
	}
	if errors.Unwrap(err) != nil {
		t.Fatal("the redacted error unwraps to text that holds the secret")
	}
	dl := r.Err(fmt.Errorf("dial hunter22: %w", context.DeadlineExceeded))
	if !errors.Is(dl, context.DeadlineExceeded) {
		t.Fatal("a deadline is no longer a deadline")
	}
	plain := errors.New("no secret here")
	if r.Err(plain) != plain || (Redactor{}).Err(plain) != plain {
		t.Fatal("an error without secrets was replaced")
	}
}
