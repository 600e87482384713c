package main

import (
	"strings"
	"testing"
)

func TestShippedFeedsConfigValidates(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"validate", "-c", "../../configs/feeds.example.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("validate exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "ok (3 sources") {
		t.Fatalf("validate said:\n%s", out.String())
	}
}
