package mapping

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestTypeSpecsMatchTheEnum: the types documented are the types FieldSpec.type
// accepts, and each example compiles.
func TestTypeSpecsMatchTheEnum(t *testing.T) {
	f, _ := reflect.TypeOf(FieldSpec{}).FieldByName("Type")
	enum := strings.Split(f.Tag.Get("enum"), ",")
	var names []string
	for _, ts := range Types() {
		names = append(names, ts.Name)
		src := "entity: e\nkey: [k]\nfields:\n  k: { from: K }\n  " + ts.Example + "\n"
		if _, err := Compile("t.yaml", []byte(src), Options{}); err != nil {
			t.Errorf("type %s: example does not compile: %v", ts.Name, err)
		}
	}
	if !slices.Equal(names, enum) {
		t.Errorf("documented types %v, enum %v", names, enum)
	}
	m, _ := reflect.TypeOf(FieldSpec{}).FieldByName("Mask")
	masks := strings.Split(m.Tag.Get("enum"), ",")
	for _, k := range masks {
		if maskers[k] == nil {
			t.Errorf("mask %s in the enum has no masker", k)
		}
	}
	if len(masks) != len(maskers) {
		t.Errorf("mask enum %v, maskers %d", masks, len(maskers))
	}
}
