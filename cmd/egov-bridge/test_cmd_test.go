package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShippedMappingTestsPass(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"test", "../../mappings"}, &out, &errOut); code != 0 {
		t.Fatalf("egov-bridge test mappings exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), " passed, 0 failed") {
		t.Fatalf("no summary line:\n%s", out.String())
	}
}

func TestWrongExpectationFailsWithReadableDiff(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"dossier-dvcqg.yaml", "dossier-dvcqg.test.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../mappings", f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".test.yaml") {
			b = []byte(strings.Replace(string(b), "đã có kết quả, mời nhận tại", "đã có kết quả, mời đến nhận tại", 1))
			b = []byte(strings.Replace(string(b), "events: [updated, dossier.fees_due]", "events: [updated]", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut strings.Builder
	code := run([]string{"test", dir}, &out, &errOut)
	if code == 0 {
		t.Fatalf("a wrong expectation passed:\n%s", out.String())
	}
	got := out.String()
	testFile := filepath.Join(dir, "dossier-dvcqg.test.yaml")
	for _, want := range []string{
		fmt.Sprintf("FAIL  %s:%d result ready notifies the citizen", testFile, lineOf(t, testFile, "- name: result ready notifies the citizen")),
		"messages[0].text:",
		"- want: Hồ sơ 000.00.12.H45-261120-0001 (Đăng ký khai sinh) của Ông/Bà Nguyễn Văn An đã có kết quả, mời đến nhận",
		"+ got:  Hồ sơ 000.00.12.H45-261120-0001 (Đăng ký khai sinh) của Ông/Bà Nguyễn Văn An đã có kết quả, mời nhận",
		"^ first difference",
		fmt.Sprintf("FAIL  %s:%d fees due", testFile, lineOf(t, testFile, "- name: fees due")),
		"- want: [updated]",
		"+ got:  [updated, dossier.fees_due]",
		" passed, 2 failed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// lineOf is the 1-based line of the first line of path containing s.
func lineOf(t *testing.T, path, s string) int {
	t.Helper()
	for i, line := range strings.Split(mustRead(t, path), "\n") {
		if strings.Contains(line, s) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", path, s)
	return 0
}
