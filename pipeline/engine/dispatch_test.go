package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

func cfgDur(d time.Duration) config.Duration { return config.Duration(d) }

func TestDispatcherKeepsRecordOrderAndLetsOtherRecordsPass(t *testing.T) {
	f := newJobFixture(t, 10)
	f.src.put("A", pipeline.Row{"status": "2"})
	f.src.put("B", pipeline.Row{"status": "2"})
	f.run(t)
	f.src.put("A", pipeline.Row{"status": "4"}) // A@2 queued behind A@1
	f.run(t)
	f.sink.failFor = map[string]int{"A": 1}
	ctx := context.Background()

	if n, err := f.disp.deliverDue(ctx, "audit"); err != nil || n != 1 {
		t.Fatalf("first round delivered %d, err %v; want B only (A@1 failed)", n, err)
	}
	// Before A@1's retry time nothing of A may be delivered, not even A@2.
	if n, _ := f.disp.deliverDue(ctx, "audit"); n != 0 {
		t.Fatalf("delivered %d events before A@1's retry time", n)
	}
	f.clock.Add(time.Minute)
	for i := 0; i < 3; i++ {
		if _, err := f.disp.deliverDue(ctx, "audit"); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(f.sink.keys(), " "); got != "B@1 A@1 A@2" {
		t.Fatalf("delivery order %q, want B@1 A@1 A@2", got)
	}
	stats, _ := f.store.Stats(ctx)
	if stats.Outbox["audit"] != 0 || stats.Deliveries != 3 {
		t.Fatalf("stats %+v: want an empty outbox and 3 deliveries", stats)
	}
}

func TestDispatcherHonoursRetryAfter(t *testing.T) {
	f := newJobFixture(t, 10)
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	f.sink.retryAfter = 10 * time.Minute
	f.sink.failFor = map[string]int{"A": 1}
	ctx := context.Background()
	f.disp.deliverDue(ctx, "audit")
	p, err := f.store.Pending(ctx, "audit", f.clock.Now().Add(9*time.Minute), 10)
	if err != nil || len(p) != 0 {
		t.Fatalf("due before the receiver's Retry-After: %v, %v", p, err)
	}
	p, _ = f.store.Pending(ctx, "audit", f.clock.Now().Add(10*time.Minute), 10)
	if len(p) != 1 || p[0].Attempts != 1 || !strings.Contains(p[0].LastErr, "503") {
		t.Fatalf("after Retry-After: %+v", p)
	}
}

func TestDispatcherDeadLettersPermanentErrorsExhaustedRetriesAndOldEvents(t *testing.T) {
	f := newJobFixture(t, 10)
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	ctx := context.Background()
	f.sink.permanent = errors.New("400 bad request: unknown agency")
	if _, err := f.disp.deliverDue(ctx, "audit"); err != nil {
		t.Fatal(err)
	}
	dl, err := f.store.DeadLetters(ctx, "audit", 10)
	if err != nil || len(dl) != 1 || !strings.Contains(dl[0].Reason, "unknown agency") || dl[0].Attempts != 1 {
		t.Fatalf("dead letters = %+v, %v; want A with the receiver's reason after 1 attempt", dl, err)
	}

	f.sink.permanent = nil
	f.src.put("B", pipeline.Row{"status": "2"})
	f.run(t)
	f.sink.failFor = map[string]int{"B": 100}
	for i := 0; i < 3; i++ {
		if _, err := f.disp.deliverDue(ctx, "audit"); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(time.Hour)
	}
	dl, _ = f.store.DeadLetters(ctx, "audit", 10)
	if len(dl) != 2 || !strings.Contains(dl[1].Reason, "gave up after 3 attempts") {
		t.Fatalf("dead letters = %+v; want B given up after max_attempts", dl)
	}

	f.src.put("C", pipeline.Row{"status": "2"})
	f.run(t)
	f.sink.failFor = map[string]int{"C": 100}
	f.disp.Default.MaxAge = cfgDur(30 * time.Minute)
	f.clock.Add(time.Hour) // C was detected an hour ago and still fails
	if _, err := f.disp.deliverDue(ctx, "audit"); err != nil {
		t.Fatal(err)
	}
	dl, _ = f.store.DeadLetters(ctx, "audit", 10)
	if len(dl) != 3 || !strings.Contains(dl[2].Reason, "over max_age 30m0s") {
		t.Fatalf("dead letters = %+v; want C given up for its age", dl)
	}
}

func TestDispatcherDeliversRecordsInParallel(t *testing.T) {
	f := newJobFixture(t, 100)
	for i := 0; i < 8; i++ {
		f.src.put(fmt.Sprintf("K%d", i), pipeline.Row{"status": "2"})
	}
	f.run(t)
	f.disp.Default.Concurrency = 4
	gate := make(chan struct{})
	f.sink.gate = gate
	done := make(chan int, 1)
	go func() { n, _ := f.disp.deliverDue(context.Background(), "audit"); done <- n }()
	waitUntil(t, func() bool { return f.sink.inFlight.Load() == 4 }) // four records at once, no more
	close(gate)
	if n := <-done; n != 8 {
		t.Fatalf("delivered %d, want 8", n)
	}
	if peak := f.sink.peak.Load(); peak != 4 {
		t.Fatalf("peak concurrency %d, want 4", peak)
	}
}

func TestBackoffGrowsAndStaysWithinBounds(t *testing.T) {
	cfg := DeliveryConfig{BackoffMin: cfgDur(time.Second), BackoffMax: cfgDur(time.Minute)}
	for attempt := 1; attempt <= 12; attempt++ {
		want := time.Second << (attempt - 1)
		if want > time.Minute {
			want = time.Minute
		}
		for i := 0; i < 50; i++ {
			b := backoff(cfg, attempt)
			if b < want/2 || b > want {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", attempt, b, want/2, want)
			}
		}
	}
}

func TestDispatcherLogsLeaveOutTheReceiversAnswer(t *testing.T) {
	f := newJobFixture(t, 10)
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	var logs strings.Builder
	f.disp.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f.sink.permanent = pipeline.WithDetail(errors.New("HTTP 422"), `{"echo":"phone 0912345678"}`)
	if _, err := f.disp.deliverDue(context.Background(), "audit"); err != nil {
		t.Fatal(err)
	}
	dl, _ := f.store.DeadLetters(context.Background(), "audit", 10)
	if len(dl) != 1 || !strings.Contains(dl[0].Reason, "0912345678") {
		t.Fatalf("the dead letter lost the receiver's answer: %+v", dl)
	}
	if strings.Contains(logs.String(), "0912345678") || !strings.Contains(logs.String(), "HTTP 422") {
		t.Fatalf("log line:\n%s", logs.String())
	}
}
