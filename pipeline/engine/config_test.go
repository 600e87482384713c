package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

type memOptions struct {
	Table    string `yaml:"table" required:"true"`
	Password string `yaml:"password" secret:"true"`
	Batch    int    `yaml:"batch"`
}

func (o *memOptions) Validate(report pipeline.Reporter) {
	if o.Batch < 0 {
		report("batch", "must not be negative")
	}
}

func init() {
	pipeline.RegisterSource("memory", pipeline.SourceSpec{
		Summary: "test source",
		Config:  func() any { return &memOptions{Batch: 10} },
		Build: func(context.Context, pipeline.Env, any) (pipeline.Source, error) {
			return newMemSource(10), nil
		},
	})
	pipeline.RegisterSink("recorder", pipeline.SinkSpec{
		Summary: "test sink",
		Config:  func() any { return &struct{}{} },
		Build:   func(context.Context, pipeline.Env, any) (pipeline.Sink, error) { return &recSink{}, nil },
	})
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadInterpolatesEnvAndReadsSecretFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.yaml":   testMapping,
		"password": "s3cret\n",
		"c.yaml": `store: { driver: sqlite, path: "${STATE_DIR:-state}/egov.db" }
http: { listen: "${LISTEN}" }
sources:
  - name: motcua
    type: memory
    table: "${TABLE:-HoSo}"
    password_file: password
    batch: ${BATCH}
    mapping: m.yaml
    schedule: "*/30 * * * * *"
sinks:
  - { name: rec, type: recorder }
routes:
  - { to: [rec] }
`})
	env := map[string]string{"LISTEN": "127.0.0.1:0", "BATCH": "250"}
	data, _ := os.ReadFile(filepath.Join(dir, "c.yaml"))
	cfg, err := Load(filepath.Join(dir, "c.yaml"), data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	opts := cfg.Sources[0].Options.(*memOptions)
	if opts.Table != "HoSo" || opts.Password != "s3cret" || opts.Batch != 250 {
		t.Fatalf("options = %+v", opts)
	}
	if cfg.HTTP.Listen != "127.0.0.1:0" || cfg.Store.Path != filepath.Join(dir, "state", "egov.db") {
		t.Fatalf("http %q, store path %q", cfg.HTTP.Listen, cfg.Store.Path)
	}
	if cfg.Zone.String() != "Asia/Ho_Chi_Minh" || cfg.Sources[0].Location.String() != "Asia/Ho_Chi_Minh" {
		t.Fatalf("zone %s / %s, want Asia/Ho_Chi_Minh by default", cfg.Zone, cfg.Sources[0].Location)
	}
}

func TestLoadReportsAllMistakesWithPlaces(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.yaml": testMapping,
		"c.yaml": `timezone: Asia/Saigon_Typo
store: { driver: sqlite }
sources:
  - name: motcua
    type: memory
    table: HoSo
    batch: -1
    mapping: missing.yaml
    schedule: "61 * * * *"
  - name: motcua
    type: oracle
    mapping: m.yaml
    password: ${UNSET_SECRET}
sinks:
  - { name: rec, type: recorder, colour: red }
routes:
  - { to: [rec, nowhere] }
`})
	file := filepath.Join(dir, "c.yaml")
	data, _ := os.ReadFile(file)
	_, err := Load(file, data, func(string) (string, bool) { return "", false })
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want config.Errors, got %v", err)
	}
	want := []string{
		`c.yaml:1:11: timezone: unknown time zone "Asia/Saigon_Typo"`,
		`c.yaml:7:12: sources[0].batch: must not be negative`,
		`c.yaml:8:14: sources[0].mapping: cannot read mapping`,
		`c.yaml:9:15: sources[0].schedule: bad cron expression "61 * * * *"`,
		`c.yaml:10:11: sources[1].name: another source is already named "motcua"`,
		`c.yaml:11:11: sources[1].type: unknown source type "oracle" (known: `,
		`c.yaml:13:15: sources[1].password: environment variable UNSET_SECRET is not set`,
		`c.yaml:15:34: sinks[0].colour: unknown field "colour"`,
		`c.yaml:17:17: routes[0].to[1]: no sink is named "nowhere"`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, file+strings.TrimPrefix(w, "c.yaml")) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(errs), len(want), got)
	}
}

