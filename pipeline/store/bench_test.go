package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// BenchmarkCommit commits batches the size a source reads at once: 1000 new
// records, each with its snapshot row and a created event routed to two sinks.
func BenchmarkCommit(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchCommit(b, openSQLite(b, filepath.Join(b.TempDir(), "bench.db")))
	})
	b.Run("postgres", func(b *testing.B) {
		dsn, _ := testpg.Schema(b)
		benchCommit(b, openPostgres(b, dsn))
	})
}

func benchCommit(b *testing.B, s store.Store) {
	defer s.Close()
	const rows = 1000
	ctx := context.Background()
	at := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	batches := 0
	for b.Loop() {
		b.StopTimer()
		batch := store.Batch{Source: "motcua", Position: []byte(fmt.Sprint(batches)), At: at}
		for i := range rows {
			key := fmt.Sprintf("HS%08d", batches*rows+i)
			r := pipeline.Record{Entity: "dossier", Key: key, Fields: map[string]any{
				"code": key, "citizen": "Nguyễn Văn Đức", "phone": "84901234567",
				"procedure": "Cấp giấy phép xây dựng", "status": int64(2),
				"due_at": at.Add(72 * time.Hour),
			}}
			batch.Snapshot = append(batch.Snapshot, store.SnapshotEntry{Entity: r.Entity, Key: key, Hash: r.Hash(), Version: 1, Fields: r.Fields})
			ev := &pipeline.Event{ID: pipeline.EventID("motcua", r.Entity, key, 1, pipeline.EventCreated, ""), Type: pipeline.EventCreated,
				Source: "motcua", Entity: r.Entity, Key: key, Version: 1, Snapshot: true, After: r.Fields, DetectedAt: at}
			batch.Events = append(batch.Events, store.OutboxEvent{Event: ev, Sinks: []string{"events", "ioc"}})
		}
		b.StartTimer()
		if err := s.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batches++
	}
	b.ReportMetric(float64(batches*rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCommitIndexed is BenchmarkCommit with the look-up indexes the zalo sink
// asks for on dossiers (the code a citizen types, the phone DG finds dossiers by):
// what keeping them costs a sync.
func BenchmarkCommitIndexed(b *testing.B) {
	index := func(s store.Store) store.Store {
		ix := s.(interface {
			IndexLookup(entity, name string, fn store.IndexFunc)
		})
		ix.IndexLookup("dossier", "field:code", func(f map[string]any) []string { return []string{fmt.Sprint(f["code"])} })
		ix.IndexLookup("dossier", "phone:phone", func(f map[string]any) []string { return []string{fmt.Sprint(f["phone"])} })
		return s
	}
	b.Run("sqlite", func(b *testing.B) {
		benchCommit(b, index(openSQLite(b, filepath.Join(b.TempDir(), "bench.db"))))
	})
	b.Run("postgres", func(b *testing.B) {
		dsn, _ := testpg.Schema(b)
		benchCommit(b, index(openPostgres(b, dsn)))
	})
}
