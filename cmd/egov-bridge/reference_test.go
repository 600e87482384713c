package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline/reference"
)

const repoRoot = "../.."

// TestReferenceIsCurrent: the committed docs/reference/ pages and docs/schema/
// schemas are what the code's specs generate. When it fails, run the command it
// names (go run ./cmd/egov-bridge docs) and commit the result.
func TestReferenceIsCurrent(t *testing.T) {
	if err := reference.Stale(repoRoot); err != nil {
		t.Fatal(err)
	}
}

// TestDocsCommandWritesWhatStaleChecks: `egov-bridge docs` writes every page and
// schema, and a page edited by hand is reported stale and restored.
func TestDocsCommandWritesWhatStaleChecks(t *testing.T) {
	dir := t.TempDir()
	if code, out, errOut := runCmd(t, "docs", "--root", dir); code != 0 || !strings.Contains(out, "docs/reference/sources/sql.md") {
		t.Fatalf("docs: exit %d\n%s%s", code, out, errOut)
	}
	if err := reference.Stale(dir); err != nil {
		t.Fatalf("freshly written pages are stale: %v", err)
	}
	page := filepath.Join(dir, "docs/reference/sinks/webhook.md")
	write(t, page, "hand-written\n")
	write(t, filepath.Join(dir, "docs/reference/sinks/gone.md"), "old\n")
	err := reference.Stale(dir)
	for _, want := range []string{"run `go run ./cmd/egov-bridge docs`", "docs/reference/sinks/webhook.md: differs", "docs/reference/sinks/gone.md: no longer generated"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("stale error lacks %q: %v", want, err)
		}
	}
	if code, _, _ := runCmd(t, "docs", "--root", dir); code != 0 || reference.Stale(dir) != nil {
		t.Fatalf("docs did not restore the pages: %v", reference.Stale(dir))
	}
}

// compileSchema loads a committed schema.
func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	path := filepath.Join(repoRoot, reference.SchemaDir, name)
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return sch
}

// yamlValue reads a YAML file as the plain values JSON Schema validates.
func yamlValue(t *testing.T, path string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(mustRead(t, path)), &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return jsonValue(v)
}

// jsonValue turns what yaml.v3 decodes into JSON's types (string keys, float64
// numbers, times as text).
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case interface{ Format(string) string }: // a timestamp: YAML typed it, JSON has text
		return x.Format("2006-01-02T15:04:05Z07:00")
	}
	return v
}

// TestShippedFilesMatchTheirSchema: every config in configs/, mapping in mappings/
// and mapping test file validates against the committed schema and names it in its
// first line, so editors find it.
func TestShippedFilesMatchTheirSchema(t *testing.T) {
	for _, tt := range []struct {
		glob, schema string
	}{
		{"configs/*.yaml", reference.ConfigSchemaFile},
		{"mappings/*.yaml", reference.MappingSchemaFile},
		{"mappings/*.test.yaml", reference.MappingTestSchemaFile},
	} {
		sch := compileSchema(t, tt.schema)
		files, err := filepath.Glob(filepath.Join(repoRoot, tt.glob))
		if err != nil || len(files) == 0 {
			t.Fatalf("no files %s: %v", tt.glob, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, ".test.yaml") != (tt.schema == reference.MappingTestSchemaFile) {
				continue
			}
			header := "# yaml-language-server: $schema=../" + reference.SchemaDir + "/" + tt.schema + "\n"
			if !strings.HasPrefix(mustRead(t, f), header) {
				t.Errorf("%s does not start with %q", f, header)
			}
			if err := sch.Validate(yamlValue(t, f)); err != nil {
				t.Errorf("%s does not match %s: %v", f, tt.schema, err)
			}
		}
	}
}

