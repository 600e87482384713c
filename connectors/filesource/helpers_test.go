package filesource

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

var ict = time.FixedZone("ICT", 7*3600)

// longAgo is a modification time well past any settle window.
var longAgo = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, o *Options, clock pipeline.Clock) *Source {
	t.Helper()
	var errs []string
	o.Validate(func(field, format string, args ...any) { errs = append(errs, field+": "+fmt.Sprintf(format, args...)) })
	if len(errs) > 0 {
		t.Fatalf("options: %v", errs)
	}
	if clock == nil {
		clock = func() time.Time { return time.Date(2026, 7, 16, 1, 0, 0, 0, time.UTC) }
	}
	src, err := Open(pipeline.Env{Name: "test", Zone: ict, Clock: clock}, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func folderOptions(dir string) *Options {
	o := NewOptions()
	o.Path = dir
	return o
}

func readAll(ctx context.Context, src pipeline.Source) ([]pipeline.Row, int, error) {
	var rows []pipeline.Row
	var pos pipeline.Position
	for batches := 1; batches < 10000; batches++ {
		next, done, err := src.ReadBatch(ctx, pos, pipeline.EmitFunc(func(r pipeline.Row) error {
			rows = append(rows, r)
			return nil
		}))
		if err != nil {
			return rows, batches, err
		}
		if done {
			return rows, batches, nil
		}
		pos = next
	}
	return rows, 0, fmt.Errorf("never done")
}

// writeFile writes a file and dates it at mod.
func writeFile(t *testing.T, path string, data []byte, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// sheet builds an .xlsx in memory.
type sheet struct {
	t *testing.T
	f *excelize.File
}

func newSheet(t *testing.T, name string) *sheet {
	f := excelize.NewFile()
	if name != "Sheet1" {
		if err := f.SetSheetName("Sheet1", name); err != nil {
			t.Fatal(err)
		}
	}
	return &sheet{t: t, f: f}
}

func (s *sheet) row(name string, row int, vals ...any) {
	s.t.Helper()
	cell, _ := excelize.CoordinatesToCellName(1, row)
	if err := s.f.SetSheetRow(name, cell, &vals); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sheet) merge(name, from, to string) {
	s.t.Helper()
	if err := s.f.MergeCell(name, from, to); err != nil {
		s.t.Fatal(err)
	}
}

// dateStyle formats cells as dd/mm/yyyy (built-in 14 is m/d/yy; agencies use
// a custom format).
func (s *sheet) dateStyle(name, from, to string) {
	s.t.Helper()
	code := "dd/mm/yyyy"
	id, err := s.f.NewStyle(&excelize.Style{CustomNumFmt: &code})
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.f.SetCellStyle(name, from, to, id); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sheet) bytes() []byte {
	s.t.Helper()
	b, err := s.f.WriteToBuffer()
	if err != nil {
		s.t.Fatal(err)
	}
	return b.Bytes()
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }
