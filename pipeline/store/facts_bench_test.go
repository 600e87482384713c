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

// BenchmarkCommitFacts is BenchmarkCommit's batch (1000 new dossiers with their
// snapshot rows and created events) without and with what a mapping with
// figures: and two timer rules adds: 1000 facts (and their aggregates), and 2000
// timer arms. The differences are what the steering figures and the timers cost
// the sync.
func BenchmarkCommitFacts(b *testing.B) {
	for _, tc := range []struct {
		name          string
		facts, timers bool
	}{{"without", false, false}, {"facts", true, false}, {"with", true, true}} {
		b.Run("sqlite/"+tc.name, func(b *testing.B) {
			benchCommitFacts(b, openSQLite(b, filepath.Join(b.TempDir(), "bench.db")), tc.facts, tc.timers)
		})
		b.Run("postgres/"+tc.name, func(b *testing.B) {
			dsn, _ := testpg.Schema(b)
			benchCommitFacts(b, openPostgres(b, dsn), tc.facts, tc.timers)
		})
	}
}

func benchCommitFacts(b *testing.B, s store.Store, withFacts, withTimers bool) {
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
			received := at.Add(-time.Duration(i) * time.Minute)
			due := received.Add(72 * time.Hour)
			r := pipeline.Record{Entity: "dossier", Key: key, Agency: fmt.Sprintf("XA-%d", i%50), Fields: map[string]any{
				"code": key, "citizen": "Nguyễn Văn Đức", "phone": "84901234567",
				"procedure": "Cấp giấy phép xây dựng", "status": int64(2), "received_at": received, "due_at": due,
			}}
			batch.Snapshot = append(batch.Snapshot, store.SnapshotEntry{Entity: r.Entity, Key: key, Hash: r.Hash(), Version: 1, Fields: r.Fields, New: true})
			ev := &pipeline.Event{ID: pipeline.EventID("motcua", r.Entity, key, 1, pipeline.EventCreated, ""), Type: pipeline.EventCreated,
				Source: "motcua", Entity: r.Entity, Key: key, Version: 1, Snapshot: true, After: r.Fields, DetectedAt: at}
			batch.Events = append(batch.Events, store.OutboxEvent{Event: ev, Sinks: []string{"events", "ioc"}})
			if withFacts {
				batch.Facts = append(batch.Facts, store.Fact{Entity: "dossier", Key: key, Kind: "dossier", Agency: r.Agency, State: "open",
					ReceivedAt: received, ReceivedDay: received.Format(time.DateOnly), DueAt: due, DueDay: due.Format(time.DateOnly),
					SeenDay: at.Format(time.DateOnly)})
			}
			if withTimers {
				batch.Timers = append(batch.Timers,
					store.TimerArm{Entity: "dossier", Key: key, Rule: "deadline.due_soon", At: due.Add(-48 * time.Hour)},
					store.TimerArm{Entity: "dossier", Key: key, Rule: "deadline.overdue", At: due})
			}
		}
		b.StartTimer()
		if err := s.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batches++
	}
	b.ReportMetric(float64(batches*rows)/b.Elapsed().Seconds(), "rows/s")
}
