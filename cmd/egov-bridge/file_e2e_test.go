package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// examWorkbook is a result sheet as an education department publishes it: a
// merged title, the header, then one row per candidate (SBD, name, date of birth
// as a date cell, marks; "VẮNG" when absent).
func examWorkbook(t *testing.T, candidates [][]any) []byte {
	t.Helper()
	f := excelize.NewFile()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.SetSheetName("Sheet1", "KetQua"))
	must(f.SetCellValue("KetQua", "A1", "KẾT QUẢ THI TỐT NGHIỆP THPT NĂM 2026 - HỘI ĐỒNG THI 49"))
	must(f.MergeCell("KetQua", "A1", "F1"))
	header := []any{"SBD", "Họ và tên", "Ngày sinh", "Toán", "Ngữ văn", "Ngoại ngữ"}
	must(f.SetSheetRow("KetQua", "A3", &header))
	for i, c := range candidates {
		must(f.SetSheetRow("KetQua", fmt.Sprintf("A%d", i+4), &c))
	}
	b, err := f.WriteToBuffer()
	must(err)
	return b.Bytes()
}

// TestExamFileVersionsAreDiffedLikeAFeed runs the daemon on a folder the
// department drops its result files into: the newest file is the current set, a
// re-marked candidate in a new version is an update (exam.remarked), a candidate
// dropped from two complete polls is deleted, and a file still being copied fails
// the poll without counting anyone as gone.
func TestExamFileVersionsAreDiffedLikeAFeed(t *testing.T) {
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	if err := os.Mkdir(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	mappingPath, err := filepath.Abs("../../mappings/exam-thpt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "egov.yaml")
	write(t, config, fmt.Sprintf(`store: { driver: sqlite, path: state.db }
sources:
  - name: so-gddt
    type: file
    path: inbox
    pattern: "ket-qua-*.xlsx"
    pick: newest
    settle: 1m
    columns: [SBD, HoTen, NgaySinh, Toan, NguVan, NgoaiNgu]
    aliases: { HoTen: ["Họ và tên"] }
    schedule: "@every 5m"
    agency: SO-GDDT
    mapping: %s
    deletes: { after_misses: 2 }
sinks:
  - { name: events, type: log, path: events.jsonl }
routes:
  - { events: ["*"], to: [events] }
`, mappingPath))

	birth := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
	v1 := [][]any{
		{"49001234", "Nguyễn Thị Bích Ngọc", birth(2008, 3, 15), 8.4, 7.25, 9.2},
		{"49001235", "Trần Văn Đức", birth(2008, 12, 1), 6, "VẮNG", 5.5},
		{"49001236", "Lê Minh Khang", birth(2008, 11, 5), 9.6, 8, "VẮNG"},
	}
	now := time.Date(2026, 7, 16, 2, 0, 0, 0, time.UTC)
	drop := func(name string, rows [][]any, mod time.Time) {
		t.Helper()
		p := filepath.Join(inbox, name)
		if err := os.WriteFile(p, examWorkbook(t, rows), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	poll := func() ([]string, error) {
		t.Helper()
		now = now.Add(5 * time.Minute)
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
			kind := ev.Type
			if ev.Rule != "" {
				kind = ev.Rule
			}
			f := ev.After
			if f == nil {
				f = ev.Before
			}
			out = append(out, fmt.Sprintf("%s %s math=%v birth=%v", kind, ev.Key, f["math"], f["birth_date"]))
		}
		seen = len(evs)
		slices.Sort(out)
		return out, runErr
	}

	drop("ket-qua-2026-07-15.xlsx", v1, now.Add(-time.Hour))
	got, err := poll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"created 49001234 math=8.4 birth=2008-03-14T17:00:00Z",
		"created 49001235 math=6 birth=2008-11-30T17:00:00Z",
		"created 49001236 math=9.6 birth=2008-11-04T17:00:00Z",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first poll:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A new version: 49001235 re-marked, 49001236 withdrawn.
	v2 := [][]any{v1[0], {"49001235", "Trần Văn Đức", birth(2008, 12, 1), 6.5, "VẮNG", 5.5}}
	drop("ket-qua-2026-07-16.xlsx", v2, now.Add(-10*time.Minute))
	got, err = poll()
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"exam.remarked 49001235 math=6.5 birth=2008-11-30T17:00:00Z",
		"updated 49001235 math=6.5 birth=2008-11-30T17:00:00Z",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second poll (first miss):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A third version is being copied in (modified just now): the poll fails and
	// counts nothing.
	drop("ket-qua-2026-07-17.xlsx", v2[:1], now.Add(5*time.Minute-10*time.Second))
	if got, err = poll(); err == nil || !strings.Contains(err.Error(), "less than settle") || len(got) != 0 {
		t.Fatalf("poll during a copy: events %v, err %v; want none and the settle error", got, err)
	}
	if err := os.Remove(filepath.Join(inbox, "ket-qua-2026-07-17.xlsx")); err != nil {
		t.Fatal(err)
	}

	got, err = poll()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"deleted 49001236 math=9.6 birth=2008-11-04T17:00:00Z"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("third complete poll (second miss):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