func TestSinkDeliveryOverridesTopLevelAndWiresRateLimits(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.yaml": testMapping,
		"c.yaml": `store: { driver: sqlite, path: state.db }
delivery: { max_attempts: 7, backoff_max: 1m }
sources:
  - { name: motcua, type: memory, table: HoSo, mapping: m.yaml }
sinks:
  - { name: fast, type: recorder }
  - name: zalo
    type: recorder
    delivery: { rate: 20, burst: 5, concurrency: 8, max_age: 24h }
routes:
  - { to: [fast, zalo] }
`})
	cfg, err := LoadFile(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fast, zalo := cfg.DeliveryFor("fast"), cfg.DeliveryFor("zalo")
	if fast.MaxAttempts != 7 || fast.Concurrency != 4 || fast.Rate != 0 || fast.MaxAge.D() != 72*time.Hour {
		t.Fatalf("fast = %+v: want top-level max_attempts and defaults", fast)
	}
	if zalo.MaxAttempts != 7 || zalo.BackoffMax.D() != time.Minute || zalo.Rate != 20 || zalo.Burst != 5 || zalo.Concurrency != 8 || zalo.MaxAge.D() != 24*time.Hour {
		t.Fatalf("zalo = %+v: want its own rate, burst, concurrency, max_age over the top-level block", zalo)
	}
	d, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Dispatcher.init()
	if l := d.Dispatcher.limiters["zalo"]; l.Limit() != 20 || l.Burst() != 5 {
		t.Fatalf("zalo limiter = %v/%d, want 20/5", l.Limit(), l.Burst())
	}
	if l := d.Dispatcher.limiters["fast"]; l.Limit() != rate.Inf {
		t.Fatalf("fast limiter = %v, want unlimited", l.Limit())
	}

	bad := strings.Replace(string(mustReadFile(t, filepath.Join(dir, "c.yaml"))), "concurrency: 8", "concurrency: -1", 1)
	if _, err := Load(filepath.Join(dir, "c.yaml"), []byte(bad), nil); err == nil || !strings.Contains(err.Error(), "sinks[1].delivery.concurrency: must be between 1 and 256") {
		t.Fatalf("bad concurrency: %v", err)
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// specOptions declares its checks as spec tags; its Validate repeats one of them.
type specOptions struct {
	Mode  string `yaml:"mode" enum:"fast,gentle"`
	Pool  int    `yaml:"pool" min:"1" max:"8"`
	Again bool   `yaml:"again"`
}

func (o *specOptions) Validate(report pipeline.Reporter) {
	if o.Again {
		config.Check(o, report)
	}
}

func init() {
	pipeline.AddSink("spec-tagged", "test sink with spec tags", func() *specOptions { return &specOptions{Pool: 2} },
		func(context.Context, pipeline.Env, *specOptions) (pipeline.Sink, error) { return &recSink{}, nil })
}

// TestConnectorSpecTagsAreChecked: the engine reports values outside a connector's
// enum and range tags with their line, once, whether or not its Validate checks them
// too.
func TestConnectorSpecTagsAreChecked(t *testing.T) {
	for _, again := range []bool{false, true} {
		dir := writeFiles(t, map[string]string{"m.yaml": testMapping})
		cfg := "sources: []\nsinks:\n  - name: s\n    type: spec-tagged\n    mode: turbo\n    pool: 9\n    again: " +
			map[bool]string{false: "false", true: "true"}[again] + "\nroutes: [{to: [s]}]\n"
		_, err := Load(filepath.Join(dir, "c.yaml"), []byte(cfg), nil)
		var errs config.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("again=%v: %v", again, err)
		}
		got := errs.Error()
		for _, want := range []string{
			`c.yaml:5:11: sinks[0].mode: unknown mode "turbo" (want fast or gentle)`,
			`c.yaml:6:11: sinks[0].pool: must be between 1 and 8, got 9`,
		} {
			if strings.Count(got, want) != 1 {
				t.Errorf("again=%v: want %q once in\n%s", again, want, got)
			}
		}
	}
}
