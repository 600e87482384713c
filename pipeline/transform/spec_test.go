package transform

import (
	"testing"

	"gopkg.in/yaml.v3"
)

// TestEveryStepHasASpec: a step added to the step tables without a spec would be
// missing from the reference pages and the schema.
func TestEveryStepHasASpec(t *testing.T) {
	steps := Steps()
	if len(steps) != len(simpleSteps)+len(argSteps) {
		t.Fatalf("%d specs for %d steps", len(steps), len(simpleSteps)+len(argSteps))
	}
	for _, s := range steps {
		if _, ok := stepSpecs[s.Name]; !ok || s.Doc == "" {
			t.Errorf("step %s has no spec", s.Name)
		}
		_, hasArgs := argSteps[s.Name]
		if hasArgs != (len(s.Args) > 0) {
			t.Errorf("step %s: spec args %v, step takes arguments: %v", s.Name, s.Args, hasArgs)
		}
		// The example decodes and compiles.
		var list []Step
		if err := yaml.Unmarshal([]byte(s.Example), &list); err != nil || len(list) != 1 {
			t.Fatalf("%s example %q: %v", s.Name, s.Example, err)
		}
		if _, err := Compile(list, map[string]Table{"communes": TableFromMap(map[string]string{"a": "b"}, false)}); err != nil {
			t.Errorf("%s example %q does not compile: %v", s.Name, s.Example, err)
		}
	}
}
