package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// evnSite behaves as the EVN SPC site: the schedule page starts a session, the
// data action wants its cookie, the page as Referer and X-Requested-With, and
// answers HTTP 200 with each unit's HTML fragment (or "no schedule").
type evnSite struct {
	srv     *httptest.Server
	mu      sync.Mutex
	bodies  map[string]string
	down    bool     // every data request answers 503
	refused []string // requests that broke the handshake
	windows map[string]bool
}

func newEVNSite(t *testing.T) *evnSite {
	s := &evnSite{bodies: map[string]string{}, windows: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/TraCuu/LichNgungGiamCungCapDien", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "ASP.NET_SessionId", Value: "e2e", Path: "/"})
		fmt.Fprint(w, "<html>Lịch ngừng giảm cung cấp điện</html>")
	})
	mux.HandleFunc("/TraCuu/GetThongTinLichNgungGiamCungCapDien", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		q := r.URL.Query()
		if _, err := r.Cookie("ASP.NET_SessionId"); err != nil || r.Header.Get("Referer") != s.srv.URL+"/TraCuu/LichNgungGiamCungCapDien" ||
			r.Header.Get("X-Requested-With") != "XMLHttpRequest" || q.Get("ChucNang") != "MaDonVi" {
			s.refused = append(s.refused, r.URL.RawQuery)
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		if s.down {
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		s.windows[q.Get("tuNgay")+" "+q.Get("denNgay")] = true
		body, ok := s.bodies[q.Get("madvi")]
		if !ok {
			body = "<div>Không có lịch ngừng giảm cung cấp điện</div>"
		}
		fmt.Fprint(w, body)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *evnSite) set(unit, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies[unit] = body
}

// TestEVNOutagesRemovedTwiceAndMovedGiveOneDeletedAndOneUpdated runs the daemon
// against the site for the 14 units of the former Long An: a schedule removed
// from the site is cancelled (deleted) only after two complete polls miss it, a
// schedule whose end moved is updated, and polls that fail (a 503 beyond the
// retries, a page in an unknown shape) in between change nothing.
func TestEVNOutagesRemovedTwiceAndMovedGiveOneDeletedAndOneUpdated(t *testing.T) {
	site := newEVNSite(t)
	fixture := func(name string) string { return mustRead(t, filepath.Join("../../connectors/evnspc/testdata", name)) }
	entries, table := fixture("entries.html"), fixture("table.html")
	site.set("PB0603", entries) // 3 schedules, current shape, HTML entities
	site.set("PB0604", table)   // 2 schedules, older shape

	dir := t.TempDir()
	mappingPath, err := filepath.Abs("../../mappings/outage-evnspc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	units := []string{}
	for i := 1; i <= 14; i++ {
		units = append(units, fmt.Sprintf("PB06%02d", i))
	}
	config := filepath.Join(dir, "egov.yaml")
	write(t, config, fmt.Sprintf(`store: { driver: sqlite, path: state.db }
sources:
  - name: evn-longan
    type: evn_spc_outage
    base_url: %s
    units: [%s]
    http: { retries: 1, retry_wait: 1ms, retry_max_wait: 2ms, rate_limit: "0", timeout: 5s }
    schedule: "@every 30m"
    agency: EVNSPC
    mapping: %s
    deletes: { after_misses: 2, unless_past: end }
sinks:
  - { name: events, type: log, path: events.jsonl }
routes:
  - { events: ["*"], to: [events] }
`, site.srv.URL, strings.Join(units, ", "), mappingPath))

	// 09:00 on 10 August in Vietnam; every schedule lies ahead.
	now := time.Date(2026, 8, 10, 2, 0, 0, 0, time.UTC)
	seen := 0
	poll := func() ([]string, error) {
		t.Helper()
		now = now.Add(30 * time.Minute)
		cfg, err := engine.LoadFile(config)
		if err != nil {
			t.Fatal(err)
		}
		clock := now
		d, err := engine.New(context.Background(), cfg, engine.Options{
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Clock:  func() time.Time { return clock },
		})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		_, runErr := d.RunOnce(context.Background(), nil)
		evs := loggedEvents(t, filepath.Join(dir, "events.jsonl"))
		var out []string
		for _, ev := range evs[seen:] {
			out = append(out, eventLine(ev))
		}
		seen = len(evs)
		slices.Sort(out)
		return out, runErr
	}

	got, err := poll()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("first poll: %d events, want the 5 schedules created:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, line := range got {
		if !strings.HasPrefix(line, "created ") {
			t.Fatalf("first poll: %q; want only created events (a first sync is a snapshot)", line)
		}
	}
	for _, want := range []string{
		"created PB0603|Ấp Bình Tả 1, xã Đức Hòa Đông|2026-08-11T00:30:00Z end=2026-08-11T04:00:00Z",
		"created PB0604|Ấp Tân Điền, xã Phước Lại|2026-08-11T00:00:00Z end=2026-08-11T08:30:00Z",
	} {
		if !slices.Contains(got, want) {
			t.Fatalf("first poll lacks %q:\n%s", want, strings.Join(got, "\n"))
		}
	}

	// The second schedule of PB0603 is taken off the site; the end of the first
	// of PB0604 moves from 15:30 to 17:00.
	parts := strings.Split(entries, `<div class="entry">`)
	site.set("PB0603", strings.Join(slices.Delete(parts, 2, 3), `<div class="entry">`))
	site.set("PB0604", strings.Replace(table, "<td>11/08/2026 15:30</td>", "<td>11/08/2026 17:00</td>", 1))

	got, err = poll()
	if err != nil {
		t.Fatal(err)
	}
	wantUpdated := []string{
		"outage.rescheduled PB0604|Ấp Tân Điền, xã Phước Lại|2026-08-11T00:00:00Z end=2026-08-11T10:00:00Z",
		"updated PB0604|Ấp Tân Điền, xã Phước Lại|2026-08-11T00:00:00Z end=2026-08-11T10:00:00Z",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantUpdated) {
		t.Fatalf("second poll (first miss):\n%s\nwant only the update:\n%s", strings.Join(got, "\n"), strings.Join(wantUpdated, "\n"))
	}

	// A poll that fails (503 beyond the retries) and one in an unknown shape
	// count nothing as missing.
	site.mu.Lock()
	site.down = true
	site.mu.Unlock()
	if got, err = poll(); err == nil || len(got) != 0 {
		t.Fatalf("poll with the site down: events %v, err %v; want none and an error", got, err)
	}
	site.mu.Lock()
	site.down = false
	site.mu.Unlock()
	site.set("PB0609", fixture("unknown.html"))
	if got, err = poll(); err == nil || !strings.Contains(err.Error(), "unknown shape") || len(got) != 0 {
		t.Fatalf("poll with a page in an unknown shape: events %v, err %v; want none and an unknown-shape error", got, err)
	}
	site.set("PB0609", "<p>Không có lịch ngừng giảm cung cấp điện</p>")

	// The second complete poll without the schedule cancels it.
	got, err = poll()
	if err != nil {
		t.Fatal(err)
	}
	wantDeleted := []string{
		"deleted PB0603|Trạm Hựu Thạnh 4; Trạm Hựu Thạnh 5|2026-08-12T06:00:00Z end=2026-08-12T10:30:00Z",
		"outage.cancelled PB0603|Trạm Hựu Thạnh 4; Trạm Hựu Thạnh 5|2026-08-12T06:00:00Z end=2026-08-12T10:30:00Z",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantDeleted) {
		t.Fatalf("fourth complete poll (second miss):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantDeleted, "\n"))
	}

	// Nothing more happens while the site stays as it is.
	if got, err = poll(); err != nil || len(got) != 0 {
		t.Fatalf("a quiet poll: events %v, err %v; want none", got, err)
	}
	site.mu.Lock()
	defer site.mu.Unlock()
	if len(site.refused) > 0 {
		t.Fatalf("requests refused for a broken handshake: %v", site.refused)
	}
	if len(site.windows) != 1 || !site.windows["10-08-2026 14-08-2026"] {
		t.Fatalf("windows asked %v, want only 10-08-2026 to 14-08-2026 (the injected clock's today to today+4)", site.windows)
	}
}

// loggedEvents reads the events the log sink wrote.
func loggedEvents(t *testing.T, path string) []pipeline.Event {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	e := &e2e{t: t, events: path}
	return e.logged()
}

// eventLine is "type-or-rule key end=…", with the end as the event last knew it.
func eventLine(ev pipeline.Event) string {
	kind := ev.Type
	if ev.Rule != "" {
		kind = ev.Rule
	}
	fields := ev.After
	if fields == nil {
		fields = ev.Before
	}
	return fmt.Sprintf("%s %s end=%v", kind, ev.Key, fields["end"])
}
