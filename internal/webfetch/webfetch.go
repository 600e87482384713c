// Package webfetch is the HTTP client of the sources that read agency web pages
// and feeds (connectors/httpfeed, connectors/evnspc, connectors/filesource from a URL).
// These servers are not ours, so every request is gentle: a per-host rate limit
// that also spaces retries, a timeout per attempt, retries with backoff only on
// timeouts, transport errors and 5xx/429 answers, conditional requests (ETag,
// Last-Modified) so an unchanged page costs the server a 304, and a cap on the
// size of an answer.
package webfetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"
	"golang.org/x/time/rate"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Defaults shared by the connectors that use this client.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultRetries      = 3
	DefaultRetryWait    = 2 * time.Second
	DefaultRetryMaxWait = 30 * time.Second
	// DefaultRateLimit is one request per second per host: a government web
	// server that serves citizens must not notice us.
	DefaultRateLimit = 1.0
	DefaultMaxBytes  = 10 << 20
)

// UserAgent names the daemon in the agency's access logs.
const UserAgent = "egov-bridge (+province data sync)"

// Settings configure a Client.
type Settings struct {
	// Timeout bounds each attempt, including reading the answer.
	Timeout time.Duration
	// Retries is how many times a failed attempt is tried again (0: never).
	Retries int
	// RetryWait and RetryMaxWait bound the backoff between attempts.
	RetryWait, RetryMaxWait time.Duration
	// RateLimit is the most requests per second to one host (0: no limit).
	RateLimit float64
	// MaxBytes caps an answer's size; a larger one is an error.
	MaxBytes int64
	// Conditional sends If-None-Match / If-Modified-Since when the server gave an
	// ETag or Last-Modified, and reuses the kept answer on 304 Not Modified.
	Conditional bool
	// Headers are sent with every request.
	Headers map[string]string
	// Clock and Sleep space requests for the rate limit; tests inject both.
	Clock pipeline.Clock
	Sleep func(ctx context.Context, d time.Duration) error
	// Transport replaces the default HTTP transport (tests).
	Transport http.RoundTripper
}

// Request is one request; URL may already carry a query, which Query extends.
type Request struct {
	Method  string // GET (default) or POST
	URL     string
	Query   url.Values
	Form    url.Values // POST body, form-encoded
	Headers map[string]string
}

// Response is a successful answer.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
	// URL is the address that answered, after redirects; relative links in the
	// body resolve against it.
	URL *url.URL
	// NotModified: the server answered 304 and Body is the answer kept from before.
	NotModified bool
}

// ErrTooLarge is returned when an answer is larger than Settings.MaxBytes.
var ErrTooLarge = errors.New("answer larger than the size cap")

// StatusError is an HTTP answer outside 2xx (after retries, for those retried).
type StatusError struct {
	Status   int
	URL      string
	Attempts int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d from %s after %d attempt(s)", e.Status, e.URL, e.Attempts)
}

// Client fetches pages; it is safe for concurrent use.
type Client struct {
	s  Settings
	rc *resty.Client

	mu          sync.Mutex
	limiters    map[string]*rate.Limiter
	cache       map[string]cached
	cachedBytes int64
	tick        uint64
}

type cached struct {
	etag, lastModified string
	body               []byte
	header             http.Header
	url                *url.URL
	used               uint64 // c.tick when last used, for eviction
}

// Answers kept for conditional requests are bounded: addresses that carry a date
// (EVN's window) change every day and must not pile up.
const (
	maxCached      = 256
	minCachedBytes = 64 << 20
)

