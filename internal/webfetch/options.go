package webfetch

import (
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Options are the `http:` keys of a source that reads web pages: how gently and
// how patiently it asks. Every field has a default (NewOptions).
type Options struct {
	Timeout      config.Duration `yaml:"timeout" doc:"Bounds each attempt, from connecting to the last byte of the answer."`
	Retries      int             `yaml:"retries" min:"0" max:"10" doc:"More attempts after a timeout, a transport error, a 429 or a 5xx answer (never after another 4xx); 0 turns retries off."`
	RetryWait    config.Duration `yaml:"retry_wait" doc:"The first wait between attempts; it doubles (with jitter) up to retry_max_wait."`
	RetryMaxWait config.Duration `yaml:"retry_max_wait" doc:"The longest wait between attempts, at least retry_wait; a server's Retry-After is honoured up to it."`
	RateLimit    string          `yaml:"rate_limit" doc:"The most requests sent to one host, retries included: 1/s, 30/m, 1/5s, or a number per second; 0 turns the limit off."`
	MaxBytes     int64           `yaml:"max_bytes" min:"1" doc:"The largest answer read, in bytes; a larger one fails the poll."`
	// An unchanged page then costs the server a 304 and the source no parsing.
	Conditional bool `yaml:"conditional" doc:"Sends If-None-Match / If-Modified-Since when the server gave an ETag or Last-Modified; a 304 answer reuses the kept one."`
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

// Validate reports what the tags cannot say under prefix (e.g. "http."); the
// range tags are checked by config.Check on the options that embed these.
func (o Options) Validate(prefix string, report pipeline.Reporter) {
	if o.Timeout <= 0 {
		report(prefix+"timeout", "must be more than 0")
	}
	if o.RetryMaxWait < o.RetryWait {
		report(prefix+"retry_max_wait", "must not be less than retry_wait")
	}
	if _, err := ParseRate(o.RateLimit); err != nil {
		report(prefix+"rate_limit", "%v", err)
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
