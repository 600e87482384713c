package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// BenchmarkFirstSyncMapAndDetect measures a first sync's read lane after the
// source: a 1000-row batch of DVCQG dossiers (as the bench seeds them) mapped
// through the shipped mapping and compared (hash, event, facts, timers, snapshot
// entries) against an empty store. Run it with -cpu 1: apply maps on two
// goroutines, and with one core ns/op is the CPU a batch costs.
func BenchmarkFirstSyncMapAndDetect(b *testing.B) {
	now := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	j := benchDossierJob(b)
	rows := benchDossierRows(1000, now)
	inSnapshot := func(int, bool) bool { return true }
	b.ReportAllocs()
	for b.Loop() {
		records := benchApply(b, j, rows)
		var batch store.Batch
		j.detect(records, nil, make(map[string]store.SnapshotEntry, len(records)), inSnapshot, now, &batch) // as batch makes it
		if len(batch.Events) != len(rows) {
			b.Fatalf("%d events from %d rows", len(batch.Events), len(rows))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}

// benchDossierJob is a job of the shipped DVCQG mapping, every event routed to one sink.
func benchDossierJob(b *testing.B) *Job {
	data, err := os.ReadFile("../../mappings/dossier-dvcqg.yaml")
	if err != nil {
		b.Fatal(err)
	}
	m, err := mapping.Compile("dossier-dvcqg.yaml", data, mapping.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return &Job{
		Name: "motcua", Map: m, Agency: "UBND-HUYEN-CANGIUOC", Metrics: NewMetrics(), Zone: time.FixedZone("ICT", 7*3600),
		Router: NewRouter([]Route{{Events: []string{"*"}, To: []string{"log"}}}),
	}
}

// benchApply maps the rows as a batch does; a row that fails fails the benchmark.
func benchApply(b *testing.B, j *Job, rows []pipeline.Row) []pipeline.Record {
	records := make([]pipeline.Record, 0, len(rows))
	for _, mr := range j.apply(rows) {
		if mr.err != nil {
			b.Fatal(mr.err)
		}
		records = append(records, mr.rec)
	}
	return records
}

// benchDossierRows makes n rows the way lib/pq hands the bench's table over:
// text as string, integers as int64, the portal's times as yyyyMMddHHmmss text.
func benchDossierRows(n int, now time.Time) []pipeline.Row {
	names := []string{"Nguyễn Văn An", "Trần Thị Thanh Mai", "Lê Hữu Phúc", "Đặng Quốc Hùng"}
	procs := [][2]string{{"1.000656", "Đăng ký khai sinh"}, {"1.004227", "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất"}}
	phones := []any{"0912345678", "+84 912 345 678", "84912345678", "0912.345.678", "912345678", nil, "không có"}
	units := []string{"UBND-XA-PHUOCLAI", "UBND-XA-LONGHAU", "UBND-HUYEN-CANGIUOC"}
	rows := make([]pipeline.Row, n)
	for i := range rows {
		received := now.Add(-time.Duration(i) * 97 * time.Minute)
		status := int64(1 + i%10)
		var finished any
		if status >= 9 {
			finished = received.Add(72 * time.Hour).Format("20060102150405")
		}
		p := procs[i%len(procs)]
		rows[i] = pipeline.Row{
			"MaHoSo": fmt.Sprintf("000.00.12.H45-%s-%07d", received.Format("060102"), i+1), "MaTTHC": p[0], "TenTTHC": p[1],
			"ChuHoSo": names[i%len(names)], "SoDienThoai": phones[i%len(phones)], "DonViXuLy": units[i%len(units)],
			"KenhThucHien": int64(1 + i%3), "TrangThaiHoSo": status,
			"NgayTiepNhan": received.Format("20060102150405"), "NgayHenTra": received.Add(10 * 24 * time.Hour).Format("20060102150405"),
			"NgayKetThucXuLy": finished, "NgayCapNhat": received.Add(time.Hour),
		}
	}
	return rows
}

// BenchmarkPollMapAndDetect is an incremental poll's read lane: a batch of 1000
// known dossiers, each moved to its next status, mapped and compared with the
// stored state (fields as the store returns them, JSON-decoded), so every row
// makes an update event and the mapping's rules run on it. Run it with -cpu 1.
func BenchmarkPollMapAndDetect(b *testing.B) {
	now := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	j := benchDossierJob(b)
	rows := benchDossierRows(1000, now)
	stored := make(map[string]store.SnapshotEntry, len(rows))
	for _, rec := range benchApply(b, j, rows) {
		raw, err := json.Marshal(rec.Fields)
		if err != nil {
			b.Fatal(err)
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var fields map[string]any
		if err := d.Decode(&fields); err != nil {
			b.Fatal(err)
		}
		stored[rec.Key] = store.SnapshotEntry{Entity: rec.Entity, Key: rec.Key, Hash: rec.Hash(), Version: 1, Fields: fields}
	}
	for _, r := range rows {
		r["TrangThaiHoSo"] = r["TrangThaiHoSo"].(int64)%10 + 1
		r["NgayCapNhat"] = now
	}
	inSnapshot := func(int, bool) bool { return false }
	b.ReportAllocs()
	for b.Loop() {
		records := benchApply(b, j, rows)
		snap := make(map[string]store.SnapshotEntry, len(stored))
		for k, v := range stored {
			snap[k] = v
		}
		var batch store.Batch
		j.detect(records, nil, snap, inSnapshot, now, &batch)
		if len(batch.Events) < len(rows) {
			b.Fatalf("%d events from %d changed rows", len(batch.Events), len(rows))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}
