package pgtable

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// BenchmarkDeliver measures one dispatcher worker: each event is a new version of
// one of 1,000 dossiers, so every delivery inserts an event row and updates a state
// row, and each commits on its own.
func BenchmarkDeliver(b *testing.B) {
	f := newFixture(b)
	evs := benchEvents(b.N)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for _, ev := range evs {
		if err := f.sink.Deliver(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkDeliverParallel is several replicas or workers sharing the pool
// (max_open_conns 8).
func BenchmarkDeliverParallel(b *testing.B) {
	f := newFixture(b, func(o *Options) { o.MaxOpenConns = 8 })
	evs := benchEvents(b.N)
	var next atomic.Int64
	ctx := context.Background()
	b.SetParallelism(2) // 2 × GOMAXPROCS goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f.sink.Deliver(ctx, evs[next.Add(1)-1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

func benchEvents(n int) []*pipeline.Event {
	evs := make([]*pipeline.Event, n)
	for i := range evs {
		ev := event("dossier", fmt.Sprintf("HS-%04d", i%1000), int64(i/1000+1))
		ev.After["citizen"] = "Nguyễn Văn Đức"
		ev.After["procedure"] = "Cấp giấy chứng nhận quyền sử dụng đất"
		ev.After["due_at"] = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		evs[i] = ev
	}
	return evs
}

// BenchmarkDeliverBatch measures the batch path: batches of 500 new versions of
// 500 dossiers, one statement each, one at a time and four at once (the
// dispatcher's default concurrency).
func BenchmarkDeliverBatch(b *testing.B) {
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			f := newFixture(b)
			const size = 500
			var next atomic.Int64
			ctx := context.Background()
			b.SetParallelism(conc)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := next.Add(1)
					evs := make([]*pipeline.Event, size)
					for i := range evs {
						evs[i] = event("dossier", fmt.Sprintf("HS-%d-%04d", k%8, i), k/8+1)
						evs[i].After["citizen"] = "Nguyễn Văn Đức"
						evs[i].After["procedure"] = "Cấp giấy chứng nhận quyền sử dụng đất"
					}
					for _, err := range f.sink.DeliverBatch(ctx, evs) {
						if err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "events/s")
		})
	}
}
