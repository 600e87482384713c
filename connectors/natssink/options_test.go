package natssink

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// decode decodes a sink's own keys the way the daemon does, then validates, and
// returns the options and every reported mistake as "path: message".
func decode(t *testing.T, dir, yml string) (*Options, []string) {
	t.Helper()
	d := config.NewDecoder(filepath.Join(dir, "egov-bridge.yaml"))
	d.Env = func(string) (string, bool) { return "", false }
	n := d.Parse([]byte(yml))
	o := NewOptions()
	d.Decode(n, "sinks[0]", o)
	o.Validate(func(field, format string, args ...any) { d.Errorf("sinks[0]."+field, format, args...) })
	var errs []string
	for _, e := range d.Errs() {
		errs = append(errs, e.Path+": "+e.Msg)
	}
	return o, errs
}

func TestOptionsDefaults(t *testing.T) {
	o, errs := decode(t, t.TempDir(), `{}`)
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	want := Options{
		URL: "nats://127.0.0.1:4222", Stream: "EGOV_EVENTS", SubjectPrefix: "egov.events",
		DuplicateWindow: config.Duration(2 * time.Minute), MaxAge: config.Duration(720 * time.Hour),
		Replicas: 1, PublishTimeout: config.Duration(5 * time.Second), CreateStream: true,
	}
	if !reflect.DeepEqual(*o, want) {
		t.Fatalf("got  %+v\nwant %+v", *o, want)
	}
}

func TestOptionsReadSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nats-password"), []byte("pw-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, errs := decode(t, dir, `
url: nats://nats-1:4222, nats://nats-2:4222
user: egov
password_file: nats-password
stream: EGOV_TEST
subject_prefix: tinh.events
create_stream: false
`)
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if o.Password != "pw-s3cret" || o.User != "egov" || o.CreateStream || o.SubjectPrefix != "tinh.events" {
		t.Fatalf("got %+v", *o)
	}
}

func TestValidateRejectsMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, yml, field, msg string
	}{
		{"prefix with a space", `subject_prefix: "egov events"`, "subject_prefix", "no spaces or wildcards"},
		{"prefix with *", `subject_prefix: "egov.*"`, "subject_prefix", "no spaces or wildcards"},
		{"prefix with >", `subject_prefix: "egov.>"`, "subject_prefix", "no spaces or wildcards"},
		{"prefix with an empty token", `subject_prefix: "egov..events"`, "subject_prefix", "empty token"},
		{"empty prefix", `subject_prefix: ""`, "subject_prefix", "must not be empty"},
		{"stream with a dot", `stream: EGOV.EVENTS`, "stream", "not a valid stream name"},
		{"http url", `url: http://nats:4222`, "url", "must start with nats://"},
		{"empty entry in url list", `url: "nats://a:4222,,nats://b:4222"`, "url", "empty entry"},
		{"token and user", "token: t0ken-abc\nuser: egov\npassword: pw-abcd", "user", "one way to authenticate"},
		{"user without password", `user: egov`, "password", "required with user"},
		{"password without user", `password: pw-abcd`, "user", "required with password"},
		{"no duplicate window", `duplicate_window: 0s`, "duplicate_window", "more than 0"},
		{"window longer than max age", "duplicate_window: 1h\nmax_age: 30m", "duplicate_window", "max_age"},
		{"no replicas", `replicas: 0`, "replicas", "between 1 and 5"},
		{"too many replicas", `replicas: 7`, "replicas", "between 1 and 5"},
		{"no publish timeout", `publish_timeout: 0s`, "publish_timeout", "more than 0"},
		{"a typo", `subjet_prefix: x`, "subjet_prefix", `did you mean "subject_prefix"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := decode(t, t.TempDir(), tc.yml)
			for _, e := range errs {
				if strings.HasPrefix(e, "sinks[0]."+tc.field+": ") && strings.Contains(e, tc.msg) {
					return
				}
			}
			t.Fatalf("want an error on %s containing %q, got %v", tc.field, tc.msg, errs)
		})
	}
}

func TestValidateNeverQuotesAPassword(t *testing.T) {
	_, errs := decode(t, t.TempDir(), `url: "http://alice:pw-s3cret@nats:4222,nats://bob:pw-0ther@"`)
	if len(errs) != 2 {
		t.Fatalf("want two url errors, got %v", errs)
	}
	for _, e := range errs {
		if strings.Contains(e, "s3cret") || strings.Contains(e, "0ther") {
			t.Fatalf("error quotes a password: %s", e)
		}
	}
}
