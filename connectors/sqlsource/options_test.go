package sqlsource

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// decode decodes a source's own keys the way the daemon does, then validates, and
// returns the options and every reported mistake as "path: message".
func decode(t *testing.T, yml string) (*Options, []string) {
	t.Helper()
	dir := t.TempDir()
	d := config.NewDecoder(filepath.Join(dir, "egov-bridge.yaml"))
	d.Env = func(string) (string, bool) { return "", false }
	n := d.Parse([]byte(yml))
	o := NewOptions()
	d.Decode(n, "sources[0]", o)
	o.Validate(func(field, format string, args ...any) { d.Errorf("sources[0]."+field, format, args...) })
	var errs []string
	for _, e := range d.Errs() {
		errs = append(errs, e.Path+": "+e.Msg)
	}
	return o, errs
}

func TestOptionsDefaults(t *testing.T) {
	o, errs := decode(t, `
driver: sqlserver
dsn: "sqlserver://reader:secret@db.cangiuoc.local?database=MotCua"
table: dbo.HoSo
cursor: { column: NgayCapNhat, key: MaHoSo }
`)
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	want := Options{
		Driver: "sqlserver", DSN: "sqlserver://reader:secret@db.cangiuoc.local?database=MotCua", Table: "dbo.HoSo",
		Cursor: CursorOptions{Column: "NgayCapNhat", Key: "MaHoSo"}, BatchSize: 1000,
		Lag: config.Duration(5 * time.Second), QueryTimeout: config.Duration(30 * time.Second),
		MaxOpenConns: 2, MaxIdleConns: 1, ConnMaxLifetime: config.Duration(5 * time.Minute),
	}
	if !reflect.DeepEqual(*o, want) {
		t.Fatalf("got %+v\nwant %+v", *o, want)
	}
}

func TestOptionsReadDSNFromFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "dsn")
	if err := os.WriteFile(secret, []byte("postgres://reader:s3cret@10.0.0.5/motcua\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, errs := decode(t, `
driver: postgres
dsn_file: `+secret+`
table: public.ho_so
cursor: { column: ngay_cap_nhat, key: ma_ho_so }
lookback: 10m
`)
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if o.DSN != "postgres://reader:s3cret@10.0.0.5/motcua" || o.Lookback.D() != 10*time.Minute {
		t.Fatalf("dsn %q lookback %s", o.DSN, o.Lookback.D())
	}
}

func TestOptionsMistakesAreReportedWithTheirField(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []string // "path: message fragment"
	}{
		{
			name: "unknown driver and key",
			yml:  "driver: oracle\ndsn: x\ntable: t\ncursor: {column: c, key: k}\nbatchsize: 5\n",
			want: []string{`sources[0].driver: unknown driver "oracle"`, `sources[0].batchsize: unknown field "batchsize" (did you mean "batch_size"?)`},
		},
		{
			name: "missing required",
			yml:  "table: t\n",
			want: []string{"sources[0].driver: is required", "sources[0].dsn: is required", "sources[0].cursor.column: is required", "sources[0].cursor.key: is required"},
		},
		{
			name: "rowversion on postgres, with lookback",
			yml:  "driver: postgres\ndsn: x\ntable: t\nlookback: 5m\ncursor: {column: c, key: k, kind: rowversion}\n",
			want: []string{"sources[0].cursor.kind: rowversion is a SQL Server column type; driver is postgres", "sources[0].lookback: does not apply to a rowversion cursor"},
		},
		{
			name: "unknown cursor kind",
			yml:  "driver: sqlserver\ndsn: x\ntable: t\ncursor: {column: c, key: k, kind: sequence}\n",
			want: []string{`sources[0].cursor.kind: unknown kind "sequence"`},
		},
		{
			name: "table and query",
			yml:  "driver: postgres\ndsn: x\ntable: t\nquery: SELECT 1\ncursor: {column: c, key: k}\n",
			want: []string{"sources[0].query: give table or query, not both"},
		},
		{
			name: "neither table nor query",
			yml:  "driver: postgres\ndsn: x\ncursor: {column: c, key: k}\n",
			want: []string{"sources[0].table: is required: give table or query"},
		},
		{
			name: "injection in the table name",
			yml:  "driver: postgres\ndsn: x\ntable: 'ho_so; DROP TABLE x'\ncursor: {column: c, key: k}\n",
			want: []string{"sources[0].table: \"ho_so; DROP TABLE x\": \"ho_so; DROP TABLE x\" is not a plain identifier"},
		},
		{
			name: "three-part table",
			yml:  "driver: sqlserver\ndsn: x\ntable: db.dbo.HoSo\ncursor: {column: c, key: k}\n",
			want: []string{"sources[0].table: \"db.dbo.HoSo\" has too many parts"},
		},
		{
			name: "bad cursor identifiers",
			yml:  "driver: sqlite\ndsn: x\ntable: t\ncursor: {column: 'a-b', key: 'a-b'}\n",
			want: []string{"sources[0].cursor.column: \"a-b\" is not a plain identifier", "sources[0].cursor.key: \"a-b\" is not a plain identifier", "sources[0].cursor.key: must differ from cursor.column"},
		},
		{
			name: "columns",
			yml:  "driver: sqlite\ndsn: x\ntable: t\ncolumns: [a, 'b c', A]\ncursor: {column: c, key: k}\n",
			want: []string{"sources[0].columns[1]: \"b c\" is not a plain identifier", "sources[0].columns[2]: column \"A\" is listed twice"},
		},
		{
			name: "query that is not a SELECT",
			yml:  "driver: postgres\ndsn: x\nquery: DELETE FROM t\ncursor: {column: c, key: k}\n",
			want: []string{"sources[0].query: must be a SELECT statement"},
		},
		{
			name: "WITH query on SQL Server",
			yml:  "driver: sqlserver\ndsn: x\nquery: WITH a AS (SELECT 1 c) SELECT * FROM a\ncursor: {column: c, key: k}\n",
			want: []string{"sources[0].query: SQL Server cannot read a WITH query"},
		},
		{
			name: "ranges",
			yml:  "driver: postgres\ndsn: x\ntable: t\ncursor: {column: c, key: k}\nbatch_size: 0\nquery_timeout: 0s\nmax_open_conns: 0\nmax_idle_conns: 3\n",
			want: []string{
				"sources[0].batch_size: must be between 1 and 100000, got 0",
				"sources[0].query_timeout: must be more than 0",
				"sources[0].max_open_conns: must be at least 1, got 0",
				"sources[0].max_idle_conns: must be between 0 and max_open_conns (0), got 3",
			},
		},
		{
			name: "dsn present but empty",
			yml:  "driver: postgres\ndsn: ''\ntable: t\ncursor: {column: c, key: k}\n",
			want: []string{"sources[0].dsn: is required"},
		},
		{
			name: "lookback_ids 0 is refused",
			yml:  "driver: postgres\ndsn: x\ntable: t\ncursor: {column: c, key: k}\nlookback_ids: 0\n",
			want: []string{"sources[0].lookback_ids: 0 is refused: without a re-read window, a row whose id was taken before a higher one but committed after it was read is skipped for ever"},
		},
		{
			name: "negative lookback_ids",
			yml:  "driver: postgres\ndsn: x\ntable: t\ncursor: {column: c, key: k}\nlookback_ids: -10\n",
			want: []string{"sources[0].lookback_ids: must be more than 0, got -10"},
		},
		{
			name: "lookback and lookback_ids",
			yml:  "driver: postgres\ndsn: x\ntable: t\ncursor: {column: c, key: k}\nlookback: 5m\nlookback_ids: 100\n",
			want: []string{"sources[0].lookback_ids: give lookback (a time cursor) or lookback_ids (an integer cursor), not both"},
		},
		{
			name: "lookback_ids on a rowversion cursor",
			yml:  "driver: sqlserver\ndsn: x\ntable: t\ncursor: {column: c, key: k, kind: rowversion}\nlookback_ids: 100\n",
			want: []string{"sources[0].lookback_ids: does not apply to a rowversion cursor"},
		},
		{
			name: "negative lookback",
			yml:  "driver: postgres\ndsn: x\ntable: t\ncursor: {column: c, key: k}\nlookback: -5m\n",
			want: []string{`sources[0].lookback: duration "-5m" is negative`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decode(t, tt.yml)
			for _, w := range tt.want {
				if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, w) }) {
					t.Errorf("missing error %q in:\n  %s", w, strings.Join(errs, "\n  "))
				}
			}
			if len(errs) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n  %s", len(errs), len(tt.want), strings.Join(errs, "\n  "))
			}
		})
	}
}

func TestOptionsLookbackIDs(t *testing.T) {
	o, errs := decode(t, "driver: postgres\ndsn: x\ntable: t\ncursor: {column: c, key: k}\nlookback_ids: 5000\n")
	if len(errs) > 0 || o.LookbackIDs == nil || *o.LookbackIDs != 5000 {
		t.Fatalf("lookback_ids = %v, errors %v; want 5000", o.LookbackIDs, errs)
	}
	o, _ = decode(t, "driver: postgres\ndsn: x\ntable: t\ncursor: {column: c, key: k}\n")
	if o.LookbackIDs != nil {
		t.Fatalf("unset lookback_ids decoded as %d; want nil, which means the default", *o.LookbackIDs)
	}
	if got := (&Source{opts: *o}).lookbackIDs(); got != DefaultLookbackIDs {
		t.Fatalf("default window %d, want %d", got, DefaultLookbackIDs)
	}
}

func TestVietnameseIdentifiersAreAccepted(t *testing.T) {
	_, errs := decode(t, "driver: sqlserver\ndsn: x\ntable: dbo.HồSơ\ncolumns: [MãHồSơ, NgàyCậpNhật]\ncursor: {column: NgàyCậpNhật, key: MãHồSơ}\n")
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
}

func TestSourceIsRegistered(t *testing.T) {
	spec, ok := pipeline.LookupSource("sql")
	if !ok {
		t.Fatal(`source type "sql" is not registered`)
	}
	if _, ok := spec.Config().(*Options); !ok {
		t.Fatalf("Config() returns %T, want *Options", spec.Config())
	}
}

func TestOpenRefusesInvalidOptions(t *testing.T) {
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "postgres", "postgres://reader:pw@h/db", "t"
	_, err := Open(t.Context(), pipeline.Env{Name: "motcua"}, o)
	if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "cursor.column: is required") {
		t.Fatalf("got %v, want a permanent error naming cursor.column", err)
	}
}
