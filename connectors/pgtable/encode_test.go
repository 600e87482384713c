package pgtable

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONArgOfEveryStringIsValidForJSONB(t *testing.T) {
	for _, s := range []string{"\x00", "a\x00b", `\u0000`, "\\\x00", "\xff\x00", "Đức"} {
		v, err := jsonArg("after", map[string]any{s: s})
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]string
		if err := json.Unmarshal([]byte(v.(string)), &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		for k, val := range back {
			if k != val || strings.ContainsRune(k, 0) {
				t.Errorf("%q came back as key %q value %q", s, k, val)
			}
		}
	}
}
