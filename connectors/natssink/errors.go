package natssink

import (
	"errors"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/egov-bridge/egov-bridge/internal/redact"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// JetStream error codes (nats-server's errors.json) the sink tells apart.
const (
	codeMessageTooLarge jetstream.ErrorCode = 10054 // message size exceeds the stream's max_msg_size
	codeWrongStream     jetstream.ErrorCode = 10060 // expected stream does not match
	codeSubjectOverlap  jetstream.ErrorCode = 10065 // subjects overlap with an existing stream
	codeHeadersTooLarge jetstream.ErrorCode = 10097 // header size exceeds maximum allowed of 64k
	codeStreamSealed    jetstream.ErrorCode = 10109 // invalid operation on sealed stream
	codeUnavailable                         = 503   // APIError.Code (HTTP-like): try again later
)

// streamError is a stream that cannot take the sink's events as it is configured:
// an answer, not a failure to get one.
type streamError struct{ msg string }

func (e *streamError) Error() string { return e.msg }

// isDefinite reports whether a stream check failed on the server's answer (a stream
// that does not fit, a configuration the server refuses) rather than on reaching
// it; Build fails on the former and retries the latter before the next delivery.
func isDefinite(err error) bool {
	var se *streamError
	if errors.As(err, &se) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code != codeUnavailable
}

// publishError classes a failed publish. JetStream refusing the message for its size
// is permanent: the same message would be refused again. A stream set up wrongly
// (sealed, subjects taken by another stream) and everything else (no responders,
// timeouts, a lost connection, a cancelled context, a full disk) is transient.
func (s *Sink) publishError(ev *pipeline.Event, msg *nats.Msg, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return pipeline.Permanent(s.errorf("event %s (%d bytes) is larger than the server's max_payload (%d bytes): %w",
			ev.ID, len(msg.Data), s.nc.MaxPayload(), err))
	case errors.As(err, &apiErr):
		switch apiErr.ErrorCode {
		case codeMessageTooLarge, codeHeadersTooLarge:
			// The event itself is too big: no retry can fix it.
			return pipeline.Permanent(s.errorf("stream %q refused event %s on %s: %s: %w",
				s.opts.Stream, ev.ID, msg.Subject, apiErr.Description, err))
		case codeStreamSealed, codeWrongStream:
			// The stream's set-up, not the event, is at fault: retry (and check the
			// stream again) until an operator fixes it, rather than dead-lettering
			// every event in the meantime.
			s.ready.Store(false)
			return s.errorf("stream %q cannot take event %s on %s (%s); fix the stream, delivery resumes by itself: %w",
				s.opts.Stream, ev.ID, msg.Subject, apiErr.Description, err)
		}
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		s.ready.Store(false) // the stream may be gone: check (or create) it again next time
		return s.errorf("publish %s to %s: no stream answered: %w", ev.ID, msg.Subject, err)
	}
	return s.errorf("publish %s to %s: %w", ev.ID, msg.Subject, s.red.Err(err))
}

// displayServers lists the servers of a URL option without their user information
// (a token may sit where the user name goes).
func displayServers(list string) string {
	var out []string
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			out = append(out, "(unparsable URL)")
			continue
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return strings.Join(out, ",")
}

// newRedactor removes the connection's secrets from error text from nats.go, which
// should hold none; it is the second line of defence that keeps a password out of logs.
func newRedactor(o Options) redact.Redactor {
	secrets := []string{o.Token, o.Password}
	for _, raw := range strings.Split(o.URL, ",") {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.User != nil {
			p, _ := u.User.Password()
			secrets = append(secrets, u.User.Username(), p)
		}
	}
	return redact.New(secrets...)
}
