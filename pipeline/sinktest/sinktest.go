// Package sinktest is the conformance suite every sink runs in its own tests, so
// that every destination is held to the same delivery guarantees.
package sinktest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Harness connects the suite to one sink and its destination.
type Harness struct {
	// Sink delivers to a fresh, empty destination (a fresh schema, stream, server).
	Sink pipeline.Sink
	// Received returns the events the destination's consumer holds, in arrival
	// order, as the consumer sees them: after whatever deduplication the destination
	// itself performs.
	Received func(t *testing.T) []pipeline.Event
	// Dedupes says the destination drops redelivered event ids itself (a primary
	// key, a message-id window). When false (a webhook), the suite instead checks that
	// a redelivery reaches the consumer with the same id, so the consumer can
	// deduplicate on it.
	Dedupes bool
}

// Run runs the suite; open is called once per case and must return a harness over a
// fresh destination.
func Run(t *testing.T, open func(t *testing.T) Harness) {
	cases := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"DeliversEveryEventInOrderPerKey", deliversEveryEvent},
		{"RedeliveryIsIdempotent", redeliveryIsIdempotent},
		{"ConcurrentDeliveries", concurrentDeliveries},
		{"VietnameseTextAndTypesSurvive", textSurvives},
		{"CancelledContextIsTransient", cancelledIsTransient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := open(t)
			t.Cleanup(func() { _ = h.Sink.Close() })
			c.fn(t, h)
		})
	}
}

// Event builds a deterministic event for key and version.
func Event(source, key string, version int64) *pipeline.Event {
	typ := pipeline.EventUpdated
	if version == 1 {
		typ = pipeline.EventCreated
	}
	ev := &pipeline.Event{
		Type: typ, Source: source, Entity: "dossier", Key: key, Agency: "UBND-TEST", Version: version,
		After:      map[string]any{"code": key, "status": version, "citizen": "Nguyễn Văn Đức"},
		DetectedAt: time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC),
	}
	if version > 1 {
		ev.Before = map[string]any{"code": key, "status": version - 1, "citizen": "Nguyễn Văn Đức"}
		ev.Changed = []string{"status"}
	}
	ev.ID = pipeline.EventID(source, ev.Entity, key, version, typ, "")
	return ev
}

func deliver(t *testing.T, s pipeline.Sink, ev *pipeline.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Deliver(ctx, ev); err != nil {
		t.Fatalf("deliver %s (%s v%d): %v", ev.ID, ev.Key, ev.Version, err)
	}
}

func deliversEveryEvent(t *testing.T, h Harness) {
	var sent []*pipeline.Event
	for v := int64(1); v <= 10; v++ {
		for k := 0; k < 5; k++ {
			ev := Event("src", fmt.Sprintf("HS-%d", k), v)
			deliver(t, h.Sink, ev)
			sent = append(sent, ev)
		}
	}
	got := h.Received(t)
	if len(got) != len(sent) {
		t.Fatalf("consumer holds %d events, want %d", len(got), len(sent))
	}
	ids := map[string]bool{}
	last := map[string]int64{}
	for _, ev := range got {
		ids[ev.ID] = true
		if ev.Version <= last[ev.Key] {
			t.Fatalf("key %s: version %d arrived after %d", ev.Key, ev.Version, last[ev.Key])
		}
		last[ev.Key] = ev.Version
	}
	for _, ev := range sent {
		if !ids[ev.ID] {
			t.Fatalf("event %s never reached the consumer", ev.ID)
		}
	}
}

func redeliveryIsIdempotent(t *testing.T, h Harness) {
	evs := []*pipeline.Event{Event("src", "A", 1), Event("src", "B", 1), Event("src", "A", 2)}
	for round := 0; round < 2; round++ { // the dispatcher redelivers after a crash
		for _, ev := range evs {
			deliver(t, h.Sink, ev)
		}
	}
	counts := map[string]int{}
	for _, ev := range h.Received(t) {
		counts[ev.ID]++
	}
	want := 1
	if !h.Dedupes {
		want = 2
	}
	for _, ev := range evs {
		if counts[ev.ID] != want {
			t.Errorf("event %s reached the consumer %d times, want %d", ev.ID, counts[ev.ID], want)
		}
	}
	if len(counts) != len(evs) {
		t.Errorf("consumer saw %d distinct ids, want %d", len(counts), len(evs))
	}
}

func concurrentDeliveries(t *testing.T, h Harness) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ev := Event("src", fmt.Sprintf("W%d-%d", w, i), 1)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := h.Sink.Deliver(ctx, ev); err != nil {
					errs <- err
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := len(h.Received(t)); got != workers*each {
		t.Fatalf("consumer holds %d events, want %d", got, workers*each)
	}
}

func textSurvives(t *testing.T, h Harness) {
	ev := Event("src", "Đ-001", 2)
	deliver(t, h.Sink, ev)
	got := h.Received(t)
	if len(got) != 1 {
		t.Fatalf("consumer holds %d events, want 1", len(got))
	}
	g := got[0]
	if g.ID != ev.ID || g.Key != "Đ-001" || g.After["citizen"] != "Nguyễn Văn Đức" || fmt.Sprint(g.After["status"]) != "2" ||
		!g.DetectedAt.Equal(ev.DetectedAt) || len(g.Changed) != 1 || g.Changed[0] != "status" {
		t.Fatalf("consumer got %+v, want %+v", g, ev)
	}
}

func cancelledIsTransient(t *testing.T, h Harness) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.Sink.Deliver(ctx, Event("src", "C", 1))
	if err == nil {
		return // a sink that finished before looking at ctx is fine
	}
	if pipeline.IsPermanent(err) {
		t.Fatalf("a cancelled delivery was classed permanent (it would be dead-lettered): %v", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Logf("cancelled delivery error does not wrap context.Canceled: %v", err)
	}
}