// New returns a client with its own cookie jar.
func New(s Settings) (*Client, error) {
	if s.Clock == nil {
		s.Clock = time.Now
	}
	if s.Sleep == nil {
		s.Sleep = sleep
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &Client{s: s, limiters: map[string]*rate.Limiter{}, cache: map[string]cached{}}
	next := s.Transport
	if next == nil {
		next = http.DefaultTransport.(*http.Transport).Clone()
	}
	rc := resty.New().
		SetTransport(limitedTransport{next: next, c: c}).
		SetCookieJar(jar).
		SetTimeout(s.Timeout).
		SetRetryCount(s.Retries).
		SetRetryWaitTime(s.RetryWait).
		SetRetryMaxWaitTime(s.RetryMaxWait).
		SetHeader("User-Agent", UserAgent).
		SetHeaders(s.Headers).
		// With a condition set, resty retries exactly when it says so.
		AddRetryCondition(retryable).
		SetRetryAfter(func(_ *resty.Client, r *resty.Response) (time.Duration, error) {
			return retryAfter(r.Header(), s.Clock()), nil
		}).
		SetLogger(discardLogger{})
	if s.MaxBytes > 0 {
		rc.SetResponseBodyLimit(int(s.MaxBytes))
	}
	c.rc = rc
	return c, nil
}

// retryable: timeouts, transport errors, 429 and 5xx are worth another attempt;
// a refused request (4xx), an oversized answer or the caller's cancellation are not.
func retryable(r *resty.Response, err error) bool {
	if err != nil {
		if errors.Is(err, resty.ErrResponseBodyTooLarge) || errors.Is(err, context.Canceled) {
			return false
		}
		if r != nil && r.Request != nil && r.Request.Context().Err() != nil {
			return false
		}
		return true
	}
	if r == nil {
		return false
	}
	code := r.StatusCode()
	return code == http.StatusTooManyRequests || code >= 500
}

// Do sends req and returns a 2xx answer (or the kept answer on 304); anything
// else is an error naming the address and status.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	u, err := url.Parse(req.URL)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %w", req.URL, err)
	}
	if len(req.Query) > 0 {
		q := u.Query()
		for k, vs := range req.Query {
			q.Del(k)
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	key := method + " " + u.String() + "\n" + req.Form.Encode()

	r := c.rc.R().SetContext(ctx).SetHeaders(req.Headers)
	if method == http.MethodPost && req.Form != nil {
		r.SetFormDataFromValues(req.Form)
	}
	c.mu.Lock()
	prev, havePrev := c.cache[key]
	if havePrev {
		c.tick++
		prev.used = c.tick
		c.cache[key] = prev
	}
	c.mu.Unlock()
	if c.s.Conditional && havePrev {
		if prev.etag != "" {
			r.SetHeader("If-None-Match", prev.etag)
		}
		if prev.lastModified != "" {
			r.SetHeader("If-Modified-Since", prev.lastModified)
		}
	}
	resp, err := r.Execute(method, u.String())
	attempts := 1
	if resp != nil && resp.Request != nil {
		attempts = resp.Request.Attempt
	}
	if err != nil {
		switch {
		case errors.Is(err, resty.ErrResponseBodyTooLarge):
			return nil, fmt.Errorf("%s: %w (max_bytes %d)", redactURL(u), ErrTooLarge, c.s.MaxBytes)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%s: %w", redactURL(u), ctx.Err())
		case isTimeout(err):
			return nil, fmt.Errorf("%s: timed out after %d attempt(s) of %s: %w", redactURL(u), attempts, c.s.Timeout, err)
		}
		return nil, fmt.Errorf("%s: %d attempt(s): %w", redactURL(u), attempts, err)
	}
	final := u
	if raw := resp.RawResponse; raw != nil && raw.Request != nil && raw.Request.URL != nil {
		final = raw.Request.URL
	}
	code := resp.StatusCode()
	switch {
	case code == http.StatusNotModified && havePrev:
		return &Response{Status: code, Body: prev.body, Header: prev.header, URL: prev.url, NotModified: true}, nil
	case code < 200 || code > 299:
		return nil, &StatusError{Status: code, URL: redactURL(u), Attempts: attempts}
	}
	out := &Response{Status: code, Body: resp.Body(), Header: resp.Header(), URL: final}
	if c.s.Conditional {
		etag, lm := resp.Header().Get("ETag"), resp.Header().Get("Last-Modified")
		c.mu.Lock()
		c.forgetLocked(key)
		if etag != "" || lm != "" {
			c.tick++
			c.cache[key] = cached{etag: etag, lastModified: lm, body: out.Body, header: out.Header, url: final, used: c.tick}
			c.cachedBytes += int64(len(out.Body))
			c.evictLocked()
		}
		c.mu.Unlock()
	}
	return out, nil
}

// Forget drops the answers kept for conditional requests, so the next request
// of each is unconditional (a source that found a kept answer unreadable).
func (c *Client) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.cache)
	c.cachedBytes = 0
}

func (c *Client) forgetLocked(key string) {
	if old, ok := c.cache[key]; ok {
		c.cachedBytes -= int64(len(old.body))
		delete(c.cache, key)
	}
}

// evictLocked drops the least recently used answers beyond the bounds.
func (c *Client) evictLocked() {
	maxBytes := max(4*c.s.MaxBytes, minCachedBytes)
	for len(c.cache) > maxCached || c.cachedBytes > maxBytes && len(c.cache) > 1 {
		var oldest string
		var at uint64
		for k, v := range c.cache {
			if oldest == "" || v.used < at {
				oldest, at = k, v.used
			}
		}
		c.forgetLocked(oldest)
	}
}

// retryAfter is the wait a 429 or 503 asked for (Retry-After in seconds or as
// a date); 0 leaves the backoff to resty, which caps it at RetryMaxWait.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// redactURL is an address for an error message: without user info or query,
// which may carry a token.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		c.RawQuery = ""
		return c.String() + "?…"
	}
	return c.String()
}

// limitedTransport waits for the host's rate limit before every attempt,
// retries included.
type limitedTransport struct {
	next http.RoundTripper
	c    *Client
}

func (l limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := l.c.wait(r.Context(), r.URL.Host); err != nil {
		return nil, err
	}
	return l.next.RoundTrip(r)
}

func (c *Client) wait(ctx context.Context, host string) error {
	if c.s.RateLimit <= 0 {
		return nil
	}
	c.mu.Lock()
	lim, ok := c.limiters[host]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(c.s.RateLimit), 1)
		c.limiters[host] = lim
	}
	now := c.s.Clock()
	d := lim.ReserveN(now, 1).DelayFrom(now)
	c.mu.Unlock()
	if d <= 0 {
		return nil
	}
	return c.s.Sleep(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ParseRate reads a rate limit written as "2/s", "30/m", "1/5s" or a bare number
// of requests per second.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty rate")
	}
	n, per, ok := strings.Cut(s, "/")
	count, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || count < 0 {
		return 0, fmt.Errorf("bad rate %q: want requests per time, such as 1/s, 30/m or 1/5s", s)
	}
	if !ok {
		return count, nil
	}
	per = strings.TrimSpace(per)
	switch per {
	case "s":
		per = "1s"
	case "m":
		per = "1m"
	case "h":
		per = "1h"
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad rate %q: want requests per time, such as 1/s, 30/m or 1/5s", s)
	}
	return count / d.Seconds(), nil
}

type discardLogger struct{}

func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Debugf(string, ...any) {}
