package webhook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// decodeOptions decodes a sink's keys the way the daemon does: strictly, then
// Validate, with every mistake reported against its line.
func decodeOptions(t *testing.T, src string) (*Options, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ioc.secret"), []byte("secret-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := config.NewDecoder(filepath.Join(dir, "c.yaml"))
	d.Env = func(k string) (string, bool) {
		v, ok := map[string]string{"EMPTY": "", "IOC_URL": "https://ioc.example.gov.vn/events"}[k]
		return v, ok
	}
	o := NewOptions()
	if root := d.Parse([]byte(src)); root != nil {
		d.Decode(root, "", o)
		o.Validate(func(field, format string, args ...any) { d.Errorf(field, format, args...) })
	}
	errs := d.Errs()
	for _, e := range errs {
		e.File = "c.yaml" // the temp folder differs per run
	}
	if len(errs) == 0 {
		return o, ""
	}
	return o, errs.Error()
}

func TestOptionsDecode(t *testing.T) {
	o, errs := decodeOptions(t, `url: ${IOC_URL}
secret_file: ioc.secret
timeout: 3s
headers: { X-Api-Key: k-123, Authorization: Bearer t }
`)
	if errs != "" {
		t.Fatal(errs)
	}
	if o.URL != "https://ioc.example.gov.vn/events" || o.Secret != "secret-from-a-file" || o.Timeout.D() != 3*time.Second ||
		o.Headers["X-Api-Key"] != "k-123" {
		t.Fatalf("decoded %+v", o)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, errs := decodeOptions(t, "url: http://10.0.0.5:8080/hook\n")
	if errs != "" {
		t.Fatal(errs)
	}
	if o.Timeout.D() != DefaultTimeout || o.Secret != "" {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestOptionsMistakes(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"missing url", "timeout: 5s\n", []string{"c.yaml:1:1: url: is required"}},
		{"empty url from the environment", "url: ${EMPTY}\n", []string{"url: is required"}},
		{"relative url", "url: /events\n", []string{"c.yaml:1:6: url: must be an absolute http or https URL"}},
		{"url without a host", "url: https://\n", []string{"url: must be an absolute"}},
		{"ftp url", "url: ftp://files.example.gov.vn/in\n", []string{`url: scheme "ftp" is not supported: want http or https`}},
		{"unparseable url", "url: https://user:pw-secret@host:port/\n", []string{"url: is not a valid URL"}},
		{"zero timeout", "url: https://h/\ntimeout: 0s\n", []string{"c.yaml:2:10: timeout: must be more than 0"}},
		{"timeout without unit", "url: https://h/\ntimeout: 10\n", []string{"timeout: bad duration"}},
		{"secret and secret_file", "url: https://h/\nsecret: a\nsecret_file: ioc.secret\n", []string{"give secret or secret_file, not both"}},
		{"unknown key", "url: https://h/\nsecrt: x\n", []string{`unknown field "secrt" (did you mean "secret"?)`}},
		{"header overrides Idempotency-Key", "url: https://h/\nheaders:\n  Idempotency-Key: fixed\n",
			[]string{"c.yaml:3:20: headers.Idempotency-Key: Idempotency-Key is set by the webhook sink itself and cannot be overridden"}},
		{"header overrides, any case", "url: https://h/\nheaders: { x-egov-signature: a, content-type: text/plain, user-agent: me }\n",
			[]string{"headers.x-egov-signature: X-Egov-Signature is set", "headers.content-type: Content-Type is set", "headers.user-agent: User-Agent is set"}},
		{"header name with a space", "url: https://h/\nheaders: { \"X Key\": v }\n", []string{`headers.X Key: "X Key" is not a valid header name`}},
		{"header value with a line break", "url: https://h/\nheaders: { X-Key: \"a\\r\\nX-Evil: 1\" }\n", []string{"headers.X-Key: value must not contain line breaks"}},
		{"header twice in different case", "url: https://h/\nheaders: { X-Key: a, x-key: b }\n", []string{`headers.x-key: repeats header "X-Key"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeOptions(t, tt.src)
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("missing %q in\n%s", w, errs)
				}
			}
			if strings.Count(errs, "\n")+1 != len(tt.want) {
				t.Errorf("%d errors, want %d:\n%s", strings.Count(errs, "\n")+1, len(tt.want), errs)
			}
			if strings.Contains(errs, "pw-secret") {
				t.Errorf("a URL's password is quoted in\n%s", errs)
			}
		})
	}
}

func TestRegisteredAsWebhook(t *testing.T) {
	spec, ok := pipeline.LookupSink("webhook")
	if !ok {
		t.Fatal(`sink type "webhook" is not registered`)
	}
	cfg, ok := spec.Config().(*Options)
	if !ok || cfg.Timeout.D() != DefaultTimeout {
		t.Fatalf("Config() = %#v, want *Options with defaults", spec.Config())
	}

	if _, err := spec.Build(context.Background(), pipeline.Env{Name: "ioc"}, cfg); !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "url: is required") {
		t.Fatalf("Build without url = %v, want a permanent invalid-options error", err)
	}

	cfg.URL = "https://ioc.example.gov.vn/events"
	s, err := spec.Build(context.Background(), pipeline.Env{Name: "ioc"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
