package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// BenchmarkInitialSync measures a source's first sync in process — read, map, diff
// and commit of EGOV_BENCH_ROWS (default 20,000) dossiers in the national portal's
// shape from PostgreSQL into the SQLite store, no sink routed — beside the floor of
// PostgreSQL reading the same SELECT in the same run. For profiles:
//
//	go test -run '^$' -bench InitialSync -benchtime 1x -cpuprofile cpu.out ./cmd/egov-bridge
func BenchmarkInitialSync(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("EGOV_BENCH_ROWS")); err == nil && v > 0 {
		n = v
	}
	dsn, _ := testpg.Schema(b)
	db := testpg.Open(b, dsn)
	if _, err := db.Exec(`CREATE TABLE "HoSo" (
		"MaHoSo" text PRIMARY KEY, "MaTTHC" text, "TenTTHC" text, "ChuHoSo" text, "SoDienThoai" text,
		"DonViXuLy" text, "KenhThucHien" text, "TrangThaiHoSo" int, "NgayTiepNhan" text, "NgayHenTra" text,
		"NgayKetThucXuLy" text, "NgayCapNhat" timestamptz NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`CREATE INDEX ON "HoSo" ("NgayCapNhat", "MaHoSo")`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO "HoSo" SELECT '000.00.12.H45-2611' || lpad(g::text, 7, '0'), '1.00' || (g % 97),
		'Cấp giấy phép xây dựng nhà ở riêng lẻ số ' || (g % 13), 'Nguyễn Văn Đức ' || g, '090' || lpad((g % 10000000)::text, 7, '0'),
		'UBND-XA-PHUOCLAI', (1 + g % 2)::text, 1 + g % 10, '20261101080000', '20261130170000',
		CASE WHEN g % 10 >= 8 THEN '20261120100000' END, now() - interval '1 hour' + g * interval '1 ms'
	FROM generate_series(1, $1) g`, n); err != nil {
		b.Fatal(err)
	}
	mapping, err := os.ReadFile("../../mappings/dossier-dvcqg.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var floor float64
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		os.WriteFile(filepath.Join(dir, "dossier.yaml"), mapping, 0o644)
		os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(fmt.Sprintf(`store: { driver: sqlite, path: state.db }
sources:
  - { name: motcua, type: sql, driver: postgres, dsn: %q, table: HoSo,
      cursor: { column: NgayCapNhat, key: MaHoSo }, batch_size: 1000, lag: 0s, lookback: 0s,
      mapping: dossier.yaml, agency: UBND }
sinks:
  - { name: events, type: log, path: events.jsonl }
routes:
  - { events: [%s], to: [events] }
`, dsn, routeEvents())), 0o644)
		cfg, err := engine.LoadFile(filepath.Join(dir, "c.yaml"))
		if err != nil {
			b.Fatal(err)
		}
		d, err := engine.New(context.Background(), cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		// The floor: PostgreSQL producing the same rows, in cursor order, to a client.
		start := time.Now()
		rows, err := db.Query(`SELECT * FROM "HoSo" ORDER BY "NgayCapNhat", "MaHoSo"`)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
		floor += time.Since(start).Seconds()
		st, err := d.RunOnce(context.Background(), nil)
		b.StopTimer()
		if err != nil || st["motcua"].Events != n {
			b.Fatalf("run: %v %+v", err, st)
		}
		d.Close()
		if keep := os.Getenv("EGOV_BENCH_KEEP"); keep != "" {
			data, _ := os.ReadFile(filepath.Join(dir, "state.db"))
			os.WriteFile(keep, data, 0o644)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/(b.Elapsed().Seconds()-floor), "rows/s")
	b.ReportMetric((b.Elapsed().Seconds()-floor)/floor, "x_floor")
}

// routeEvents is what the benchmark routes to its log sink: nothing by default (the
// sync alone), every event with EGOV_BENCH_ROUTE=all.
func routeEvents() string {
	if os.Getenv("EGOV_BENCH_ROUTE") == "all" {
		return `"*"`
	}
	return `"none"`
}
