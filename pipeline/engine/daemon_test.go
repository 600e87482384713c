package engine

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDaemonServesHealthReadinessAndMetricsThenStopsCleanly(t *testing.T) {
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
	d, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + d.HTTPAddr() + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, func() bool { return d.HTTPAddr() != "" })
	waitUntil(t, func() bool { code, _ := get("/readyz"); return code == http.StatusOK })
	if code, body := get("/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	waitUntil(t, func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, `egov_last_sync_timestamp_seconds{source="motcua"}`)
	})
	if _, body := get("/metrics"); !strings.Contains(body, "go_goroutines") {
		t.Fatal("/metrics lacks the Go collector")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v on cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err != nil {
		t.Fatalf("state store not where the config put it: %v", err)
	}
}
