package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-resty/resty/v2"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.AddSink("webhook", "POSTs each event as signed JSON to an HTTP endpoint (dashboards, operations centre)", NewOptions,
		func(_ context.Context, env pipeline.Env, o *Options) (pipeline.Sink, error) { return New(env, *o) })
}

// UserAgent is sent with every request, so a receiver's logs show who called.
const UserAgent = "egov-bridge"

// MaxRetryAfter caps the wait a receiver can ask for with Retry-After, so that a
// misconfigured receiver cannot park a sink for days.
const MaxRetryAfter = time.Hour

const (
	// maxReasonBody is how much of a refused response's body goes into the error,
	// and so into logs and dead letters.
	maxReasonBody = 512
	// maxDrain is how much of a response is read and discarded so that the
	// connection can be reused; a longer body costs a new connection instead.
	maxDrain = 64 << 10
)

// errTimeout is the cause of a delivery's own deadline, to tell it from the
// caller's cancellation.
var errTimeout = errors.New("webhook timeout")

// RetryAfterError is a transient error from a receiver that said when to come back
// (a 408, 429 or 5xx answer with Retry-After, usually 429 or 503). Its RetryAfter
// method is what pipeline.RetryAfterOf finds, so the dispatcher waits at least Wait
// before the next attempt; receivers' own code can match *RetryAfterError directly.
type RetryAfterError struct {
	Wait time.Duration
	Err  error
}

func (e *RetryAfterError) Error() string {
	msg := "receiver asked to retry later"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s (retry after %s)", msg, e.Wait)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns Wait. It lets a dispatcher honour the wait through
// errors.As(err, &x) with x of type interface{ RetryAfter() time.Duration },
// since the pipeline cannot import a connector.
func (e *RetryAfterError) RetryAfter() time.Duration { return e.Wait }

// RefusedError is a transient error for an answer that says the receiver takes
// nothing from this sink as it is configured, whatever the event: 401 or 403 (a
// rotated key, a revoked permission), 404, 405 or 410 (an endpoint moved or gone
// in a redeploy), a 3xx redirect, and the 4xx statuses the contract does not name.
// The events are fine and go through once the receiver or the config is fixed, so
// they are retried (until max_age) rather than dead-lettered; but a person must
// act, so AlertReason makes the dispatcher raise an alert for the sink.
type RefusedError struct {
	Status int
	Err    error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// AlertReason names the alert, as a metric label: "http_" and the status.
func (e *RefusedError) AlertReason() string { return "http_" + strconv.Itoa(e.Status) }

// Sink posts events to one URL.
type Sink struct {
	client  *resty.Client
	url     string
	secret  string
	timeout time.Duration
	clock   pipeline.Clock
	// who names the sink and its receiver's host in every error, without the
	// URL's userinfo, path or query, which may carry a token.
	who string
}

var _ pipeline.Sink = (*Sink)(nil)

// New builds a sink from options, checking them first. It does not contact the
// receiver: a dashboard that is down at startup is a delivery failure to retry,
// not a reason to refuse to start.
func New(env pipeline.Env, o Options) (*Sink, error) {
	if err := pipeline.Invalid(&o); err != nil {
		return nil, pipeline.Permanentf("webhook sink %q: invalid options: %v", env.Name, err)
	}
	u, _ := parseURL(o.URL) // valid: checked above
	s := &Sink{
		url:     o.URL,
		secret:  o.Secret,
		timeout: o.Timeout.D(),
		clock:   env.Clock,
		who:     fmt.Sprintf("webhook sink %q (%s)", env.Name, u.Host),
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr, err := transport(env, o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.who, err)
	}
	// No cookie jar: a receiver's cookies must not change what later requests
	// carry. Redirects are returned, not followed: a POST silently re-sent to
	// another address (or turned into a GET) is not a delivery.
	hc := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.client = resty.NewWithClient(hc).
		SetLogger(restyLogger{log.With("library", "resty")}).
		SetDebug(false).
		SetRetryCount(0).            // the dispatcher owns retries and backoff
		SetDoNotParseResponse(true). // we read a bounded prefix of the body ourselves
		SetHeaders(o.Headers).
		SetHeader("User-Agent", UserAgent).
		SetHeader("Content-Type", "application/json")
	return s, nil
}

// maxInFlight is the most deliveries the dispatcher keeps in flight to one sink
// (delivery.concurrency is at most 256). Keeping as many idle connections lets
// every one of them reuse a connection: with fewer, each delivery beyond the idle
// pool opened a new connection and left one in TIME_WAIT, thousands a second at
// full speed.
const maxInFlight = 256

// transport is http.DefaultTransport's configuration with room for the
// dispatcher's concurrent deliveries to one host, and the optional private CA.
func transport(env pipeline.Env, caFile string) (*http.Transport, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		if env.Resolve != nil {
			caFile = env.Resolve(caFile)
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificates", caFile)
		}
		tlsConf.RootCAs = pool
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          maxInFlight,
		MaxIdleConnsPerHost:   maxInFlight,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}, nil
}

// ReadsFieldsAsJSON marks the sink as one that posts events only as JSON
// (pipeline.FieldsJSON): a first sync's events reach it without a map of fields.
func (*Sink) ReadsFieldsAsJSON() {}

// Deliver posts one event and classifies the outcome (see the package doc):
// nil for 2xx; a permanent error when the receiver refuses this event (400, 409,
// 413, 422); a transient error for anything time can fix (408, 425, 429, 5xx,
// network errors, timeouts, cancellation), as a *RetryAfterError when the receiver
// said when to come back; and a *RefusedError, transient and alerted, for answers
// that refuse the sink rather than the event (401, 403, 404, 405, 410, 3xx, other
// 4xx).
func (s *Sink) Deliver(ctx context.Context, ev *pipeline.Event) error {
	if ev == nil || ev.ID == "" {
		return pipeline.Permanentf("%s: event has no id to use as Idempotency-Key", s.who)
	}
	body, err := pipeline.AppendEventJSON(nil, ev) // json.Marshal's JSON without reflection: most of a request's CPU was encoding
	if err != nil {
		return pipeline.Permanentf("%s: encode event %s: %w", s.who, ev.ID, err)
	}
	rctx, cancel := context.WithTimeoutCause(ctx, s.timeout, errTimeout)
	defer cancel()
	req := s.client.R().
		SetContext(rctx).
		SetHeader("Idempotency-Key", ev.ID).
		SetBody(body)
	if s.secret != "" {
		req.SetHeader(SignatureHeader, Sign(s.secret, s.clock(), body))
	}
	resp, err := req.Post(s.url)
	if err != nil {
		return s.requestError(ctx, rctx, err)
	}
	defer resp.RawBody().Close()
	return s.classify(resp)
}

// requestError explains a request that got no response; every such error is
// transient.
func (s *Sink) requestError(ctx, rctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: delivery interrupted: %w", s.who, ctx.Err())
	}
	if errors.Is(context.Cause(rctx), errTimeout) {
		return fmt.Errorf("%s: no response within %s: %w", s.who, s.timeout, context.DeadlineExceeded)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error quotes the URL, query and all
	}
	return fmt.Errorf("%s: %w", s.who, err)
}

