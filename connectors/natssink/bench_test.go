package natssink

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/sinktest"
)

// BenchmarkDeliver measures publish throughput against the real server: one
// delivery at a time, 8 per CPU at once, and batches of 500 (DeliverBatch, how the
// dispatcher hands them over), one at a time.
func BenchmarkDeliver(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s, _ := newSink(b, nil)
		ctx := context.Background()
		i := 0
		for b.Loop() {
			i++
			if err := s.Deliver(ctx, sinktest.Event("bench", fmt.Sprintf("HS-%d", i), 1)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("parallel", func(b *testing.B) {
		s, _ := newSink(b, nil)
		ctx := context.Background()
		var n atomic.Int64
		b.SetParallelism(8) // publishes wait on the network, not the CPU
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if err := s.Deliver(ctx, sinktest.Event("bench", fmt.Sprintf("HS-%d", i), 1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("batch500", func(b *testing.B) {
		s, _ := newSink(b, nil)
		ctx := context.Background()
		i := 0
		for b.Loop() {
			evs := make([]*pipeline.Event, 500)
			for k := range evs {
				i++
				evs[k] = sinktest.Event("bench", fmt.Sprintf("HS-%d", i), 1)
			}
			for _, err := range s.DeliverBatch(ctx, evs) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
	})
}
