package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

type specInner struct {
	Column string `yaml:"column" required:"true" doc:"the column" example:"NgayCapNhat"`
	Kind   string `yaml:"kind" enum:"rowversion"`
}

type specOpts struct {
	Driver  string            `yaml:"driver" enum:"postgres,sqlite" doc:"the database"`
	DSN     string            `yaml:"dsn" secret:"true"`
	Headers map[string]string `yaml:"headers" secret:"true"`
	Batch   int               `yaml:"batch_size" min:"1" max:"100"`
	Conns   int               `yaml:"max_open_conns" min:"0" hint:"0 means the default"`
	Lag     Duration          `yaml:"lag"`
	Routes  []string          `yaml:"routes" enum:"oa,zns" noun:"route"`
	Cursor  specInner         `yaml:"cursor"`
	Rules   map[string]specIn `yaml:"rules"`
	Path    string            `yaml:"path" default:"standard output"`
	Enabled *bool             `yaml:"enabled"`
	Hidden  string            `yaml:"-"`
}

type specIn struct {
	Rate float64 `yaml:"rate" max:"10"`
}

func TestDescribeReadsTagsAndDefaults(t *testing.T) {
	o := Describe(&specOpts{Batch: 50, Lag: Duration(5 * time.Second), Routes: []string{"oa", "zns"}})
	if len(o.Fields) != 11 {
		t.Fatalf("%d fields, want 11 (the yaml:\"-\" one left out)", len(o.Fields))
	}
	if dsn, headers := o.Field("dsn"), o.Field("headers"); !dsn.HasFileForm() || !headers.Secret || headers.HasFileForm() {
		t.Error("a secret string has a _file form, a secret map none")
	}
	for _, tt := range []struct {
		path, kind, def string
	}{
		{"driver", "string", ""},
		{"batch_size", "integer", "50"},
		{"lag", "duration", "5s"},
		{"routes", "list of string", "[oa, zns]"},
		{"cursor", "mapping", ""},
		{"cursor.column", "string", ""},
		{"rules", "map of mapping", ""},
		{"path", "string", "standard output"},
		{"enabled", "boolean", ""},
	} {
		f := o.Field(tt.path)
		if f == nil {
			t.Errorf("%s: missing", tt.path)
			continue
		}
		if f.TypeName() != tt.kind || f.Default != tt.def {
			t.Errorf("%s: %s default %q, want %s default %q", tt.path, f.TypeName(), f.Default, tt.kind, tt.def)
		}
	}
	if f := o.Field("cursor.column"); !f.Required || f.Doc != "the column" || f.Example != "NgayCapNhat" {
		t.Errorf("cursor.column = %+v", f)
	}
	if f := o.Field("dsn"); !f.Secret {
		t.Error("dsn is not secret")
	}
	if f := o.Field("routes"); f.Elem == nil || len(f.Elem.Enum) != 2 {
		t.Errorf("routes' elements carry no enum: %+v", f.Elem)
	}
}

func TestCheckReportsEnumsAndRanges(t *testing.T) {
	var got []string
	Check(&specOpts{Driver: "oracle", Batch: 0, Conns: -1, Routes: []string{"oa", "sms"},
		Cursor: specInner{Kind: "sequence"}, Rules: map[string]specIn{"b": {Rate: 11}, "a": {Rate: 1}}},
		func(field, format string, args ...any) { got = append(got, field+": "+fmt.Sprintf(format, args...)) })
	want := []string{
		`driver: unknown driver "oracle" (want postgres or sqlite)`,
		`batch_size: must be between 1 and 100, got 0`,
		`max_open_conns: must not be negative (0 means the default), got -1`,
		`routes[1]: unknown route "sms" (want oa or zns)`,
		`cursor.kind: unknown kind "sequence" (want rowversion)`,
		`rules.b.rate: must be at most 10, got 11`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = nil
	Check(&specOpts{Batch: 1}, func(field, format string, args ...any) { got = append(got, field) })
	if len(got) != 0 {
		t.Errorf("empty enum values or valid numbers reported: %v", got)
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	r := Redacted(&specOpts{Driver: "postgres", DSN: "postgres://u:pw@db/x", Headers: map[string]string{"X-Api-Key": "k3y"}, Lag: Duration(time.Minute)}).(map[string]any)
	if r["dsn"] != RedactedText || r["driver"] != "postgres" || r["lag"] != "1m" {
		t.Errorf("redacted = %v", r)
	}
	if h, _ := r["headers"].(map[string]any); h["X-Api-Key"] != RedactedText {
		t.Errorf("a secret map's values shown: %v", r["headers"])
	}
	if _, ok := r["path"]; ok {
		t.Errorf("empty values shown: %v", r)
	}
}

func TestJSONSchemaOfAnObject(t *testing.T) {
	s := Describe(&specOpts{}).JSONSchema()
	props := s["properties"].(map[string]any)
	if _, ok := props["dsn_file"]; !ok {
		t.Error("no dsn_file for the secret dsn")
	}
	if _, ok := props["headers_file"]; ok {
		t.Error("headers_file offered for a secret map, which cannot be read from a file")
	}
	if s["additionalProperties"] != false {
		t.Error("unknown keys allowed")
	}
	cursor := props["cursor"].(map[string]any)
	if req := cursor["required"].([]string); len(req) != 1 || req[0] != "column" {
		t.Errorf("cursor.required = %v", req)
	}
	if d := props["driver"].(map[string]any); d["description"] != "the database" || len(d["enum"].([]string)) != 2 {
		t.Errorf("driver = %v", d)
	}
}
