package config

import (
	"strconv"
	"strings"
)

// envPattern matches a value that is a ${VAR} reference, which the decoder expands
// before typing it: a number or a duration may come from the environment.
const envPattern = `^\$\{[^}]+\}`

// durationPattern matches Go durations such as 30s, 5m, 1h30m.
const durationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

// JSONSchema returns the JSON Schema (draft-07) of a value of the option,
// with the description and default editors show on hover.
func (o *Option) JSONSchema() map[string]any {
	s := o.shape()
	if d := o.Description(); d != "" {
		s["description"] = d
	}
	if len(o.Enum) > 0 && o.Schema == nil && o.Kind != KindList && o.Kind != KindMap { // a list's enum is its elements'

		s["enum"] = o.Enum
	}
	return s
}

// Description is the option's doc with its default and example, as editors show it.
func (o *Option) Description() string {
	var parts []string
	if o.Doc != "" {
		parts = append(parts, o.Doc)
	}
	if o.Default != "" {
		parts = append(parts, "Default: "+o.Default+".")
	}
	if o.Example != "" {
		parts = append(parts, "Example: "+o.Example)
	}
	return strings.Join(parts, " ")
}

func (o *Option) shape() map[string]any {
	if o.Schema != nil {
		cp := make(map[string]any, len(o.Schema))
		for k, v := range o.Schema {
			cp[k] = v
		}
		return cp
	}
	orEnv := func(s map[string]any) map[string]any {
		return map[string]any{"anyOf": []any{s, map[string]any{"type": "string", "pattern": envPattern}}}
	}
	switch o.Kind {
	case KindString:
		return map[string]any{"type": "string"}
	case KindBool:
		return orEnv(map[string]any{"type": "boolean"})
	case KindInt, KindNumber:
		s := map[string]any{"type": string(o.Kind)}
		if o.Min != nil {
			s["minimum"] = jsonNumber(*o.Min)
		}
		if o.Max != nil {
			s["maximum"] = jsonNumber(*o.Max)
		}
		return orEnv(s)
	case KindDuration:
		return map[string]any{"type": "string", "pattern": durationPattern + "|" + envPattern}
	case KindList:
		s := map[string]any{"type": "array"}
		if o.Elem != nil {
			s["items"] = o.Elem.JSONSchema()
		}
		return s
	case KindMap:
		s := map[string]any{"type": "object"}
		if o.Elem != nil {
			s["additionalProperties"] = o.Elem.JSONSchema()
		}
		return s
	case KindObject:
		return o.ObjectSchema(nil)
	}
	return map[string]any{}
}

// ObjectSchema is the schema of an object option: its keys (and <key>_file for
// secrets), no others, and which are required. extra adds keys declared elsewhere
// (the keys every source shares).
func (o *Option) ObjectSchema(extra []*Option) map[string]any {
	props := map[string]any{}
	var required []string
	var oneOfSecret []any
	for _, f := range append(append([]*Option(nil), extra...), o.Fields...) {
		props[f.Name] = f.JSONSchema()
		if f.HasFileForm() {
			props[f.Name+"_file"] = map[string]any{"type": "string", "description": "A file whose content (trimmed) is " + f.Name + ", so the secret need not sit in the config."}
			if f.Required {
				oneOfSecret = append(oneOfSecret, map[string]any{"anyOf": []any{
					map[string]any{"required": []string{f.Name}},
					map[string]any{"required": []string{f.Name + "_file"}},
				}})
			}
			continue
		}
		if f.Required {
			required = append(required, f.Name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	if len(oneOfSecret) > 0 {
		s["allOf"] = oneOfSecret
	}
	return s
}

func jsonNumber(f float64) any {
	if f == float64(int64(f)) {
		return int64(f)
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 64), 64)
	return v
}
