package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// syncBuffer collects a subprocess's log while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// chromium finds Debian's chromium: missing, the test fails under CI (.ci/run
// installs it) and is skipped elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install -y chromium); .ci/run installs it")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium): skipping the browser test")
	return ""
}

// artifactDir is where the browser test leaves its screenshots:
// $EGOV_TEST_ARTIFACTS, or egov-bridge-artifacts in the system's temporary folder.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("EGOV_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "egov-bridge-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runDemoDaemon runs the daemon on the demo config (configs/demo.yaml as shipped,
// but on a free port and with its data in a temporary folder) and returns its
// base URL.
func runDemoDaemon(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg, err := os.ReadFile("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte("listen: 127.0.0.1:8080")) {
		t.Fatal("configs/demo.yaml no longer listens on 127.0.0.1:8080: update this test")
	}
	cfg = bytes.Replace(cfg, []byte("listen: 127.0.0.1:8080"), []byte("listen: 127.0.0.1:0"), 1)
	linkDemoFiles(t, dir)
	config := filepath.Join(dir, "configs", "demo.yaml")
	if err := os.WriteFile(config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	cmd := startDaemon(t, config, log)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	addrRE := regexp.MustCompile(`http listening"? addr=(\S+)`)
	var base string
	waitFor(t, 60*time.Second, "the daemon to listen", func() bool {
		if cmd.ProcessState != nil {
			t.Fatalf("the daemon exited:\n%s", log.String())
		}
		if m := addrRE.FindStringSubmatch(log.String()); m != nil {
			base = "http://" + m[1]
			return true
		}
		return false
	})
	return base
}

// apiGet reads an API answer with a bearer token.
func apiGet(t *testing.T, base, path, token string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

type demoTotals struct {
	Total struct {
		Received   int `json:"received"`
		OverdueNow int `json:"overdue_now"`
		Finished   int `json:"finished"`
	} `json:"total"`
}

// TestSteeringPageInABrowser opens the demo's steering page in headless
// Chromium, logs in with the demo token, waits for the charts and the live feed,
// checks the figures shown against the API's and saves screenshots (desktop and
// phone) as artifacts.
func TestSteeringPageInABrowser(t *testing.T) {
	exe := chromium(t)
	base := runDemoDaemon(t)
	const token = "demo-lanh-dao-2026" // the README's demo token (viewer)
	waitFor(t, 60*time.Second, "the first sync of the demo's 120 dossiers", func() bool {
		var f demoTotals
		apiGet(t, base, "/api/v1/figures", token, &f)
		return f.Total.Received == 120
	})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1700),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
	); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	if loginURL, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasSuffix(loginURL, "/login") {
		t.Fatalf("without a session the page went to %s (%v), want /login", loginURL, err)
	}
	// A wrong token stays on the form with an error.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), "not-the-demo-token"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(".error")),
	); err != nil {
		t.Fatalf("log in with a wrong token: %v", err)
	}
	if msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".error"))); !strings.Contains(msg, "không đúng") {
		t.Errorf("wrong token: the form says %q", msg)
	}
	// The demo token: the page loads its figures, charts and live feed. The period
	// is "all" so that the demo's dated dossiers count whatever today is.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS("#totals [data-k=received]")),
		chromedp.SetValue(chromedp.ID("period"), "all"),
	); err != nil {
		t.Fatalf("log in with the demo token: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("period").dispatchEvent(new Event("change"))`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#ontime-chart[data-ready="1"] rect`)),
		chromedp.WaitVisible(chromedp.CSS(`#overdue-chart[data-ready="1"] rect`)),
		chromedp.WaitVisible(chromedp.CSS(`#daily-chart[data-ready="1"] svg`)),
		chromedp.WaitVisible(chromedp.CSS(`#quality table`)),
		chromedp.WaitVisible(chromedp.CSS(`#feed li`)),
		// A change made by the demo's activity generator reaches the feed through
		// the event stream (marked fresh), not through a reload.
		chromedp.WaitVisible(chromedp.CSS(`#feed li.fresh`)),
	); err != nil {
		t.Fatalf("the page did not show its data: %v", err)
	}

	// The numbers shown are the API's. Overdue-now moves with the demo's activity:
	// read both until they agree (the page refreshes after each streamed event).
	number := func(sel string) int {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.NewReplacer(".", "", " ", "").Replace(s))
		if err != nil {
			t.Fatalf("%s shows %q, not a number", sel, s)
		}
		return n
	}
	if got := number(`#totals [data-k=received] b`); got != 120 {
		t.Errorf("the page shows %d dossiers received in all, want the demo's 120", got)
	}
	var shown, want int
	agree := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !agree; {
		var f demoTotals
		apiGet(t, base, "/api/v1/figures", token, &f)
		shown, want = number(`#totals [data-k=overdue_now] b`), f.Total.OverdueNow
		agree = shown == want
		if !agree {
			time.Sleep(500 * time.Millisecond) // the page's refresh is what is awaited here
		}
	}
	if !agree {
		t.Errorf("the page shows %d dossiers overdue now, the API %d", shown, want)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#overdue-chart rect").length`))
	if err != nil {
		t.Fatal(err)
	}
	if bars < 3 {
		t.Errorf("the overdue chart has %d bars, want one per agency with dossiers (5)", bars)
	}

	dir := artifactDir(t)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "steering-page.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)

	// On a phone's width the page reflows into one column: nothing wider than the screen.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	// A mobile browser widens its layout to the widest element: 390 means nothing
	// overflows (wide tables scroll inside their own box).
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.innerWidth`)); err != nil || w > 391 {
		wide, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("body *")].filter(e => !e.closest(".table-wrap") && e.getBoundingClientRect().right > 391).slice(0, 8).map(e => e.tagName + "#" + e.id + "." + e.className).join(", ")`))
		t.Errorf("on a 390-pixel-wide phone the page is %d pixels wide (%v): %s", w, err, wide)
	}
	if png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "steering-page-phone.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "browser test artifacts in", dir)
}
