package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Two replicas sharing one PostgreSQL store: one reader per source and one
// dispatcher per sink, so every change is one event and the receiver is asked once.
func TestTwoReplicasShareTheWorkWithoutDuplicates(t *testing.T) {
	e := newE2E(t, 20, "10s")
	r := newReceiver(t)
	e.withWebhook(r, "    delivery: { concurrency: 4 }\n")
	e.exec(`INSERT INTO hoso SELECT 'HS-' || g, 'Lâm Thị Hoa', 2, now() - interval '1 minute' FROM generate_series(1, 200) g`)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		d := e.daemon(time.Now)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Run(ctx); err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}()
	}
	waitFor(t, time.Minute, "200 events accepted", func() bool { return r.count() >= 200 })
	e.exec(`UPDATE hoso SET trang_thai = 4, ngay_cap_nhat = now() WHERE ma_ho_so IN ('HS-1', 'HS-2', 'HS-3')`)
	waitFor(t, time.Minute, "the 3 updates accepted", func() bool { return r.count() >= 203 })
	cancel()
	wg.Wait()

	if n := len(e.storedEvents()); n != 203 {
		t.Fatalf("store holds %d events, want 203 (one per change)", n)
	}
	var requests int
	r.set(func(r *receiver) { requests = r.requests })
	if requests != 203 {
		t.Fatalf("receiver was asked %d times for 203 events: both replicas delivered", requests)
	}
	for key, evs := range r.accepted() {
		for i, ev := range evs {
			if ev.Version != int64(i+1) {
				t.Fatalf("%s: versions out of order: %v", key, fmt.Sprint(ev.Version))
			}
		}
	}
}
