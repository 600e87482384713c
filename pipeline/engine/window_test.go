package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// keySink delivers at once, except for keys whose gate is set: those wait until
// it is closed. It records the order of deliveries and how many events of one
// record were ever in flight at once.
type keySink struct {
	mu       sync.Mutex
	gates    map[string]chan struct{}
	got      []string // key@version in delivery order
	inflight map[string]int
	overlap  bool // two events of one record were in flight at once
	waiting  atomic.Int32
}

func newKeySink() *keySink {
	return &keySink{gates: map[string]chan struct{}{}, inflight: map[string]int{}}
}

func (s *keySink) Deliver(ctx context.Context, ev *pipeline.Event) error {
	s.mu.Lock()
	s.inflight[ev.Key]++
	if s.inflight[ev.Key] > 1 {
		s.overlap = true
	}
	gate := s.gates[ev.Key]
	s.mu.Unlock()
	if gate != nil {
		s.waiting.Add(1)
		<-gate
		s.waiting.Add(-1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight[ev.Key]--
	s.got = append(s.got, fmt.Sprintf("%s@%d", ev.Key, ev.Version))
	return nil
}

func (s *keySink) Close() error { return nil }

func (s *keySink) delivered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// One slow answer holds only its own record: the other records keep flowing
// through the free slots, with no round to wait for.
func TestSlowDeliveryHoldsOnlyItsRecord(t *testing.T) {
	f := newJobFixture(t, 100)
	sink := newKeySink()
	f.disp.Sinks["audit"] = sink
	f.disp.Default.Concurrency, f.disp.Default.Batch = 2, 2
	slow := make(chan struct{})
	sink.gates["K00"] = slow
	for i := range 10 {
		f.src.put(fmt.Sprintf("K%02d", i), pipeline.Row{"status": "2"})
	}
	f.run(t)
	done := make(chan int, 1)
	go func() { n, _ := f.disp.deliverDue(context.Background(), "audit"); done <- n }()
	waitUntil(t, func() bool { return len(sink.delivered()) == 9 }) // all but K00, while K00 is still out
	if sink.waiting.Load() != 1 {
		t.Fatalf("%d deliveries waiting, want K00's", sink.waiting.Load())
	}
	close(slow)
	if n := <-done; n != 10 {
		t.Fatalf("delivered %d, want 10", n)
	}
}

// Never two events of one record in flight, never a later one first, however
// many slots are free.
func TestWindowKeepsOneEventPerRecordInFlight(t *testing.T) {
	f := newJobFixture(t, 100)
	sink := newKeySink()
	f.disp.Sinks["audit"] = sink
	f.disp.Default.Concurrency, f.disp.Default.Batch = 8, 100
	for v := 2; v <= 6; v++ {
		for _, k := range []string{"A", "B", "C"} {
			f.src.put(k, pipeline.Row{"status": fmt.Sprint(v)})
		}
		f.run(t)
	}
	gate := make(chan struct{})
	for _, k := range []string{"A", "B", "C"} {
		sink.gates[k] = gate
	}
	done := make(chan int, 1)
	go func() { n, _ := f.disp.deliverDue(context.Background(), "audit"); done <- n }()
	waitUntil(t, func() bool { return sink.waiting.Load() == 3 }) // one per record, though 8 slots are free
	close(gate)
	if n := <-done; n != 15 {
		t.Fatalf("delivered %d, want 15", n)
	}
	if sink.overlap {
		t.Fatal("two events of one record were in flight at once")
	}
	for _, k := range []string{"A", "B", "C"} {
		var got []string
		for _, d := range sink.delivered() {
			if strings.HasPrefix(d, k+"@") {
				got = append(got, d)
			}
		}
		if want := []string{k + "@1", k + "@2", k + "@3", k + "@4", k + "@5"}; !slices.Equal(got, want) {
			t.Errorf("record %s delivered %v, want %v", k, got, want)
		}
	}
}

// batchSink takes batches: one result per event, a poisoned key refused.
type batchSink struct {
	recSink
	mu      sync.Mutex
	sizes   []int
	poison  string
	results func(n int) []error // when set, replaces the per-event results
}

func (s *batchSink) DeliverBatch(ctx context.Context, evs []*pipeline.Event) []error {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(evs))
	results := s.results
	s.mu.Unlock()
	if results != nil {
		return results(len(evs))
	}
	errs := make([]error, len(evs))
	for i, ev := range evs {
		if ev.Key == s.poison {
			errs[i] = pipeline.Permanentf("HTTP 422: cannot take %s", ev.Key)
			continue
		}
		errs[i] = s.recSink.Deliver(ctx, ev)
	}
	return errs
}

func (s *batchSink) batches() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sizes)
}

// A sink that takes batches gets up to `batch` events per call, and each event's
// own result decides its fate: one refused event goes to dead letters, the rest
// of its batch is delivered.
func TestBatchSinkGetsBatchesAndPerEventResults(t *testing.T) {
	f := newJobFixture(t, 100)
	sink := &batchSink{poison: "K03"}
	f.disp.Sinks["audit"] = sink
	f.disp.Default.Concurrency, f.disp.Default.Batch = 1, 4
	for i := range 10 {
		f.src.put(fmt.Sprintf("K%02d", i), pipeline.Row{"status": "2"})
	}
	f.run(t)
	n, err := f.disp.deliverDue(context.Background(), "audit")
	if err != nil || n != 9 {
		t.Fatalf("delivered %d, %v; want 9", n, err)
	}
	if got := sink.batches(); !slices.Equal(got, []int{4, 4, 2}) {
		t.Errorf("batch sizes %v, want [4 4 2]", got)
	}
	dl, _ := f.store.DeadLetters(context.Background(), "audit", 0)
	if len(dl) != 1 || dl[0].Event.Key != "K03" || !strings.Contains(dl[0].Reason, "cannot take K03") {
		t.Fatalf("dead letters %+v, want K03's", dl)
	}
}

