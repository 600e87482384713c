package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// hookedSource calls hook before each read after the first (the batch number,
// from 1), so a test can act between a run's commits.
type hookedSource struct {
	*memSource
	reads int
	hook  func(read int) error
}

func (s *hookedSource) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	s.reads++
	if s.reads > 1 {
		if err := s.hook(s.reads); err != nil {
			return nil, false, err
		}
	}
	return s.memSource.ReadBatch(ctx, pos, out)
}

// onceDaemon is a daemon of the job fixture's job and dispatcher, as New wires
// them: commits wake the dispatcher. commits counts them.
func onceDaemon(f *jobFixture, commits *atomic.Int32) *Daemon {
	f.job.OnCommit = func() {
		commits.Add(1)
		f.disp.Wake()
	}
	week := cfgDur(7 * 24 * time.Hour)
	return &Daemon{
		Config: &Config{Retention: RetentionConfig{Events: week, DeadLetters: week, Quarantine: week, Interval: week}},
		Store:  f.store, Jobs: []*Job{f.job}, Dispatcher: f.disp, Logger: f.job.Logger, Clock: f.clock.Now, Metrics: f.job.Metrics,
	}
}

// versionsInOrder checks that the sink got every key of want exactly once per
// version, versions in order.
func versionsInOrder(t *testing.T, got []*pipeline.Event, want map[string]int64) {
	t.Helper()
	seen := map[string][]int64{}
	for _, ev := range got {
		seen[ev.Key] = append(seen[ev.Key], ev.Version)
	}
	for key, last := range want {
		var all []int64
		for v := int64(1); v <= last; v++ {
			all = append(all, v)
		}
		if !slices.Equal(seen[key], all) {
			t.Errorf("%s: the sink got versions %v, want %v", key, seen[key], all)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("the sink got %d records, want %d", len(seen), len(want))
	}
}

// putRecords puts n records into the fixture's source, keyed by format, and
// returns the versions the sink must get of each: 1.
func putRecords(f *jobFixture, n int, format string) map[string]int64 {
	want := map[string]int64{}
	for i := range n {
		key := fmt.Sprintf(format, i)
		f.src.put(key, pipeline.Row{"status": "2"})
		want[key] = 1
	}
	return want
}

// run --once delivers while it syncs: after the first commit, the source reads
// on only once the sink has had an event of it (a run that synced first would
// fail here), and records that change while their snapshot events are being
// delivered still reach the sink once per version, in order.
func TestRunOnceDeliversWhileItSyncs(t *testing.T) {
	f := newJobFixture(t, 5)
	f.disp.Default.Concurrency = 4
	want := putRecords(f, 200, "K%03d")
	var commits atomic.Int32
	changed := false
	rows := 200 // read in this sync: every record, and those changed after they were read
	src := &hookedSource{memSource: f.src, hook: func(read int) error {
		if changed || commits.Load() == 0 {
			return nil
		}
		changed = true
		deadline := time.Now().Add(10 * time.Second)
		for len(f.sink.keys()) == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("the sink got nothing of the first batch while the sync went on")
			}
			time.Sleep(time.Millisecond)
		}
		// Records of the first batch change: read again later in this sync,
		// some while their snapshot events are in flight or not yet delivered.
		// A key read already is read once more, a second version; one not read
		// yet (K049 when the first commit lands before the tenth batch) only
		// once, at its new place.
		readSoFar := (read - 1) * 5
		for _, key := range []string{"K000", "K003", "K017", "K049"} {
			f.src.put(key, pipeline.Row{"status": "4"})
			if n, _ := strconv.Atoi(key[1:]); n < readSoFar {
				want[key] = 2
				rows++
			}
		}
		return nil
	}}
	f.job.Source = src
	stats, err := onceDaemon(f, &commits).RunOnce(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Fatal("the first sync committed only after its last read: the test needs more rows")
	}
	if st := stats["motcua"]; st.Rows != rows || !st.Snapshot {
		t.Fatalf("run %+v: want %d rows read in the first sync", st, rows)
	}
	versionsInOrder(t, f.sink.got, want)
	if st, err := f.store.Stats(context.Background()); err != nil || st.Outbox["audit"] != 0 {
		t.Fatalf("outbox after run --once: %v (%v), want empty", st.Outbox, err)
	}
}

// SyncFirst keeps the old order: nothing is delivered before the last commit.
func TestRunOnceSyncFirstDeliversAfterTheSync(t *testing.T) {
	f := newJobFixture(t, 10)
	f.disp.Default.Concurrency = 4
	want := putRecords(f, 30, "K%02d")
	var early []string
	f.job.Source = &hookedSource{memSource: f.src, hook: func(int) error {
		early = append(early, f.sink.keys()...)
		return nil
	}}
	var commits atomic.Int32
	d := onceDaemon(f, &commits)
	if _, err := d.RunOnceWith(context.Background(), OnceOptions{SyncFirst: true}); err != nil {
		t.Fatal(err)
	}
	if len(early) > 0 {
		t.Fatalf("delivered %v while the sync was still reading", early)
	}
	versionsInOrder(t, f.sink.got, want)
}

// Cancelling run --once (Ctrl-C, SIGTERM) commits the batch in flight, lets
// the deliveries in flight finish and records them: the next run delivers the
// rest, and nothing twice.
func TestRunOnceStopsOnCancelAndRecordsDeliveriesInFlight(t *testing.T) {
	f := newJobFixture(t, 5)
	want := putRecords(f, 200, "K%03d")
	var commits atomic.Int32
	f.sink.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	var readAtCancel int
	f.job.Source = &hookedSource{memSource: f.src, hook: func(read int) error {
		if commits.Load() == 0 {
			return nil
		}
		once.Do(func() {
			readAtCancel = read
			deadline := time.Now().Add(10 * time.Second)
			for f.sink.inFlight.Load() == 0 { // a delivery of the first batch waits on the gate
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			cancel() // the signal arrives while this batch is read
			close(f.sink.gate)
		})
		return nil
	}}
	d := onceDaemon(f, &commits)
	stats, err := d.RunOnce(ctx, nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUndelivered) {
		t.Fatalf("interrupted run --once returned %v, want the interrupt (and no failed deliveries)", err)
	}
	if st := stats["motcua"]; readAtCancel == 0 || st.Rows != 5*readAtCancel {
		t.Fatalf("interrupted run read %d rows, want %d: the batch in flight committed, then a stop", st.Rows, 5*readAtCancel)
	}
	delivered := len(f.sink.keys())
	if delivered == 0 {
		t.Fatal("the delivery in flight at the interrupt was not completed")
	}
	if _, err := d.RunOnce(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	versionsInOrder(t, f.sink.got, want)
}
