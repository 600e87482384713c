package store

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// New snapshot rows bound through the driver (insertNewSnapshotRaw) are stored
// exactly as the same rows upserted through database/sql: same values, same
// SQLite types (hashes as blobs, the JSON as text), facts and lazy seqs included,
// across full and partial statements.
func TestNewRowsBoundThroughTheDriverAreStoredAsUpserted(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 30, 0, 123, time.UTC)
	batch := func(isNew bool) Batch {
		b := Batch{Source: "src", At: at, Position: []byte("1")}
		for i := range 600 {
			key := fmt.Sprintf("K%04d", i)
			hash := fmt.Sprintf("%064x", i*7919)
			switch i % 50 {
			case 3:
				hash = "not-hex-" + key // stored as text
			case 4:
				hash = ""
			}
			fields := map[string]any{"code": key, "name": "Nguyễn Văn Đức", "n": int64(i), "due": at.Add(time.Duration(i) * time.Hour)}
			if i%97 == 0 {
				fields = map[string]any{"other": "shape"}
			}
			b.Snapshot = append(b.Snapshot, SnapshotEntry{Entity: "d", Key: key, Hash: hash, Version: 1, Fields: fields,
				Deleted: i%41 == 0, New: isNew})
			if i%4 != 0 {
				rec := at.Add(-time.Duration(i) * time.Hour)
				f := Fact{Entity: "d", Key: key, Kind: "dossier", Agency: fmt.Sprint("A", i%3), State: "open",
					ReceivedAt: rec, ReceivedDay: rec.Format(time.DateOnly), DueAt: rec.Add(72 * time.Hour),
					DueDay: rec.Add(72 * time.Hour).Format(time.DateOnly), Supplement: i%5 == 0, SeenDay: "2026-11-28"}
				if i%3 == 0 {
					f.State, f.FinishedAt, f.FinishedDay = "finished", rec.Add(time.Hour), rec.Add(time.Hour).Format(time.DateOnly)
				}
				b.Facts = append(b.Facts, f)
			}
			if i%2 == 0 {
				ev := &pipeline.Event{ID: pipeline.EventID("src", "d", key, 1, pipeline.EventCreated, hash), Type: pipeline.EventCreated,
					Source: "src", Entity: "d", Key: key, Version: 1, Snapshot: true, After: fields, DetectedAt: at}
				sinks := []string{"log"}
				if i%6 == 0 {
					sinks = []string{"log", "hook"}
				}
				b.Events = append(b.Events, OutboxEvent{Event: ev, Sinks: sinks})
			}
		}
		return b
	}
	rows := func(isNew bool) []map[string]any {
		s := openSQLiteAt(t, filepath.Join(t.TempDir(), "x.db"))
		if err := s.Commit(t.Context(), batch(isNew)); err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		r, err := s.db.QueryxContext(t.Context(), `SELECT source, entity, key, hash, typeof(hash) AS th, version, fields,
			typeof(fields) AS tf, deleted, typeof(deleted) AS td, updated_at, typeof(updated_at) AS tu, lazy_seq, `+factColumnList+`
			FROM snapshot ORDER BY entity, key`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			m := map[string]any{}
			if err := r.MapScan(m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	raw, upserted := rows(true), rows(false)
	if len(raw) != 600 || len(upserted) != 600 {
		t.Fatalf("%d rows bound through the driver, %d upserted; want 600 each", len(raw), len(upserted))
	}
	lazy := 0
	for i := range raw {
		if !reflect.DeepEqual(raw[i], upserted[i]) {
			t.Fatalf("row %d bound through the driver:\n  %v\nupserted:\n  %v", i, raw[i], upserted[i])
		}
		if raw[i]["lazy_seq"] != nil {
			lazy++
		}
	}
	if lazy == 0 {
		t.Error("no row has a lazy seq: the test does not cover it")
	}
	if raw[1]["fact_group"] == nil || raw[0]["fact_group"] != nil || raw[1]["th"] != "blob" || raw[3]["th"] != "text" {
		t.Errorf("rows 0, 1 and 3 = %v, %v, %v; want facts on row 1 only, a blob hash and a text one", raw[0], raw[1], raw[3])
	}
}