// A batch answered with the wrong number of results is retried as a whole.
func TestBatchWithWrongResultCountIsRetried(t *testing.T) {
	f := newJobFixture(t, 100)
	sink := &batchSink{results: func(int) []error { return []error{nil} }}
	f.disp.Sinks["audit"] = sink
	f.disp.Default.Batch = 10
	for i := range 3 {
		f.src.put(fmt.Sprintf("K%d", i), pipeline.Row{"status": "2"})
	}
	f.run(t)
	if n, err := f.disp.deliverDue(context.Background(), "audit"); err != nil || n != 0 {
		t.Fatalf("delivered %d, %v; want 0", n, err)
	}
	p, err := f.store.Pending(context.Background(), "audit", f.clock.Now().Add(time.Hour), 10)
	if err != nil || len(p) != 3 || p[0].Attempts != 1 || !strings.Contains(p[0].LastErr, "with 1 results") {
		t.Fatalf("pending %+v, %v; want all three retried", p, err)
	}
}

// countingStore counts Settle calls.
type countingStore struct {
	store.Store
	settles atomic.Int32
}

func (s *countingStore) Settle(ctx context.Context, sink string, f *store.Fence, o []store.Outcome) (store.Settled, error) {
	s.settles.Add(1)
	return s.Store.Settle(ctx, sink, f, o)
}

// Outcomes that end while the previous ones are written go into one transaction:
// many deliveries ending together cost a few store commits, not one each.
func TestOutcomesAreRecordedInBatches(t *testing.T) {
	f := newJobFixture(t, 100)
	cs := &countingStore{Store: f.store}
	f.disp.Store = cs
	sink := newKeySink()
	f.disp.Sinks["audit"] = sink
	f.disp.Default.Concurrency, f.disp.Default.Batch = 32, 100
	gate := make(chan struct{})
	for i := range 32 {
		k := fmt.Sprintf("K%02d", i)
		sink.gates[k] = gate
		f.src.put(k, pipeline.Row{"status": "2"})
	}
	f.run(t)
	done := make(chan int, 1)
	go func() { n, _ := f.disp.deliverDue(context.Background(), "audit"); done <- n }()
	waitUntil(t, func() bool { return sink.waiting.Load() == 32 })
	close(gate)
	if n := <-done; n != 32 {
		t.Fatalf("delivered %d, want 32", n)
	}
	if n := cs.settles.Load(); n > 16 {
		t.Fatalf("%d store transactions for 32 outcomes that ended together", n)
	}
}

// The window checks the sink's lock before every poll and stops when it is lost;
// what is in flight still finishes and is recorded.
func TestWindowStopsWhenTheLockIsLost(t *testing.T) {
	f := newJobFixture(t, 100)
	f.disp.Default.Concurrency, f.disp.Default.Batch = 1, 2
	for i := range 6 {
		f.src.put(fmt.Sprintf("K%d", i), pipeline.Row{"status": "2"})
	}
	f.run(t)
	var checks atomic.Int32
	held := func() bool { return checks.Add(1) == 1 }
	n, err := f.disp.newWindow("audit").run(context.Background(), runMode{held: held, poll: time.Hour})
	if err != nil || n != 2 || len(f.sink.keys()) != 2 {
		t.Fatalf("delivered %d (%v), %v; want the first poll's 2, then a stop", n, f.sink.keys(), err)
	}
}

// The rate limit still holds: deliveries per second, whatever the concurrency.
func TestWindowKeepsTheRateLimit(t *testing.T) {
	f := newJobFixture(t, 100)
	f.disp.Default.Concurrency, f.disp.Default.Rate, f.disp.Default.Burst = 8, 50, 1
	for i := range 11 {
		f.src.put(fmt.Sprintf("K%02d", i), pipeline.Row{"status": "2"})
	}
	f.run(t)
	start := time.Now()
	if n, err := f.disp.deliverDue(context.Background(), "audit"); err != nil || n != 11 {
		t.Fatalf("delivered %d, %v", n, err)
	}
	if took := time.Since(start); took < 190*time.Millisecond {
		t.Fatalf("11 deliveries at 50/s took %s, want at least 200ms", took)
	}
}

// A store failure while recording outcomes stops the window with the error; the
// events stay due and are delivered again later (at least once).
func TestSettleFailureStopsTheWindow(t *testing.T) {
	f := newJobFixture(t, 100)
	f.disp.Store = failingSettle{f.store}
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	if _, err := f.disp.deliverDue(context.Background(), "audit"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("deliverDue = %v, want the store's error", err)
	}
	if p, _ := f.store.Pending(context.Background(), "audit", f.clock.Now(), 10); len(p) != 1 {
		t.Fatalf("pending %d, want A@1 still due", len(p))
	}
}

type failingSettle struct{ store.Store }

func (failingSettle) Settle(context.Context, string, *store.Fence, []store.Outcome) (store.Settled, error) {
	return store.Settled{}, errors.New("disk full")
}

// A dispatcher built without a poll interval (a zero DeliveryConfig) still runs:
// it polls at the built-in interval.
func TestRunWithoutPollIntervalDelivers(t *testing.T) {
	f := newJobFixture(t, 10)
	f.disp.Default.Poll = 0
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.disp.Run(ctx); close(done) }()
	waitUntil(t, func() bool { return len(f.sink.keys()) == 1 })
	cancel()
	<-done
}
