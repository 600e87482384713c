package pgtable

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestReplaceNULEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"b"}`, `{"a":"b"}`},
		{`{"a":"x\u0000y"}`, `{"a":"x\ufffdy"}`},
		{`{"k\u0000":"\u0000\u0000"}`, `{"k\ufffd":"\ufffd\ufffd"}`},
		{`{"a":"C:\\u0000"}`, `{"a":"C:\\u0000"}`},   // an escaped backslash, then text
		{`{"a":"\\\u0000"}`, `{"a":"\\\ufffd"}`},     // a backslash, then a NUL
		{`{"a":"\"\u0000\""}`, `{"a":"\"\ufffd\""}`}, // quotes around a NUL
		{`{"a":"\u00001"}`, `{"a":"\ufffd1"}`},       // not \u00001
		{`"\`, `"\`},                                 // truncated: no panic
	}
	for _, tt := range tests {
		if got := string(replaceNULEscapes([]byte(tt.in))); got != tt.want {
			t.Errorf("replaceNULEscapes(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

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

func TestClean(t *testing.T) {
	if got := clean("Nguyễn\x00Văn\xff"); got != "Nguyễn\uFFFDVăn\uFFFD" {
		t.Fatalf("clean = %q", got)
	}
	if got := clean("Nguyễn Văn An"); got != "Nguyễn Văn An" {
		t.Fatalf("clean changed clean text: %q", got)
	}
}
