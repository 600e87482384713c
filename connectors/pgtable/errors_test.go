package pgtable

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func TestClassifyByPostgresCode(t *testing.T) {
	tests := []struct {
		code      pqerror.Code
		permanent bool
	}{
		{"08000", false}, // connection_exception
		{"08006", false}, // connection_failure
		{"08P01", false}, // protocol_violation
		{"40001", false}, // serialization_failure
		{"40P01", false}, // deadlock_detected
		{"53100", false}, // disk_full
		{"53300", false}, // too_many_connections
		{"55P03", false}, // lock_not_available
		{"57014", false}, // query_canceled (statement_timeout)
		{"57P01", false}, // admin_shutdown
		{"57P03", false}, // cannot_connect_now
		{"58030", false}, // io_error
		{"42P01", false}, // undefined_table: the table was dropped, not the event's fault
		{"42501", false}, // insufficient_privilege: a grant is missing
		{"28P01", false}, // invalid_password: fixed by an operator, then events flow
		{"22001", true},  // string_data_right_truncation
		{"22003", true},  // numeric_value_out_of_range
		{"22021", true},  // character_not_in_repertoire
		{"22P02", true},  // invalid_text_representation
		{"22P05", true},  // untranslatable_character
		{"23502", true},  // not_null_violation
		{"23505", true},  // unique_violation other than the handled conflicts
		{"23514", true},  // check_violation
		{"54000", true},  // program_limit_exceeded: index row too large
		{"", false},      // no code: never trusted to be the data's fault
		{"2", false},     // malformed code: no panic
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			cause := &pq.Error{Code: tt.code, Message: "boom"}
			err := classify(fmt.Errorf("pgtable sink %q: deliver event e1: %w", "bi", cause))
			if got := pipeline.IsPermanent(err); got != tt.permanent {
				t.Fatalf("IsPermanent = %v, want %v (%v)", got, tt.permanent, err)
			}
			if pq.As(err) != cause {
				t.Fatal("the *pq.Error is no longer reachable with errors.As")
			}
		})
	}
}

func TestClassifyNonServerErrorsAsTransient(t *testing.T) {
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded, driver.ErrBadConn, io.ErrUnexpectedEOF,
		errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")} {
		err := classify(fmt.Errorf("deliver: %w", cause))
		if pipeline.IsPermanent(err) || !errors.Is(err, cause) {
			t.Errorf("%v: permanent=%v, wraps cause=%v; want transient and wrapped", cause, pipeline.IsPermanent(err), errors.Is(err, cause))
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

func TestRedactorRemovesPasswords(t *testing.T) {
	tests := []struct{ dsn, text, secret string }{
		{"postgres://egov:s3cr%2Ft@db/bi", `parse "postgres://egov:s3cr%2Ft@db/bi": bad`, "s3cr"},
		{"postgres://egov:s3cret@db/bi", "failed for s3cret", "s3cret"},
		{"postgres://egov@db/bi?password=s3cret", "password s3cret rejected", "s3cret"},
		{"host=db user=egov password='s3 cret' dbname=bi", "bad option password='s3 cret'", "s3 cret"},
		{"host=db password=s3cret dbname=bi", "s3cret", "s3cret"},
	}
	for _, tt := range tests {
		red := newRedactor(tt.dsn)
		err := red.Err(errors.New(tt.text))
		if strings.Contains(err.Error(), tt.secret) {
			t.Errorf("dsn %q: %q still holds the secret", tt.dsn, err)
		}
	}
	cause := &pq.Error{Code: "22001", Message: "value s3cret too long"}
	err := newRedactor("postgres://u:s3cret@db/bi").Err(fmt.Errorf("x: %w", cause))
	if strings.Contains(err.Error(), "s3cret") || pq.As(err) != cause || !pipeline.IsPermanent(classify(err)) {
		t.Errorf("a redacted error must keep its class and cause: %v", err)
	}
}