// TestSchemaCatchesMistakes: the schemas refuse what validate refuses, so an editor
// underlines it: an unknown key with the connector's options, a value outside an
// enum or range, a missing required key.
func TestSchemaCatchesMistakes(t *testing.T) {
	cfg := compileSchema(t, reference.ConfigSchemaFile)
	mp := compileSchema(t, reference.MappingSchemaFile)
	for _, tt := range []struct {
		name string
		sch  *jsonschema.Schema
		doc  string
	}{
		{"unknown sql option", cfg, "sources: [{name: a, type: sql, mapping: m.yaml, driver: postgres, dsn: x, table: t, cursor: {column: c, key: k}, batchsize: 5}]"},
		{"sql option on a sink", cfg, "sources: []\nsinks: [{name: a, type: log, table: t}]"},
		{"bad enum", cfg, "sources: []\ndelivery: {on_dead: drop}"},
		{"out of range", cfg, "sources: []\ndelivery: {concurrency: 1000}"},
		{"bad duration", cfg, "sources: []\ndelivery: {max_age: 5}"},
		{"unknown connector", cfg, "sources: [{name: a, type: oracle, mapping: m.yaml}]"},
		{"missing mapping", cfg, "sources: [{name: a, type: sql}]"},
		{"no sources", cfg, "timezone: UTC"},
		{"unknown field type", mp, "entity: e\nkey: [k]\nfields: {k: {type: integer}}"},
		{"unknown transform", mp, "entity: e\nkey: [k]\nfields: {k: {transform: [strip]}}"},
		{"unknown field key", mp, "entity: e\nkey: [k]\nfields: {k: {requird: true}}"},
		{"missing entity", mp, "key: [k]\nfields: {k: {}}"},
	} {
		var v any
		if err := yaml.Unmarshal([]byte(tt.doc), &v); err != nil {
			t.Fatal(err)
		}
		if err := tt.sch.Validate(jsonValue(v)); err == nil {
			t.Errorf("%s: the schema accepts %q", tt.name, tt.doc)
		}
	}
	var v any
	good := "sources: [{name: a, type: sql, mapping: m.yaml, driver: postgres, dsn_file: /run/dsn, table: t, cursor: {column: c, key: k}, batch_size: '${BATCH}'}]\n" +
		"sinks: [{name: z, type: zalo, dry_run: true, rules: {r.x: {max_age: 7d, routes: [zns]}}, delivery: {rate: 2.5}}]"
	if err := yaml.Unmarshal([]byte(good), &v); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(jsonValue(v)); err != nil {
		t.Errorf("the schema refuses a good config: %v", err)
	}
}

// TestSchemaCommand prints the committed schemas.
func TestSchemaCommand(t *testing.T) {
	for arg, file := range map[string]string{"config": reference.ConfigSchemaFile, "mapping": reference.MappingSchemaFile, "test": reference.MappingTestSchemaFile} {
		code, out, errOut := runCmd(t, "schema", arg)
		if code != 0 || !bytes.Equal([]byte(out), []byte(mustRead(t, filepath.Join(repoRoot, reference.SchemaDir, file)))) {
			t.Errorf("schema %s: exit %d, output differs from the committed file\n%s", arg, code, errOut)
		}
	}
	if code, _, errOut := runCmd(t, "schema", "routes"); code != exitUsage || !strings.Contains(errOut, `invalid argument "routes"`) {
		t.Errorf("schema routes: exit %d\n%s", code, errOut)
	}
}

// TestConnectorsCommand lists every registered connector with its summary.
func TestConnectorsCommand(t *testing.T) {
	code, out, _ := runCmd(t, "connectors")
	// Columns are padded to the longest type name: compare with single spaces.
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"source sql a PostgreSQL, SQL Server, SQLite or MySQL/MariaDB table", "sink zalo sends citizen notices", "sink log "} {
		if code != 0 || !strings.Contains(flat, want) {
			t.Errorf("connectors lacks %q:\n%s", want, out)
		}
	}
}

// TestEveryOptionIsOnItsPage: each registered connector's page lists each of its
// options, secret strings with their _file form.
func TestEveryOptionIsOnItsPage(t *testing.T) {
	pages := reference.Pages()
	for _, c := range reference.Connectors() {
		page := pages[c.Kind+"s/"+c.Name+".md"]
		if page == "" {
			t.Errorf("%s %s has no page", c.Kind, c.Name)
			continue
		}
		if !strings.Contains(page, c.Summary) && !strings.Contains(page, strings.ToUpper(c.Summary[:1])+c.Summary[1:]) {
			t.Errorf("%s page lacks its summary", c.Name)
		}
		for _, f := range c.Spec.Fields {
			want := "| `" + f.Name + "`"
			if f.HasFileForm() {
				want += " / `" + f.Name + "_file`"
			}
			if !strings.Contains(page, want) {
				t.Errorf("%s page lacks %q", c.Name, want)
			}
			if f.Doc == "" {
				t.Errorf("%s option %s has no doc tag", c.Name, f.Name)
			}
		}
	}
}
