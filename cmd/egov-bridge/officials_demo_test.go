package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// TestTheDemosDeadlineAlertsAddressTheDistrictsOfficial: on the demo config, a
// commune's dossier due soon fires the shipped mapping's deadline.due_soon, the
// routes send it to the zalo sink, and that (dry-run) sink routes one OA message
// to the official the demo lists for the district.
func TestTheDemosDeadlineAlertsAddressTheDistrictsOfficial(t *testing.T) {
	dir := t.TempDir()
	cfgText, err := os.ReadFile("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	linkDemoFiles(t, dir)
	file := filepath.Join(dir, "configs", "demo.yaml")
	if err := os.WriteFile(file, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// 10:00 in Hồ Chí Minh City: outside the quiet hours.
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	d, err := engine.New(t.Context(), cfg, engine.Options{Clock: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	job := d.Jobs[0]
	due := now.Add(47 * time.Hour)
	rec := pipeline.Record{Entity: "dossier", Key: "000.00.12.H45-261127-0001", Agency: "UBND-XA-LONGHAU", Fields: map[string]any{
		"code": "000.00.12.H45-261127-0001", "procedure": "Cấp giấy phép xây dựng", "citizen": "Nguyễn Văn Đức",
		"unit": "UBND-XA-LONGHAU", "status": int64(4), "due_at": due}}
	ev, err := job.Map.FireTimer(rec, job.Name, 1, "deadline.due_soon", due.Add(-48*time.Hour), now)
	if err != nil || ev == nil {
		t.Fatalf("FireTimer = %v, %v", ev, err)
	}
	if to := engine.NewRouter(cfg.Routes).Sinks(ev); !slices.Contains(to, "zalo") {
		t.Fatalf("the demo routes deadline.due_soon to %v, not to its zalo sink", to)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := d.Sinks["zalo"].Deliver(ctx, ev); err != nil {
		t.Fatal(err)
	}
	sends, err := d.Store.(interface {
		ZaloSends(ctx context.Context, sink, eventID string, limit int) ([]store.ZaloSend, error)
	}).ZaloSends(ctx, "zalo", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sends) != 1 || sends[0].Route != store.ZaloRouteOA || !sends[0].DryRun ||
		!strings.Contains(sends[0].Request, `"user_id":"demo-uid-chanh-vp-huyen"`) ||
		!strings.Contains(sends[0].Request, "UBND xã Long Hậu sắp đến hạn trả kết quả") {
		t.Errorf("the demo's zalo sink recorded %+v; want one dry-run OA message to the district's official", sends)
	}
}
