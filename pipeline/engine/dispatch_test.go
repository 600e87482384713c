package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

func cfgDur(d time.Duration) config.Duration { return config.Duration(d) }

func TestDispatcherRetriesInOrderThenDelivers(t *testing.T) {
	f := newJobFixture(t, 10)
	f.src.put("A", pipeline.Row{"status": "2"})
	f.src.put("B", pipeline.Row{"status": "2"})
	f.run(t)
	f.sink.failNext = 1
	ctx := context.Background()

	n, hold, err := f.disp.deliverDue(ctx, "audit")
	if err != nil || n != 0 || hold.IsZero() {
		t.Fatalf("first pass: delivered %d, hold %v, err %v; want a hold after the failure", n, hold, err)
	}
	// Before the retry time nothing is due: B must not overtake A.
	if n, _, _ := f.disp.deliverDue(ctx, "audit"); n != 0 {
		t.Fatalf("delivered %d events before A's retry time", n)
	}
	f.clock.Add(time.Minute)
	if n, _, err := f.disp.deliverDue(ctx, "audit"); err != nil || n != 2 {
		t.Fatalf("after the backoff: delivered %d, err %v; want 2", n, err)
	}
	if got := strings.Join(f.sink.keys(), " "); got != "A@1 B@1" {
		t.Fatalf("delivery order %q, want A@1 B@1", got)
	}
	stats, _ := f.store.Stats(ctx)
	if stats.Outbox["audit"] != 0 || stats.Deliveries != 2 {
		t.Fatalf("stats %+v: want an empty outbox and 2 deliveries", stats)
	}
}

func TestDispatcherDeadLettersPermanentErrorsAndExhaustedRetries(t *testing.T) {
	f := newJobFixture(t, 10)
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	ctx := context.Background()
	f.sink.permanent = errors.New("400 bad request: unknown agency")
	if _, _, err := f.disp.deliverDue(ctx, "audit"); err != nil {
		t.Fatal(err)
	}
	dl, err := f.store.DeadLetters(ctx, "audit", 10)
	if err != nil || len(dl) != 1 || !strings.Contains(dl[0].Reason, "unknown agency") || dl[0].Attempts != 1 {
		t.Fatalf("dead letters = %+v, %v; want A with the receiver's reason after 1 attempt", dl, err)
	}

	f.sink.permanent = nil
	f.src.put("B", pipeline.Row{"status": "2"})
	f.run(t)
	f.sink.failNext = 100
	for i := 0; i < 3; i++ {
		if _, _, err := f.disp.deliverDue(ctx, "audit"); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(time.Hour)
	}
	dl, _ = f.store.DeadLetters(ctx, "audit", 10)
	if len(dl) != 2 || !strings.Contains(dl[1].Reason, "gave up after 3 attempts") {
		t.Fatalf("dead letters = %+v; want B given up after max_attempts", dl)
	}
}

func TestBackoffGrowsAndStaysWithinBounds(t *testing.T) {
	d := &Dispatcher{Config: DeliveryConfig{BackoffMin: cfgDur(time.Second), BackoffMax: cfgDur(time.Minute)}}
	for attempt := 1; attempt <= 12; attempt++ {
		want := time.Second << (attempt - 1)
		if want > time.Minute {
			want = time.Minute
		}
		for i := 0; i < 50; i++ {
			b := d.backoff(attempt)
			if b < want/2 || b > want {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", attempt, b, want/2, want)
			}
		}
	}
}
