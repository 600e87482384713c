package webfetch

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"1/s": 1, "30/m": 0.5, "1/5s": 0.2, "2": 2, "0": 0, " 3 / s ": 3, "120/h": 120.0 / 3600} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "1/x", "-1/s", "1/0s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func TestRedactURLDropsUserAndQuery(t *testing.T) {
	u, _ := url.Parse("https://user:pw@api.example.vn/v1/x?token=abc")
	if got := redactURL(u); got != "https://api.example.vn/v1/x?…" {
		t.Fatalf("redactURL = %q", got)
	}
}

func TestRetryAfterReadsSecondsAndDates(t *testing.T) {
	now := time.Date(2026, 8, 11, 1, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Tue, 11 Aug 2026 01:00:30 GMT": 30 * time.Second,
		"Tue, 11 Aug 2026 00:59:00 GMT": 0,
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := retryAfter(h, now); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

func TestKeptAnswersAreBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"`+r.URL.RawQuery+`"`)
		w.Write([]byte("body"))
	}))
	defer srv.Close()
	c, err := New(Settings{Timeout: time.Second, Conditional: true, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxCached + 50 {
		if _, err := c.Do(t.Context(), Request{URL: fmt.Sprintf("%s/?day=%d", srv.URL, i)}); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) != maxCached || c.cachedBytes != int64(4*maxCached) {
		t.Fatalf("%d answers (%d bytes) kept, want %d (%d bytes)", len(c.cache), c.cachedBytes, maxCached, 4*maxCached)
	}
	if _, ok := c.cache["GET "+srv.URL+"/?day=0\n"]; ok {
		t.Fatal("the oldest answer is still kept")
	}
}
