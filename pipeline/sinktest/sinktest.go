// Package sinktest is the conformance suite every sink runs in its own tests, so
// that every destination is held to the same delivery guarantees.
package sinktest

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// Option adjusts how Run runs the suite.
type Option func(*options)

type options struct{ parallel bool }

// Parallel runs the cases in parallel, for a sink whose fresh destinations are
// slow to set up (a schema, its tables) and independent of each other.
func Parallel() Option { return func(o *options) { o.parallel = true } }

// Run runs the suite; open is called once per case and must return a harness over
// a fresh destination.
func Run(t *testing.T, open func(t *testing.T) Harness, opts ...Option) {
	var o options
	for _, f := range opts {
		f(&o)
	}
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
	// A sink that takes batches passes every case on its batch path too, one
	// event per DeliverBatch, and the cases about batches themselves.
	batchCases := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"BatchHasOneResultPerEvent", batchResultsPerEvent},
		{"BatchWithOnePoisonedEvent", batchWithPoison},
		{"BatchRedeliveryIsIdempotent", batchRedelivery},
		{"ConcurrentBatches", concurrentBatches},
		{"BatchCancelledContextIsTransient", batchCancelled},
	}
	for _, c := range cases {
		batchCases = append(batchCases, struct {
			name string
			fn   func(t *testing.T, h Harness)
		}{"OneEventBatches/" + c.name, func(t *testing.T, h Harness) {
			h.Sink = oneEventBatches{h.Sink.(pipeline.BatchSink)}
			c.fn(t, h)
		}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if o.parallel {
				t.Parallel()
			}
			h := open(t)
			t.Cleanup(func() { _ = h.Sink.Close() })
			c.fn(t, h)
		})
	}
	for _, c := range batchCases {
		t.Run("Batch/"+c.name, func(t *testing.T) {
			if o.parallel {
				t.Parallel()
			}
			h := open(t)
			t.Cleanup(func() { _ = h.Sink.Close() })
			if _, ok := h.Sink.(pipeline.BatchSink); !ok {
				t.Skip("the sink takes one event per Deliver")
			}
			c.fn(t, h)
		})
	}
}

// oneEventBatches delivers each event as a batch of one.
type oneEventBatches struct{ pipeline.BatchSink }

func (s oneEventBatches) Deliver(ctx context.Context, ev *pipeline.Event) error {
	errs := s.DeliverBatch(ctx, []*pipeline.Event{ev})
	if len(errs) != 1 {
		return fmt.Errorf("a batch of one event got %d results", len(errs))
	}
	return errs[0]
}

func deliverBatch(t *testing.T, s pipeline.Sink, evs []*pipeline.Event) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := s.(pipeline.BatchSink).DeliverBatch(ctx, evs)
	if len(errs) != len(evs) {
		t.Fatalf("a batch of %d events got %d results", len(evs), len(errs))
	}
	return errs
}

// batch builds version v of n records whose keys start with prefix.
func batch(prefix string, n int, v int64) []*pipeline.Event {
	evs := make([]*pipeline.Event, n)
	for i := range evs {
		evs[i] = Event("src", fmt.Sprintf("%s-%03d", prefix, i), v)
	}
	return evs
}

func batchResultsPerEvent(t *testing.T, h Harness) {
	var sent []*pipeline.Event
	for v := int64(1); v <= 3; v++ { // as the dispatcher sends them: each record's next version in a later batch
		evs := batch("B", 40, v)
		for i, err := range deliverBatch(t, h.Sink, evs) {
			if err != nil {
				t.Fatalf("event %d (%s v%d): %v", i, evs[i].Key, evs[i].Version, err)
			}
		}
		sent = append(sent, evs...)
	}
	got := h.Received(t)
	if len(got) != len(sent) {
		t.Fatalf("consumer holds %d events, want %d", len(got), len(sent))
	}
	last := map[string]int64{}
	ids := map[string]bool{}
	for _, ev := range got {
		if ev.Version <= last[ev.Key] {
			t.Fatalf("key %s: version %d arrived after %d", ev.Key, ev.Version, last[ev.Key])
		}
		last[ev.Key] = ev.Version
		ids[ev.ID] = true
	}
	for _, ev := range sent {
		if !ids[ev.ID] {
			t.Fatalf("event %s never reached the consumer", ev.ID)
		}
	}
}

// Poisoned is an event no destination can take: a value JSON cannot encode.
func Poisoned(source, key string) *pipeline.Event {
	ev := Event(source, key, 1)
	ev.After["score"] = math.NaN()
	return ev
}

func batchWithPoison(t *testing.T, h Harness) {
	evs := batch("P", 5, 1)
	evs[2] = Poisoned("src", "P-poison")
	errs := deliverBatch(t, h.Sink, evs)
	for i, err := range errs {
		switch {
		case i == 2 && !pipeline.IsPermanent(err):
			t.Errorf("the poisoned event: %v, want a permanent error", err)
		case i != 2 && err != nil:
			t.Errorf("event %d failed with its poisoned neighbour: %v", i, err)
		}
	}
	got := map[string]bool{}
	for _, ev := range h.Received(t) {
		got[ev.ID] = true
	}
	if len(got) != 4 || got[evs[2].ID] {
		t.Errorf("consumer holds %d events (poisoned one: %v), want the 4 others", len(got), got[evs[2].ID])
	}
}

func batchRedelivery(t *testing.T, h Harness) {
	evs := append(batch("R", 10, 1), Event("src", "R-x", 2))
	for range 2 { // the dispatcher sends the batch again after a crash
		for i, err := range deliverBatch(t, h.Sink, evs) {
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
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
}

func concurrentBatches(t *testing.T, h Harness) {
	const workers, batches, size = 4, 5, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches*size)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				for _, err := range h.Sink.(pipeline.BatchSink).DeliverBatch(ctx, batch(fmt.Sprintf("W%d-%d", w, b), size, 1)) {
					if err != nil {
						errs <- err
					}
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
	if got := len(h.Received(t)); got != workers*batches*size {
		t.Fatalf("consumer holds %d events, want %d", got, workers*batches*size)
	}
}

func batchCancelled(t *testing.T, h Harness) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, err := range h.Sink.(pipeline.BatchSink).DeliverBatch(ctx, batch("C", 3, 1)) {
		if err != nil && pipeline.IsPermanent(err) {
			t.Fatalf("event %d of a cancelled batch was classed permanent (it would be dead-lettered): %v", i, err)
		}
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
