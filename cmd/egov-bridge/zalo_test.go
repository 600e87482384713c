package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCmd runs the binary's command line in-process.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// The operator commands against the demo config, whose zalo sink is a dry run.
func TestZaloCommands(t *testing.T) {
	dir := t.TempDir()
	if err := unpack(dir); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "configs", "demo.yaml")
	csvFile := filepath.Join(dir, "followers.csv")
	write(t, csvFile, "user_id,phone,consent_at\nu1,0912 345 678,2026-01-02 10:00\nu2,12345,\n")

	code, out, errOut := runCmd(t, "zalo", "followers", "import", "-c", cfg, csvFile)
	if code != 1 || !strings.Contains(out, "1 followers imported") || !strings.Contains(errOut, "row 3: phone") || strings.Contains(errOut, "12345") {
		t.Fatalf("import: %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = runCmd(t, "zalo", "send", "-c", cfg, "--dry-run", "--phone", "0912345678", "--text", "Xin chào.")
	if code != 0 || !strings.Contains(out, `"route":"oa"`) || !strings.Contains(out, `"user_id":"u1"`) {
		t.Fatalf("send to a follower: %d\n%s\n%s", code, out, errOut)
	}
	// A ZNS send waits out the demo's quiet hours (21:00–06:00): at 10:00 it goes.
	morning := func() time.Time { return time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC) }
	var outb, errb bytes.Buffer
	code = runAt(morning, []string{"zalo", "send", "-c", cfg, "--dry-run", "--phone", "0987654321", "--text", "Có kết quả.", "--rule", "dossier.result_ready"}, &outb, &errb)
	out, errOut = outb.String(), errb.String()
	if code != 0 || !strings.Contains(out, `"route":"zns"`) || !strings.Contains(out, `"template_id":"demo-result-ready"`) {
		t.Fatalf("send by ZNS: %d\n%s\n%s", code, out, errOut)
	}

	tokenFile := filepath.Join(dir, "token.txt")
	write(t, tokenFile, "a-new-refresh-token\n")
	if code, out, errOut = runCmd(t, "zalo", "token", "set", "-c", cfg, "--token-file", tokenFile); code != 0 {
		t.Fatalf("token set: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "zalo", "status", "-c", cfg)
	for _, want := range []string{"generation 1", "access token  none yet", "1 following, 1 with a phone linked",
		"sent on Zalo instead of SMS: 2 messages, 1300 đồng saved"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("status lacks %q: %d\n%s\n%s", want, code, out, errOut)
		}
	}
	if strings.Contains(out, "a-new-refresh-token") {
		t.Fatal("status shows the refresh token")
	}
	code, out, errOut = runCmd(t, "state", "-c", cfg)
	if code != 0 || !strings.Contains(out, "sent on Zalo instead of SMS: 2 messages") {
		t.Fatalf("state: %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "state", "audit", "-c", cfg)
	if code != 0 || !strings.Contains(out, "zalo token set") || !strings.Contains(out, "zalo followers import") || strings.Contains(out, "a-new-refresh-token") {
		t.Fatalf("audit: %s", out)
	}
}
