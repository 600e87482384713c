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
)

// Options are the `type: nats` keys of a sink in the config file.
//
// At most one way of authenticating is given: credentials_file, token (or
// token_file), or user with password (or password_file).
type Options struct {
	URL             string          `yaml:"url" doc:"The server, or a comma-separated list of servers of one cluster: nats://host:4222, tls://host:4222 (ws:// and wss:// too). Credentials in the URL work but are better kept in user/password_file or token_file."`
	Stream          string          `yaml:"stream" doc:"The JetStream stream that stores the events."`
	SubjectPrefix   string          `yaml:"subject_prefix" doc:"Starts every subject: events go to <prefix>.<entity>.<agency> (agency lower-cased, diacritics removed)."`
	CredentialsFile string          `yaml:"credentials_file" doc:"A NATS .creds file (user JWT and nkey seed), relative to the config file. One way to authenticate."`
	Token           string          `yaml:"token" secret:"true" doc:"Authenticates with a token. One way to authenticate."`
	User            string          `yaml:"user" doc:"Authenticates with a user name and password. One way to authenticate."`
	Password        string          `yaml:"password" secret:"true" doc:"The password of user."`
	TLSCAFile       string          `yaml:"tls_ca_file" default:"the system's roots" doc:"A PEM file of CAs to trust for tls:// servers, relative to the config file."`
	DuplicateWindow config.Duration `yaml:"duplicate_window" doc:"How long JetStream remembers event ids to drop redeliveries (for a stream the sink creates). A redelivery after a longer outage is stored again; consumers deduplicate it by the event id."`
	MaxAge          config.Duration `yaml:"max_age" doc:"How long a stream the sink creates keeps events; 0 keeps them until removed."`
	Replicas        int             `yaml:"replicas" min:"1" max:"5" doc:"Copies of a stream the sink creates, in a JetStream cluster."`
	PublishTimeout  config.Duration `yaml:"publish_timeout" doc:"Bounds each publish (until JetStream acknowledges it) and each connection attempt."`
	// An existing stream is used as it is, after checking that it stores the
	// sink's subjects.
	CreateStream bool `yaml:"create_stream" doc:"Create the stream when it does not exist. duplicate_window, max_age and replicas apply only to a stream the sink creates."`
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
	config.Check(o, report)
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
