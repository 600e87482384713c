package natssink

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/sinktest"
)

// BenchmarkDeliver measures publish throughput against the real server: one
// delivery at a time (how one dispatcher worker delivers) and 8 per CPU at once.
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
}
