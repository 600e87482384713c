package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func TestReadinessReportsADegradedSourceAndSinkBacklogsWithoutFailing(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.yaml": testMapping,
		"c.yaml": `store: { driver: sqlite, path: state.db }
http: { listen: "127.0.0.1:0" }
shutdown_timeout: 5s
sources:
  - { name: motcua, type: memory, table: HoSo, mapping: m.yaml, schedule: "@every 1h" }
sinks:
  - { name: rec, type: recorder }
routes:
  - { to: [rec] }
`})
	cfg, err := LoadFile(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: t0}
	d, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The agency's database is down: every run fails.
	d.Jobs[0].Open = func(context.Context) (pipeline.Source, error) { return nil, errors.New("agency database down") }
	// One event waits for the sink since ten minutes; the sink holds it in flight.
	gate := make(chan struct{})
	d.Sinks["rec"].(*recSink).gate = gate
	if err := d.Store.Commit(t.Context(), store.Batch{Source: "motcua", At: t0.Add(-10 * time.Minute), Events: []store.OutboxEvent{{
		Sinks: []string{"rec"}, Event: &pipeline.Event{ID: "e1", Type: "created", Source: "motcua", Entity: "dossier", Key: "A", Version: 1, DetectedAt: t0.Add(-10 * time.Minute)},
	}}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		close(gate)
		cancel()
		<-done
	}()
	get := func(path string, accept string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+d.HTTPAddr()+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, func() bool { return d.HTTPAddr() != "" })
	waitUntil(t, func() bool { _, body := get("/readyz", ""); return strings.Contains(body, "agency database down") })

	code, body := get("/readyz", "application/json")
	if code != http.StatusOK {
		t.Fatalf("/readyz = %d %s; a degraded source must not fail readiness", code, body)
	}
	var h Health
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	if h.Status != "degraded" || !h.Ready || !h.Store.Reachable || len(h.Sources) != 1 || !h.Sources[0].Degraded ||
		h.Sources[0].Stopped || !strings.Contains(h.Sources[0].LastError, "agency database down") || h.Sources[0].FreshnessSeconds != -1 {
		t.Errorf("health = %+v", h)
	}
	if len(h.Sinks) != 1 || h.Sinks[0].OutboxDepth != 1 || h.Sinks[0].OldestPendingAgeSeconds != 600 {
		t.Errorf("sinks = %+v, want rec with 1 waiting for 600s", h.Sinks)
	}

	waitUntil(t, func() bool {
		_, m := get("/metrics", "")
		return strings.Contains(m, `egov_lock_held{lock="dispatch/rec",replica="`+Replica()+`"} 1`)
	})
	_, metrics := get("/metrics", "")
	for _, want := range []string{
		`egov_outbox_depth{sink="rec"} 1`,
		`egov_outbox_oldest_age_seconds{sink="rec"} 600`,
		`egov_dead_letters{sink="rec"} 0`,
		`egov_quarantine_entries{source="motcua"} 0`,
		`egov_source_freshness_seconds{source="motcua"} -1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestFailedDeliveriesAreLoggedOncePerSinkAndMinute(t *testing.T) {
	var buf bytes.Buffer
	f := newFailSummary(slog.New(slog.NewTextHandler(&buf, nil)))
	at := time.Date(2026, 11, 27, 2, 0, 5, 0, time.UTC)
	for i, e := range []struct{ sink, event, err string }{
		{"webhook", "e1", "HTTP 503"}, {"webhook", "e2", "HTTP 503"}, {"webhook", "e1", "timeout"}, {"zalo", "e9", "zalo -32"},
	} {
		f.record(e.sink, e.event, e.err, at.Add(time.Duration(i)*time.Second))
	}
	f.flush(at.Add(30*time.Second), false)
	if buf.Len() != 0 {
		t.Fatalf("logged before the minute ended:\n%s", buf.String())
	}
	f.flush(at.Add(time.Minute), false)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per sink, got:\n%s", buf.String())
	}
	for _, want := range []string{"sink=webhook", "attempts=3", "events=2", `err1="HTTP 503"`, "count1=2", "err2=timeout", "count2=1"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("webhook summary lacks %s: %s", want, lines[0])
		}
	}
	if !strings.Contains(lines[1], "sink=zalo") || !strings.Contains(lines[1], "attempts=1") {
		t.Errorf("zalo summary: %s", lines[1])
	}
}
