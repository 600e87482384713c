package webfetch

import (
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Options are the `http:` keys of a source that reads web pages: how gently and
// how patiently it asks. Every field has a default (NewOptions).
type Options struct {
	// Timeout bounds each attempt, from connecting to the last byte of the answer.
	Timeout config.Duration `yaml:"timeout"`
	// Retries is how many more attempts a timeout, a transport error, a 429 or a
	// 5xx answer gets; 4xx answers are not retried. 0 turns retries off.
	Retries int `yaml:"retries"`
	// RetryWait is the first backoff between attempts; it doubles (with jitter)
	// up to RetryMaxWait. A Retry-After the server sends is honoured up to
	// RetryMaxWait.
	RetryWait    config.Duration `yaml:"retry_wait"`
	RetryMaxWait config.Duration `yaml:"retry_max_wait"`
	// RateLimit is the most requests to one host, retries included: "1/s",
	// "30/m", "1/5s", or a number per second. "0" turns it off.
	RateLimit string `yaml:"rate_limit"`
	// MaxBytes caps the size of one answer; a larger answer fails the poll.
	MaxBytes int64 `yaml:"max_bytes"`
	// Conditional sends If-None-Match / If-Modified-Since when the server gave an
	// ETag or Last-Modified, so an unchanged page costs it a 304.
	Conditional bool `yaml:"conditional"`
}

// NewOptions returns the defaults.
func NewOptions() Options {
	return Options{
		Timeout:      config.Duration(DefaultTimeout),
		Retries:      DefaultRetries,
		RetryWait:    config.Duration(DefaultRetryWait),
		RetryMaxWait: config.Duration(DefaultRetryMaxWait),
		RateLimit:    "1/s",
		MaxBytes:     DefaultMaxBytes,
		Conditional:  true,
	}
}

// Validate reports mistakes under prefix (e.g. "http.").
func (o Options) Validate(prefix string, report pipeline.Reporter) {
	if o.Timeout <= 0 {
		report(prefix+"timeout", "must be more than 0")
	}
	if o.Retries < 0 || o.Retries > 10 {
		report(prefix+"retries", "must be between 0 and 10, got %d", o.Retries)
	}
	if o.RetryMaxWait < o.RetryWait {
		report(prefix+"retry_max_wait", "must not be less than retry_wait")
	}
	if _, err := ParseRate(o.RateLimit); err != nil {
		report(prefix+"rate_limit", "%v", err)
	}
	if o.MaxBytes < 1 {
		report(prefix+"max_bytes", "must be at least 1, got %d", o.MaxBytes)
	}
}

// Settings turns validated options into client settings.
func (o Options) Settings(clock pipeline.Clock) Settings {
	r, _ := ParseRate(o.RateLimit)
	return Settings{
		Timeout:      o.Timeout.D(),
		Retries:      o.Retries,
		RetryWait:    o.RetryWait.D(),
		RetryMaxWait: o.RetryMaxWait.D(),
		RateLimit:    r,
		MaxBytes:     o.MaxBytes,
		Conditional:  o.Conditional,
		Clock:        clock,
	}
}
