package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Migration 0008 keeps the snapshot's rows (SQLite rebuilds the table): rows
// written before it, whose fields are JSON objects, are read as before, and a
// lazy created event of such a row gets its fields when its record moves on. Rows
// written after it are positional and read back the same.
func TestMigration0008KeepsSnapshotRows(t *testing.T) {
	for _, tc := range internalStores {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := t.Context()
			applyBefore(t, s, 8)
			at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := s.db.ExecContext(ctx, s.q(q), args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			old := `{"code":"HS1","name":"Lê Thị Hoa","status":2}`
			exec(`INSERT INTO events (seq, id, source, entity, key, type, payload, created_at) VALUES (1, 'e1', 'src', 'd', 'HS1', 'created', ?, ?)`,
				s.d.jsonArg([]byte(`{"id":"e1","type":"created","source":"src","entity":"d","key":"HS1","version":1,"snapshot":true,"detected_at":"2026-11-01T00:00:00Z","after_in_snapshot":true}`)),
				s.d.timeArg(at))
			if s.d == postgresDialect { // seq 1 was given, not drawn
				exec(`SELECT setval(pg_get_serial_sequence('events', 'seq'), 1)`)
			}
			exec(`INSERT INTO outbox (sink, seq, next_at, record, head) VALUES ('a', 1, ?, 'src/d/HS1', TRUE)`, s.d.timeArg(at))
			exec(`INSERT INTO snapshot (source, entity, key, hash, version, fields, deleted, updated_at, lazy_seq) VALUES ('src', 'd', 'HS1', 'h1', 1, ?, FALSE, ?, 1)`,
				s.d.jsonArg([]byte(old)), s.d.timeArg(at))
			if err := migrate(ctx, s.db, s.d); err != nil {
				t.Fatal(err)
			}
			if err := s.readEpoch(ctx); err != nil {
				t.Fatal(err)
			}
			snap, err := s.Snapshot(ctx, "src", "d", []string{"HS1"})
			if err != nil || snap["HS1"].Version != 1 || snap["HS1"].Fields["name"] != "Lê Thị Hoa" || snap["HS1"].Fields["status"] != json.Number("2") {
				t.Fatalf("snapshot after the migration = %+v, %v", snap, err)
			}
			// The record moves on: its lazy event keeps the old fields.
			v2 := map[string]any{"code": "HS1", "name": "Lê Thị Hoa", "status": int64(9)}
			ev := &pipeline.Event{ID: "e2", Type: pipeline.EventUpdated, Source: "src", Entity: "d", Key: "HS1", Version: 2, After: v2, DetectedAt: at}
			if err := s.Commit(ctx, Batch{Source: "src", At: at,
				Snapshot: []SnapshotEntry{{Entity: "d", Key: "HS1", Hash: "h2", Version: 2, Fields: v2}},
				Events:   []OutboxEvent{{Event: ev, Sinks: []string{"a"}}}}); err != nil {
				t.Fatal(err)
			}
			p, err := s.Pending(ctx, "a", at, 0)
			if err != nil || len(p) != 1 || p[0].Seq != 1 || p[0].Event.After["status"] != json.Number("2") {
				t.Fatalf("pending after the change = %+v, %v; want seq 1 with its own fields", p, err)
			}
			var fields string
			if err := s.db.GetContext(ctx, &fields, `SELECT CAST(fields AS TEXT) FROM snapshot`); err != nil || fields[0] != '[' {
				t.Errorf("a row written after the migration holds %s (%v), want a positional array", fields, err)
			}
			snap, err = s.Snapshot(ctx, "src", "d", []string{"HS1"})
			if err != nil || snap["HS1"].Version != 2 || snap["HS1"].Fields["status"] != json.Number("9") || len(snap["HS1"].Fields) != 3 {
				t.Fatalf("snapshot after the change = %+v, %v", snap, err)
			}
		})
	}
}
