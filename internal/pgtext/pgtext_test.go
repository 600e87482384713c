package pgtext

import "testing"

func TestJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":"x"}`:               `{"a":"x"}`,
		`{"a":"x\u0000y"}`:        `{"a":"x\ufffdy"}`,
		`{"a\u0000":"\u0000"}`:    `{"a\ufffd":"\ufffd"}`,
		`{"a":"\\u0000"}`:         `{"a":"\\u0000"}`, // the text \u0000, not a NUL
		`{"a":"\\\u0000"}`:        `{"a":"\\\ufffd"}`,
		`{"a":"Nguyễn\u0000Văn"}`: `{"a":"Nguyễn\ufffdVăn"}`,
	} {
		if got := string(JSON([]byte(in))); got != want {
			t.Errorf("JSON(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	if got := Text("Nguyễn\x00Văn\xff"); got != "Nguyễn\uFFFDVăn\uFFFD" {
		t.Errorf("Text = %q", got)
	}
	if s := "Nguyễn Văn An"; Text(s) != s {
		t.Error("clean text changed")
	}
}
