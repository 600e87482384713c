package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrPermanent marks an error that retrying cannot fix (a rejected payload, an unknown
// recipient). Anything else a sink returns is treated as transient and retried.
var ErrPermanent = errors.New("permanent")

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Permanentf is Permanent(fmt.Errorf(...)).
func Permanentf(format string, args ...any) error {
	return Permanent(fmt.Errorf(format, args...))
}

// IsPermanent reports whether err was marked permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

type retryAfterError struct {
	err  error
	wait time.Duration
}

func (e retryAfterError) Error() string             { return e.err.Error() }
func (e retryAfterError) Unwrap() error             { return e.err }
func (e retryAfterError) RetryAfter() time.Duration { return e.wait }

// RetryAfter wraps a transient error with the wait the destination asked for (an
// HTTP Retry-After, a quota window), which the dispatcher honours instead of its own
// backoff when it is longer.
func RetryAfter(err error, wait time.Duration) error {
	if err == nil {
		return nil
	}
	return retryAfterError{err: err, wait: wait}
}

// RetryAfterOf returns the wait carried by err, if any: any error in the chain with
// a RetryAfter() time.Duration method, so connectors may carry their own types.
func RetryAfterOf(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter(), true
	}
	return 0, false
}

type detailError struct {
	err    error
	detail string
}

func (e detailError) Error() string { return e.err.Error() + ": " + e.detail }
func (e detailError) Unwrap() error { return e.err }

// WithDetail attaches text that came from the destination, such as a receiver's
// error body. It may quote the payload, and with it citizen data, so it is kept with
// the retry and the dead letter (err.Error() includes it) but left out of log lines
// (LogText). An empty detail returns err unchanged.
func WithDetail(err error, detail string) error {
	if err == nil || detail == "" {
		return err
	}
	return detailError{err: err, detail: detail}
}

// LogText is err's text for a log line: details attached with WithDetail are left out.
func LogText(err error) string {
	if err == nil {
		return ""
	}
	text := err.Error()
	var d detailError
	if errors.As(err, &d) {
		text = strings.Replace(text, ": "+d.detail, "", 1)
	}
	return text
}

// IsPaused reports whether err says the destination is stopped for a reason that
// lies outside every event (its credentials were refused, it waits for an operator):
// any error in the chain with a Paused() bool method returning true. Such events
// wait in the outbox however long it takes; their age never gives them up.
func IsPaused(err error) bool {
	var p interface{ Paused() bool }
	return errors.As(err, &p) && p.Paused()
}
