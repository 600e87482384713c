package transform

import (
	"sort"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// StepSpec describes a transform step for the reference pages and the schema.
type StepSpec struct {
	Name    string
	Doc     string
	Example string    // as written in a field's transform list
	Args    []StepArg // what the step key and its extra keys take; none for a plain step
}

// StepArg is one argument of a step: the value under the step's key (Name is the
// step's own name), a key of that value's mapping, or an extra key beside it.
type StepArg struct {
	Name string
	Kind config.Kind
	Doc  string
}

// stepSpecs document every step of simpleSteps and argSteps; a test checks that
// none is missing.
var stepSpecs = map[string]StepSpec{
	"trim":     {Doc: "Removes leading and trailing white space."},
	"upper":    {Doc: "Upper-cases the text (Vietnamese letters included)."},
	"lower":    {Doc: "Lower-cases the text (Vietnamese letters included)."},
	"nfc":      {Doc: "Normalises Unicode to NFC, so text typed with combining accents compares equal to precomposed text."},
	"collapse": {Doc: "Trims and collapses runs of white space into one space."},
	"fold":     {Doc: "Removes diacritics, lower-cases and collapses spaces: the form citizen-typed names and places are matched in (Cần Giuộc -> can giuoc)."},
	"digits":   {Doc: "Keeps only the digits (0912.345.678 -> 0912345678)."},
	"regex": {Doc: "Keeps the first capture group of a regular expression (Go RE2), or the whole match when it has none; no match gives a blank value.",
		Args: []StepArg{{"regex", config.KindString, "the regular expression"}, {"group", config.KindInt, "the group to keep instead (0: the whole match)"}}},
	"replace": {Doc: "Replaces every occurrence of a text.",
		Args: []StepArg{{"old", config.KindString, "the text to replace, not empty"}, {"new", config.KindString, "its replacement"}}},
	"regex_replace": {Doc: "Replaces every match of a regular expression; $1 and ${name} in with expand to groups.",
		Args: []StepArg{{"pattern", config.KindString, "the regular expression"}, {"with", config.KindString, "the replacement"}}},
	"split": {Doc: "Splits at a separator and keeps one part; an index out of range gives a blank value.",
		Args: []StepArg{{"split", config.KindString, "the separator, not empty"}, {"index", config.KindInt, "the part to keep, from 0; negative counts from the end"}}},
	"prefix": {Doc: "Adds a text before a value that is not blank.",
		Args: []StepArg{{"prefix", config.KindString, "the text to add"}}},
	"suffix": {Doc: "Adds a text after a value that is not blank.",
		Args: []StepArg{{"suffix", config.KindString, "the text to add"}}},
	"lookup": {Doc: "Replaces the value by its entry in one of the mapping's tables (see the tables key); a value the table lacks takes the table's default or becomes blank.",
		Args: []StepArg{{"lookup", config.KindString, "the table's name"}}},
	"pad_left": {Doc: "Pads a value that is not blank on the left to a width in characters.",
		Args: []StepArg{{"width", config.KindInt, "the length to pad to"}, {"char", config.KindString, "the padding character; default 0"}}},
}

// Steps lists every transform step's spec, sorted by name.
func Steps() []StepSpec {
	out := make([]StepSpec, 0, len(stepSpecs))
	for _, name := range stepNames() {
		s := stepSpecs[name]
		s.Name = name
		s.Example = "- " + example(name)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SpecOption describes a transform list entry for the schema: a plain step's
// name, or a mapping holding one step key with its argument.
func (Step) SpecOption() config.Option {
	var simple []string
	props := map[string]any{}
	for _, s := range Steps() {
		if len(s.Args) == 0 {
			simple = append(simple, s.Name)
			props[s.Name] = map[string]any{"type": "null", "description": s.Doc}
			continue
		}
		if s.Args[0].Name == s.Name { // regex: '…', with extra keys beside it
			for _, a := range s.Args {
				props[a.Name] = argSchema(a)
			}
			props[s.Name] = map[string]any{"type": "string", "description": s.Doc + " " + s.Args[0].Doc + "."}
			continue
		}
		inner := map[string]any{}
		for _, a := range s.Args {
			inner[a.Name] = argSchema(a)
		}
		props[s.Name] = map[string]any{"type": "object", "properties": inner, "additionalProperties": false, "description": s.Doc}
	}
	return config.Option{Kind: config.KindAny, Doc: "A plain step's name, or a step with its argument.", Schema: map[string]any{"anyOf": []any{
		map[string]any{"type": "string", "enum": simple},
		map[string]any{"type": "object", "properties": props, "additionalProperties": false, "minProperties": 1},
	}}}
}

func argSchema(a StepArg) map[string]any {
	return map[string]any{"type": string(a.Kind), "description": a.Doc}
}
