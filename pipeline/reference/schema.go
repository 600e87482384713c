package reference

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/mappingtest"
)

// The schema files under SchemaDir, which the `# yaml-language-server: $schema=`
// headers of configs/, mappings/ and mapping test files point at.
const (
	ConfigSchemaFile      = "config.schema.json"
	MappingSchemaFile     = "mapping.schema.json"
	MappingTestSchemaFile = "mapping-test.schema.json"
)

// draft is JSON Schema draft-07, the one every editor's YAML language server reads.
const draft = "http://json-schema.org/draft-07/schema#"

// ConfigSchema is the JSON Schema of the config file: the top-level keys, and
// each source and sink with the keys they all share plus their type's options.
func ConfigSchema() map[string]any {
	top := topLevel()
	s := top.ObjectSchema(nil)
	props := s["properties"].(map[string]any)
	props["sources"] = map[string]any{"type": "array", "description": "The sources: each has name, type, mapping, … and its type's options.", "items": map[string]any{"$ref": "#/definitions/source"}}
	props["sinks"] = map[string]any{"type": "array", "description": "The sinks: each has name and type, and its type's options.", "items": map[string]any{"$ref": "#/definitions/sink"}}
	s["required"] = []string{"sources"}
	defs := map[string]any{}
	for _, kind := range []string{"source", "sink"} {
		common := commonSource()
		if kind == "sink" {
			common = commonSink()
		}
		base := map[string]any{
			"type":       "object",
			"required":   requiredKeys(common),
			"properties": map[string]any{"type": common.Field("type").JSONSchema(), "name": common.Field("name").JSONSchema()},
		}
		var branches []any
		for _, c := range Connectors() {
			if c.Kind != kind {
				continue
			}
			def := kind + "." + c.Name
			one := c.Spec.ObjectSchema(common.Fields)
			one["description"] = c.Summary
			defs[def] = one
			branches = append(branches, map[string]any{
				"if":   map[string]any{"properties": map[string]any{"type": map[string]any{"const": c.Name}}, "required": []string{"type"}},
				"then": map[string]any{"$ref": "#/definitions/" + def},
			})
		}
		base["allOf"] = branches
		defs[kind] = base
	}
	s["definitions"] = defs
	s["$schema"] = draft
	s["title"] = "egov-bridge config"
	return s
}

// MappingSchema is the JSON Schema of a mapping file.
func MappingSchema() map[string]any {
	s := mappingSpec().ObjectSchema(nil)
	s["$schema"] = draft
	s["title"] = "egov-bridge mapping"
	return s
}

func requiredKeys(o interface{ JSONSchema() map[string]any }) []string {
	if r, ok := o.JSONSchema()["required"].([]string); ok {
		return r
	}
	return nil
}

// MappingTestSchema is the JSON Schema of a mapping's test file (*.test.yaml).
func MappingTestSchema() map[string]any {
	s := config.Describe(&mappingtest.File{}).ObjectSchema(nil)
	s["$schema"] = draft
	s["title"] = "egov-bridge mapping test cases"
	return s
}

// Schemas returns the schema files by their name under SchemaDir.
func Schemas() (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, s := range map[string]map[string]any{
		ConfigSchemaFile: ConfigSchema(), MappingSchemaFile: MappingSchema(), MappingTestSchemaFile: MappingTestSchema(),
	} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // descriptions say <prefix>.<entity>
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		out[name] = buf.Bytes()
	}
	return out, nil
}
