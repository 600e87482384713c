package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInterpolate(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"HOST": "db.local", "EMPTY": ""}[k]
		return v, ok
	}
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${HOST}:5432", want: "db.local:5432"},
		{in: "${PORT:-5432}", want: "5432"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${EMPTY}", want: ""},
		{in: "cost $$5 and $HOME", want: "cost $5 and $HOME"},
		{in: "${MISSING}", err: "environment variable MISSING is not set"},
		{in: "${HOST", err: "unclosed ${"},
		{in: "${1BAD}", err: `bad variable name "1BAD"`},
	}
	for _, tt := range tests {
		got, err := Interpolate(tt.in, env)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Interpolate(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Interpolate(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

type inner struct {
	Column string `yaml:"column" required:"true"`
	Key    string `yaml:"key" required:"true"`
}

type opts struct {
	Name     string            `yaml:"name" required:"true"`
	Password string            `yaml:"password" secret:"true"`
	Batch    int               `yaml:"batch"`
	Lag      Duration          `yaml:"lag"`
	Cursor   inner             `yaml:"cursor"`
	Tags     []string          `yaml:"tags"`
	Labels   map[string]string `yaml:"labels"`
	Enabled  *bool             `yaml:"enabled"`
}

func decode(t *testing.T, src string, env map[string]string) (opts, Errors) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("p@ss\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(filepath.Join(dir, "c.yaml"))
	d.Env = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var o opts
	if root := d.Parse([]byte(src)); root != nil {
		d.Decode(root, "", &o)
	}
	errs := d.Errs()
	for _, e := range errs {
		e.File = "c.yaml" // the temp folder differs per run
	}
	return o, errs
}

func TestDecodeGoodInput(t *testing.T) {
	o, errs := decode(t, `name: motcua
password_file: secret.txt
batch: ${BATCH}
lag: 5s
cursor: { column: NgayCapNhat, key: MaHoSo }
tags: [a, b]
labels: { tỉnh: Long An }
enabled: false
`, map[string]string{"BATCH": "500"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if o.Name != "motcua" || o.Password != "p@ss" || o.Batch != 500 || o.Lag.D() != 5*time.Second ||
		o.Cursor.Key != "MaHoSo" || len(o.Tags) != 2 || o.Labels["tỉnh"] != "Long An" || o.Enabled == nil || *o.Enabled {
		t.Fatalf("decoded %+v", o)
	}
}

func TestDecodeReportsEveryMistake(t *testing.T) {
	_, errs := decode(t, `name: motcua
password: x
password_file: missing.txt
batch: many
lag: 5
cursor: { column: C, kee: K }
tags: a
extra: 1
name: again
`, nil)
	want := []string{
		`c.yaml:3:16: password_file: cannot read secret file`,
		`c.yaml:4:8: batch: want a whole number, got "many"`,
		`c.yaml:5:6: lag: bad duration "5": want a number with a unit`,
		`c.yaml:6:9: cursor.key: required field is missing`,
		`c.yaml:6:22: cursor.kee: unknown field "kee" (did you mean "key"?)`,
		`c.yaml:7:7: tags: want a list, got "a"`,
		`c.yaml:8:1: extra: unknown field "extra"`,
		`c.yaml:9:1: name: key appears twice`,
		`c.yaml:1:1: password: give password or password_file, not both`,
	}
	got := errs.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, got)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(errs), len(want), got)
	}
}

func TestParseSyntaxErrorHasLine(t *testing.T) {
	d := NewDecoder("c.yaml")
	if d.Parse([]byte("name: a\n  bad: [\n")) != nil {
		t.Fatal("parsed broken YAML")
	}
	var errs Errors
	if !errors.As(d.Err(), &errs) || errs[0].Line == 0 {
		t.Fatalf("syntax error without a line: %v", d.Err())
	}
}

// TestSecretMapHasNoFileForm: a secret map (headers) is redacted but not read from
// a file, so headers_file is an unknown key, as the schema says.
func TestSecretMapHasNoFileForm(t *testing.T) {
	d := NewDecoder("c.yaml")
	var o struct {
		Headers map[string]string `yaml:"headers" secret:"true"`
	}
	if root := d.Parse([]byte("headers_file: h.txt\n")); root != nil {
		d.Decode(root, "", &o)
	}
	if got := d.Errs().Error(); !strings.Contains(got, `c.yaml:1:1: headers_file: unknown field "headers_file"`) {
		t.Errorf("errors = %s", got)
	}
}