func (s *Sink) classify(resp *resty.Response) error {
	code := resp.StatusCode()
	if code >= 200 && code < 300 {
		drain(resp.RawBody())
		return nil
	}
	status := "HTTP " + strconv.Itoa(code)
	if text := http.StatusText(code); text != "" {
		status += " " + text
	}
	switch {
	case code >= 300 && code < 400:
		drain(resp.RawBody())
		where := "without a Location header"
		if loc := resp.Header().Get("Location"); loc != "" {
			where = "to " + strconv.Quote(redactLocation(loc))
		}
		return &RefusedError{Status: code, Err: fmt.Errorf("%s: %s: the receiver redirects %s; redirects are not followed, so point url at the new address", s.who, status, where)}
	case eventRefused(code):
		return pipeline.Permanent(pipeline.WithDetail(fmt.Errorf("%s: %s", s.who, status), bodyReason(resp.RawBody())))
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500 && code < 600:
		err := pipeline.WithDetail(fmt.Errorf("%s: %s", s.who, status), bodyReason(resp.RawBody()))
		if wait, ok := retryAfter(resp.Header().Get("Retry-After"), s.clock()); ok {
			return &RetryAfterError{Wait: wait, Err: err}
		}
		return err
	default:
		err := pipeline.WithDetail(fmt.Errorf("%s: %s", s.who, status), bodyReason(resp.RawBody()))
		return &RefusedError{Status: code, Err: err}
	}
}

// eventRefused reports whether a status refuses the event itself, so that sending
// it again cannot help: a malformed or conflicting payload (400, 409), one too
// large (413), or one the receiver understands and will not take (422).
func eventRefused(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// retryAfter reads a Retry-After value, delay-seconds or an HTTP-date. A date in
// the past, or a value that cannot be read, gives ok false: retry on the usual
// backoff.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var wait time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		wait = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		wait = t.Sub(now)
	} else {
		return 0, false
	}
	if wait <= 0 {
		return 0, false
	}
	return min(wait, MaxRetryAfter), true
}

// bodyReason returns up to maxReasonBody bytes of a refused response's body, on one
// line, so the receiver's own explanation reaches the dead letter (as a detail that
// stays out of log lines: a receiver may echo the payload).
func bodyReason(body io.Reader) string {
	buf := make([]byte, maxReasonBody+1)
	n, _ := io.ReadFull(body, buf)
	drain(body)
	b, more := buf[:n], n > maxReasonBody
	if more {
		b = b[:maxReasonBody]
		// Do not leave half a character at the cut.
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
	}
	// Control characters (line breaks, terminal escapes) would forge log lines.
	text := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(b), "\uFFFD"))
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return ""
	case more:
		return text + " [truncated]"
	default:
		return text
	}
}

func drain(body io.Reader) { _, _ = io.CopyN(io.Discard, body, maxDrain) }

// redactLocation keeps a redirect target's scheme, host and path, which say what
// to fix, and drops userinfo and query, which may carry credentials.
func redactLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return "(unparseable Location)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "..."
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// Close releases idle connections; deliveries in flight finish on theirs.
func (s *Sink) Close() error {
	s.client.GetClient().CloseIdleConnections()
	return nil
}

// restyLogger sends resty's own messages to the sink's logger instead of stderr.
type restyLogger struct{ l *slog.Logger }

func (r restyLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r restyLogger) Warnf(format string, v ...any)  { r.l.Warn(fmt.Sprintf(format, v...)) }
func (r restyLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
