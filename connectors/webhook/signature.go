package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the request's signature when the sink has a secret.
const SignatureHeader = "X-Egov-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the receiver's
// clock when Verify is given no tolerance: wide enough for clock skew and a slow
// network, narrow enough that a captured request cannot be replayed for long.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify, so a receiver can tell a broken client (format) from
// a forged or replayed request.
var (
	ErrSignatureFormat   = errors.New("malformed " + SignatureHeader + " header")
	ErrSignatureMismatch = errors.New("signature does not match the body")
	ErrSignatureExpired  = errors.New("signature timestamp is outside the tolerance")
)

// Sign returns the X-Egov-Signature value for body sent at t:
//
//	t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>.<body>")>
//
// The timestamp is inside the MAC, so a receiver that checks it against its own
// clock refuses replays of an old request; the body is MACed byte for byte as sent.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a request's X-Egov-Signature header against the raw body bytes as
// received (before any JSON decoding), the shared secret and the receiver's clock.
// It returns nil for a genuine, fresh request; otherwise an error that wraps
// ErrSignatureFormat, ErrSignatureMismatch or ErrSignatureExpired. A tolerance of 0
// or less means DefaultTolerance.
//
// Several v1 entries are accepted (any one matching is enough) and unknown keys are
// ignored, so the scheme can grow without breaking receivers. To rotate a secret,
// accept a request when Verify succeeds with either the old or the new secret.
func Verify(secret string, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return errors.New("webhook: Verify needs the shared secret")
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrSignatureFormat)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: t appears twice", ErrSignatureFormat)
			}
			if !allDigits(v) || len(v) > 18 { // 18 digits cannot overflow int64
				return fmt.Errorf("%w: t is not a unix time in seconds", ErrSignatureFormat)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex HMAC-SHA256", ErrSignatureFormat)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrSignatureFormat)
	}
	want := mac(secret, ts, body)
	match := false
	for _, sig := range sigs {
		// Constant time, and no early exit, so timing reveals nothing about the MAC.
		if hmac.Equal(sig, want) {
			match = true
		}
	}
	if !match {
		return ErrSignatureMismatch
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, _ := strconv.ParseInt(ts, 10, 64) // checked above
	if skew := now.Sub(time.Unix(sec, 0)).Abs(); skew > tolerance {
		return fmt.Errorf("%w: timestamp is %s off this clock, tolerance %s", ErrSignatureExpired, skew.Round(time.Second), tolerance)
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
