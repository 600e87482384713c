package webhook

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// DefaultTimeout bounds one delivery when the config does not say: long enough for
// a loaded dashboard, short enough that a hung receiver does not hold a dispatcher
// worker.
const DefaultTimeout = 10 * time.Second

// Options are the `type: webhook` keys of a sink in the config file. The daemon
// decodes the common keys (name, type) itself.
//
// url is required; Validate checks it rather than a `required` tag, so that a key
// that is present but empty (url: "${IOC_URL}" with IOC_URL set to "") is caught too.
type Options struct {
	// Errors name only the URL's host: it may carry a token.
	URL     string            `yaml:"url" secret:"true" doc:"Receives one POST per event: an absolute http or https URL. Required. It may carry a token, so url_file can read it from a file, and errors show only its host." example:"https://ioc.example.gov.vn/events"`
	Secret  string            `yaml:"secret" secret:"true" doc:"The shared key that signs every request (X-Egov-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + \".\" + raw body)>). Without it requests are sent unsigned."`
	Timeout config.Duration   `yaml:"timeout" doc:"Bounds one delivery attempt: connecting, sending the body and reading the response status. A slower receiver is retried later."`
	Headers map[string]string `yaml:"headers" doc:"Extra static headers sent with every request (an API key the receiver's gateway wants); values may use ${VAR}. They cannot replace Content-Type, Idempotency-Key, User-Agent, X-Egov-Signature or the HTTP framing headers." example:"{ X-Api-Key: ${IOC_API_KEY} }"`
	CAFile  string            `yaml:"ca_file" default:"the system's roots" doc:"A PEM bundle of certificate authorities trusted for an https receiver instead of the system's (a private CA), relative to the config file."`
}

// NewOptions returns options with every default set.
func NewOptions() *Options {
	return &Options{Timeout: config.Duration(DefaultTimeout)}
}

// reservedHeaders are set by the sink (or by HTTP itself) on every request; letting
// the config replace them would break signing, deduplication or framing.
var reservedHeaders = map[string]bool{
	"Content-Type":      true,
	"Idempotency-Key":   true,
	"User-Agent":        true,
	SignatureHeader:     true,
	"Content-Length":    true,
	"Content-Encoding":  true,
	"Transfer-Encoding": true,
	"Connection":        true,
	"Host":              true,
}

var _ pipeline.Validator = (*Options)(nil)

// Validate reports every semantic mistake, with field paths relative to the sink.
// Messages never quote the URL: it may carry a token.
func (o *Options) Validate(report pipeline.Reporter) {
	config.Check(o, report)
	if _, problem := parseURL(o.URL); problem != "" {
		report("url", "%s", problem)
	}
	if o.Timeout <= 0 {
		report("timeout", "must be more than 0, such as 10s")
	}
	names := make([]string, 0, len(o.Headers))
	for name := range o.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, name := range names {
		field := "headers." + name
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !validHeaderName(name):
			report(field, "%q is not a valid header name: use letters, digits and '-'", name)
		case reservedHeaders[canon]:
			report(field, "%s is set by the webhook sink itself and cannot be overridden", canon)
		case seen[canon] != "":
			report(field, "repeats header %q: header names are case-insensitive", seen[canon])
		case !validHeaderValue(o.Headers[name]):
			report(field, "value must not contain line breaks or other control characters")
		}
		if seen[canon] == "" {
			seen[canon] = name
		}
	}
	if o.CAFile != "" && strings.TrimSpace(o.CAFile) == "" {
		report("ca_file", "is blank: give a PEM file path or leave ca_file out")
	}
}

// parseURL checks a receiver URL and returns it parsed, or a problem that does not
// quote the URL.
func parseURL(raw string) (*url.URL, string) {
	if strings.TrimSpace(raw) == "" {
		return nil, "is required: give url or url_file"
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL, token and all
		}
		return nil, "is not a valid URL: " + err.Error()
	}
	if !u.IsAbs() || u.Hostname() == "" {
		return nil, "must be an absolute http or https URL, such as https://ioc.example.gov.vn/events"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "scheme " + `"` + u.Scheme + `"` + " is not supported: want http or https"
	}
	return u, ""
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters (tab aside): a line break in a value
// would let a config smuggle extra headers.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
