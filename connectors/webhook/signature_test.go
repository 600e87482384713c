package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The known-answer vector receivers in other languages can check themselves
// against (computed independently with Python's hmac module).
const (
	vectorSecret = "whsec-example"
	vectorBody   = `{"id":"abc"}`
	vectorHeader = "t=1795000000,v1=189654f6c74d1c95c48c9164aa31951afda0b1f0679251fc9a56a5106afc7299"
)

var vectorTime = time.Unix(1795000000, 0)

func TestSignMatchesTheKnownAnswer(t *testing.T) {
	if got := Sign(vectorSecret, vectorTime, []byte(vectorBody)); got != vectorHeader {
		t.Fatalf("Sign = %q, want %q", got, vectorHeader)
	}
}

func TestVerify(t *testing.T) {
	v1 := strings.TrimPrefix(vectorHeader, "t=1795000000,")
	otherV1 := "v1=" + strings.Repeat("0", 64)
	tests := []struct {
		name   string
		secret string
		header string
		body   string
		now    time.Time
		tol    time.Duration
		want   error // nil: accepted
	}{
		{name: "genuine", header: vectorHeader},
		{name: "spaces after commas", header: "t=1795000000, " + v1},
		{name: "keys in any order", header: v1 + ",t=1795000000"},
		{name: "one of several v1 matches (rotation)", header: "t=1795000000," + otherV1 + "," + v1},
		{name: "unknown keys ignored", header: vectorHeader + ",v2=whatever"},
		{name: "at the edge of the tolerance", header: vectorHeader, now: vectorTime.Add(time.Minute), tol: time.Minute},
		{name: "zero tolerance means the default", header: vectorHeader, now: vectorTime.Add(DefaultTolerance - time.Second), tol: 0},

		{name: "tampered body", header: vectorHeader, body: `{"id":"abd"}`, want: ErrSignatureMismatch},
		{name: "wrong secret", secret: "whsec-other", header: vectorHeader, want: ErrSignatureMismatch},
		{name: "timestamp changed", header: "t=1795000001," + v1, now: vectorTime, want: ErrSignatureMismatch},
		{name: "no matching v1", header: "t=1795000000," + otherV1, want: ErrSignatureMismatch},
		{name: "stale", header: vectorHeader, now: vectorTime.Add(time.Minute + time.Second), tol: time.Minute, want: ErrSignatureExpired},
		{name: "from the future", header: vectorHeader, now: vectorTime.Add(-time.Minute - time.Second), tol: time.Minute, want: ErrSignatureExpired},
		{name: "stale beyond the default", header: vectorHeader, now: vectorTime.Add(DefaultTolerance + time.Second), tol: -1, want: ErrSignatureExpired},

		{name: "empty header", header: "", want: ErrSignatureFormat},
		{name: "garbage", header: "sha256=abc", want: ErrSignatureFormat},
		{name: "no key=value", header: "t=1795000000,deadbeef", want: ErrSignatureFormat},
		{name: "no timestamp", header: v1, want: ErrSignatureFormat},
		{name: "no v1", header: "t=1795000000", want: ErrSignatureFormat},
		{name: "timestamp not a number", header: "t=yesterday," + v1, want: ErrSignatureFormat},
		{name: "negative timestamp", header: "t=-1," + v1, want: ErrSignatureFormat},
		{name: "huge timestamp", header: "t=99999999999999999999," + v1, want: ErrSignatureFormat},
		{name: "timestamp twice", header: vectorHeader + ",t=1795000000", want: ErrSignatureFormat},
		{name: "v1 not hex", header: "t=1795000000,v1=" + strings.Repeat("z", 64), want: ErrSignatureFormat},
		{name: "v1 too short", header: "t=1795000000,v1=abcd", want: ErrSignatureFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, body, now := tt.secret, tt.body, tt.now
			if secret == "" {
				secret = vectorSecret
			}
			if body == "" {
				body = vectorBody
			}
			if now.IsZero() {
				now = vectorTime
			}
			err := Verify(secret, tt.header, []byte(body), now, tt.tol)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify = %v, want it accepted", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyWithoutSecretRefuses(t *testing.T) {
	if err := Verify("", vectorHeader, []byte(vectorBody), vectorTime, time.Minute); err == nil {
		t.Fatal("Verify accepted a request with an empty secret")
	}
}
