package pgtable

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// decode decodes a sink's own keys the way the daemon does, then validates, and
// returns the options and every reported mistake as "path: message".
func decode(t *testing.T, yml string) (*Options, []string) {
	t.Helper()
	d := config.NewDecoder(filepath.Join(t.TempDir(), "egov-bridge.yaml"))
	d.Env = func(string) (string, bool) { return "", false }
	o := NewOptions()
	d.Decode(d.Parse([]byte(yml)), "sinks[0]", o)
	o.Validate(func(field, format string, args ...any) { d.Errorf("sinks[0]."+field, format, args...) })
	var errs []string
	for _, e := range d.Errs() {
		errs = append(errs, e.Path+": "+e.Msg)
	}
	return o, errs
}

func TestOptionsDefaults(t *testing.T) {
	o, errs := decode(t, `dsn: "postgres://egov@bi-db:5432/bi?sslmode=require"`)
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	want := Options{DSN: "postgres://egov@bi-db:5432/bi?sslmode=require", Schema: "egov_sync",
		EventsTable: "events", StateTablePrefix: "current_", MaxOpenConns: 4}
	if !reflect.DeepEqual(*o, want) {
		t.Fatalf("got %+v\nwant %+v", *o, want)
	}
}

func TestOptionsReadDSNFromFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(secret, []byte("host=bi-db user=egov password='p w' dbname=bi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, errs := decode(t, "dsn_file: "+secret+"\nschema: bi_long_an\nmax_open_conns: 2\n")
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if o.DSN != "host=bi-db user=egov password='p w' dbname=bi" || o.Schema != "bi_long_an" || o.MaxOpenConns != 2 {
		t.Fatalf("got %+v", o)
	}
}

func TestOptionsMistakesAreReportedWithTheirField(t *testing.T) {
	tests := []struct {
		name, yml string
		want      []string // "path: message fragment"
	}{
		{"dsn missing", `schema: bi`, []string{"sinks[0].dsn: is required"}},
		{"dsn empty", `dsn: ""`, []string{"sinks[0].dsn: is required"}},
		{"dsn malformed, password hidden", `dsn: "postgres://u:hunter2@db:port/bi"`, []string{"sinks[0].dsn: "}},
		{"schema with capitals", "dsn: postgres://db/bi\nschema: EgovSync", []string{`sinks[0].schema: "EgovSync" is not a plain name`}},
		{"schema quoted injection", "dsn: postgres://db/bi\nschema: 'a\"; drop'", []string{"sinks[0].schema: ", "not a plain name"}},
		{"events table too long", "dsn: postgres://db/bi\nevents_table: " + strings.Repeat("e", 60), []string{"sinks[0].events_table: ", "too long"}},
		{"prefix empty", "dsn: postgres://db/bi\nstate_table_prefix: ''", []string{"sinks[0].state_table_prefix: must not be empty"}},
		{"pool", "dsn: postgres://db/bi\nmax_open_conns: 0", []string{"sinks[0].max_open_conns: must be at least 1"}},
		{"unknown key", "dsn: postgres://db/bi\ntable: x", []string{`sinks[0].table: unknown field "table"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decode(t, tt.yml)
			all := strings.Join(errs, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("missing %q in\n%s", w, all)
				}
			}
			if strings.Contains(all, "hunter2") {
				t.Errorf("password in the message: %s", all)
			}
			if len(errs) != 1 {
				t.Errorf("%d errors, want 1:\n%s", len(errs), all)
			}
		})
	}
}
