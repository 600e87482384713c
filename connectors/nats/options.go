package natssink

import (
	"net/url"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Defaults for the `type: nats` sink.
const (
	DefaultURL             = "nats://127.0.0.1:4222"
	DefaultStream          = "EGOV_EVENTS"
	DefaultSubjectPrefix   = "egov.events"
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultMaxAge          = 30 * 24 * time.Hour
	DefaultReplicas        = 1
	DefaultPublishTimeout  = 5 * time.Second
	// MaxReplicas is JetStream's limit on copies of a stream.
	MaxReplicas = 5
)

// Options are the `type: nats` keys of a sink in the config file.
//
// At most one way of authenticating is given: credentials_file, token (or
// token_file), or user with password (or password_file).
type Options struct {
	// URL is the server, or a comma-separated list of servers of one cluster:
	// nats://host:4222, tls://host:4222 (ws:// and wss:// work too). Credentials in
	// the URL work but are better kept in user/password_file or token_file.
	URL string `yaml:"url"`
	// Stream is the JetStream stream that stores the events.
	Stream string `yaml:"stream"`
	// SubjectPrefix starts every subject: events go to <prefix>.<entity>.<agency>.
	SubjectPrefix string `yaml:"subject_prefix"`
	// CredentialsFile is a NATS .creds file (user JWT and nkey seed), relative to
	// the config file.
	CredentialsFile string `yaml:"credentials_file"`
	// Token authenticates with a token; token_file reads it from a file.
	Token string `yaml:"token" secret:"true"`
	// User and Password authenticate with a user name; password_file reads the
	// password from a file.
	User     string `yaml:"user"`
	Password string `yaml:"password" secret:"true"`
	// TLSCAFile is a PEM file of CAs to trust for tls:// servers, relative to the
	// config file; empty means the system's roots.
	TLSCAFile string `yaml:"tls_ca_file"`
	// DuplicateWindow is how long JetStream remembers event ids to drop
	// redeliveries (the stream's duplicate_window). A redelivery after a longer
	// outage is stored again; consumers deduplicate it by the event id.
	DuplicateWindow config.Duration `yaml:"duplicate_window"`
	// MaxAge is how long the stream keeps events; 0 keeps them until removed.
	MaxAge config.Duration `yaml:"max_age"`
	// Replicas is the number of copies of the stream in a JetStream cluster.
	Replicas int `yaml:"replicas"`
	// PublishTimeout bounds each publish (until JetStream acknowledges it) and each
	// connection attempt.
	PublishTimeout config.Duration `yaml:"publish_timeout"`
	// CreateStream creates the stream when it does not exist. DuplicateWindow,
	// MaxAge and Replicas apply only to a stream the sink creates; an existing
	// stream is used as it is, after checking that it stores the sink's subjects.
	CreateStream bool `yaml:"create_stream"`
}

// NewOptions returns options with every default set.
func NewOptions() *Options {
	return &Options{
		URL:             DefaultURL,
		Stream:          DefaultStream,
		SubjectPrefix:   DefaultSubjectPrefix,
		DuplicateWindow: config.Duration(DefaultDuplicateWindow),
		MaxAge:          config.Duration(DefaultMaxAge),
		Replicas:        DefaultReplicas,
		PublishTimeout:  config.Duration(DefaultPublishTimeout),
		CreateStream:    true,
	}
}

var _ pipeline.Validator = (*Options)(nil)

// Validate reports every semantic mistake, with field paths relative to the sink.
// Messages never quote a secret: URLs are shown with their password redacted.
func (o *Options) Validate(report pipeline.Reporter) {
	if strings.TrimSpace(o.URL) == "" {
		report("url", "is required, e.g. %s", DefaultURL)
	} else {
		for _, u := range strings.Split(o.URL, ",") {
			if msg := checkURL(strings.TrimSpace(u)); msg != "" {
				report("url", "%s", msg)
			}
		}
	}
	if msg := checkStreamName(o.Stream); msg != "" {
		report("stream", "%s", msg)
	}
	if msg := checkPrefix(o.SubjectPrefix); msg != "" {
		report("subject_prefix", "%s", msg)
	}

	var auth []string
	if o.CredentialsFile != "" {
		auth = append(auth, "credentials_file")
	}
	if o.Token != "" {
		auth = append(auth, "token")
	}
	if o.User != "" || o.Password != "" {
		auth = append(auth, "user/password")
	}
	if len(auth) > 1 {
		report(strings.Split(auth[1], "/")[0], "give one way to authenticate, not %s", strings.Join(auth, " and "))
	}
	if o.User != "" && o.Password == "" {
		report("password", "is required with user (give password or password_file)")
	}
	if o.Password != "" && o.User == "" {
		report("user", "is required with password")
	}

	if o.DuplicateWindow <= 0 {
		report("duplicate_window", "must be more than 0: it is how long JetStream drops a redelivered event id")
	}
	if o.MaxAge > 0 && o.DuplicateWindow > o.MaxAge {
		report("duplicate_window", "must not be longer than max_age (%s)", o.MaxAge.D())
	}
	if o.Replicas < 1 || o.Replicas > MaxReplicas {
		report("replicas", "must be between 1 and %d, got %d", MaxReplicas, o.Replicas)
	}
	if o.PublishTimeout <= 0 {
		report("publish_timeout", "must be more than 0")
	}
}

func checkURL(s string) string {
	if s == "" {
		return "has an empty entry in its comma-separated list"
	}
	u, err := url.Parse(s)
	if err != nil {
		// url's error quotes the input, which may hold a password.
		return "is not a URL such as nats://host:4222"
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return "\"" + u.Redacted() + "\" must start with nats://, tls://, ws:// or wss://"
	}
	if u.Hostname() == "" {
		return "\"" + u.Redacted() + "\" has no host"
	}
	return ""
}

// checkStreamName keeps to the characters every JetStream API subject and file
// system accepts.
func checkStreamName(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > 255 {
		return "is longer than 255 characters"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return "\"" + s + "\" is not a valid stream name: use letters, digits, '_' and '-'"
		}
	}
	return ""
}
