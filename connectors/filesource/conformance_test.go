package filesource

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/sourcetest"
)

func TestConformanceCSVFolder(t *testing.T) { sourcetest.Run(t, fileHarness("csv")) }

func TestConformanceXLSXFolder(t *testing.T) { sourcetest.Run(t, fileHarness("xlsx")) }

// fileHarness keeps the suite's items in two files of a folder (odd and even
// IDs), rewritten whole on every change, as an agency replaces its files.
func fileHarness(format string) sourcetest.Harness {
	return sourcetest.Harness{Open: func(t *testing.T, st sourcetest.Settings) sourcetest.Fixture {
		dir := t.TempDir()
		items := map[int64]sourcetest.Item{}
		mod := longAgo
		write := func() {
			mod = mod.Add(time.Second)
			for part := int64(0); part < 2; part++ {
				var ids []int64
				for id := range items {
					if id%2 == part {
						ids = append(ids, id)
					}
				}
				slices.Sort(ids)
				name := filepath.Join(dir, fmt.Sprintf("part%d.%s", part, format))
				var data []byte
				if format == "csv" {
					var buf bytes.Buffer
					w := csv.NewWriter(&buf)
					w.Write([]string{"id", "updated_at", "payload"})
					for _, id := range ids {
						it := items[id]
						w.Write([]string{fmt.Sprint(id), it.UpdatedAt.UTC().Format(time.RFC3339Nano), it.Payload})
					}
					w.Flush()
					data = buf.Bytes()
				} else {
					s := newSheet(t, "Data")
					s.row("Data", 1, "id", "updated_at", "payload")
					for i, id := range ids {
						it := items[id]
						// Times in the sheet are the zone's wall clock, as Excel keeps them.
						wall := it.UpdatedAt.In(ict)
						s.row("Data", i+2, id, time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, time.UTC), it.Payload)
					}
					data = s.bytes()
				}
				writeFile(t, name, data, mod)
			}
		}
		write()
		o := folderOptions(dir)
		o.BatchSize = st.BatchSize
		o.Settle = dur(time.Minute)
		o.Columns = []string{"id", "updated_at", "payload"}
		return sourcetest.Fixture{
			Source: open(t, o, nil),
			Put: func(t *testing.T, its ...sourcetest.Item) {
				for _, it := range its {
					items[it.ID] = it
				}
				write()
			},
			Delete: func(t *testing.T, ids ...int64) {
				for _, id := range ids {
					delete(items, id)
				}
				write()
			},
			Break: func(t *testing.T) func() {
				// An agency starts copying a new version: the file is fresh.
				now := time.Date(2026, 7, 16, 1, 0, 0, 0, time.UTC)
				name := filepath.Join(dir, "part1."+format)
				if err := os.Chtimes(name, now, now); err != nil {
					t.Fatal(err)
				}
				return write
			},
		}
	}}
}
