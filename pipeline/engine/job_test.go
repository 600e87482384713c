package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

const testMapping = `entity: dossier
key: [code]
fields:
  code:   { required: true }
  status: { type: int, required: true, in: [1,2,3,4,5,6,7,8,9,10] }
  name:   { }
  due:    { type: time }
`

type jobFixture struct {
	src   *memSource
	store store.Store
	job   *Job
	clock *fakeClock
	sink  *recSink
	disp  *Dispatcher
}

func newJobFixture(t *testing.T, batch int) *jobFixture {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newJobFixtureOn(t, batch, st)
}

// newJobFixtureOn is newJobFixture on a store of the test's choosing.
func newJobFixtureOn(t *testing.T, batch int, st store.Store) *jobFixture {
	t.Helper()
	m, err := mapping.Compile("test.yaml", []byte(testMapping), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := NewMetrics()
	f := &jobFixture{src: newMemSource(batch), store: st, clock: clock, sink: &recSink{}}
	f.job = &Job{
		Name: "motcua", Source: f.src, Map: m, Agency: "UBND", Store: st,
		Router: NewRouter([]Route{{Events: []string{"*"}, To: []string{"audit"}}}),
		Clock:  clock.Now, Logger: log, Metrics: metrics,
	}
	f.disp = &Dispatcher{
		Store: st, Sinks: map[string]pipeline.Sink{"audit": f.sink}, Clock: clock.Now, Logger: log, Metrics: metrics,
		Default: DeliveryConfig{MaxAttempts: 3, BackoffMin: cfgDur(time.Second), BackoffMax: cfgDur(time.Minute), Batch: 10, Concurrency: 1},
	}
	return f
}

func (f *jobFixture) run(t *testing.T) RunStats {
	t.Helper()
	st, err := f.job.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestJobDetectsCreatesUpdatesAndIgnoresUnchangedRows(t *testing.T) {
	f := newJobFixture(t, 2)
	f.src.put("A", pipeline.Row{"status": "2", "name": "An", "due": "20261130170000"})
	f.src.put("B", pipeline.Row{"status": "2", "name": "Bình"})
	f.src.put("C", pipeline.Row{"status": "4", "name": "Cường"})
	st := f.run(t)
	if st.Rows != 3 || st.Events != 3 || st.Batches != 2 || !st.Snapshot {
		t.Fatalf("first run %+v: want 3 rows, 3 events, 2 batches, snapshot", st)
	}
	f.src.put("A", pipeline.Row{"status": "9", "name": "An", "due": "20261130170000"}) // changed
	f.src.put("B", pipeline.Row{"status": "2", "name": "Bình"})                        // touched, unchanged
	st = f.run(t)
	if st.Rows != 2 || st.Events != 1 || st.Snapshot {
		t.Fatalf("second run %+v: want 2 rows read, 1 event, not snapshot", st)
	}
	snap, err := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"A"})
	if err != nil {
		t.Fatal(err)
	}
	if snap["A"].Version != 2 {
		t.Fatalf("A's version = %d, want 2", snap["A"].Version)
	}
	stats, err := f.store.Stats(context.Background())
	if err != nil || stats.Outbox["audit"] != 4 {
		t.Fatalf("outbox holds %d events (%v), want 4", stats.Outbox["audit"], err)
	}
	// Deliver the heads A@1, B and C; A@2 is the record's next event.
	heads, err := f.store.Pending(context.Background(), "audit", f.clock.Now(), 100)
	if err != nil || len(heads) != 3 {
		t.Fatalf("pending = %d rows (%v), want A@1, B and C", len(heads), err)
	}
	for _, p := range heads {
		if err := f.store.Delivered(context.Background(), "audit", p.Seq, 1, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	pend, err := f.store.Pending(context.Background(), "audit", f.clock.Now(), 100)
	if err != nil || len(pend) != 1 {
		t.Fatalf("pending after the heads = %d rows (%v), want A@2", len(pend), err)
	}
	last := pend[0].Event
	if last.Type != pipeline.EventUpdated || last.Key != "A" || strings.Join(last.Changed, ",") != "status" || last.Snapshot {
		t.Fatalf("update event = %+v", last)
	}
	if fmt.Sprint(last.Before["status"]) != "2" || fmt.Sprint(last.After["status"]) != "9" || last.Before["due"] != last.After["due"] {
		t.Fatalf("before/after = %v / %v", last.Before, last.After)
	}
	if last.ID != pipeline.EventID("motcua", "dossier", "A", 2, pipeline.EventUpdated, snap["A"].Hash) {
		t.Fatalf("event id %s is not the deterministic id", last.ID)
	}
}

func TestJobQuarantinesBadRowsWithoutBlockingGoodOnes(t *testing.T) {
	f := newJobFixture(t, 10)
	f.src.put("A", pipeline.Row{"status": "2"})
	f.src.put("B", pipeline.Row{"status": "bảy"})
	f.src.put("C", pipeline.Row{"status": "42"})
	f.src.put("D", pipeline.Row{"status": "4"})
	st := f.run(t)
	if st.Events != 2 || st.Quarantined != 2 {
		t.Fatalf("run %+v: want 2 events and 2 quarantined", st)
	}
	q, err := f.store.Quarantined(context.Background(), "motcua", 10)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, e := range q {
		reasons[e.RowKey] = e.Reason
	}
	if !strings.Contains(reasons["B"], `"bảy" is not a whole number`) || !strings.Contains(reasons["C"], "value 42 is not one of") {
		t.Fatalf("quarantine reasons = %v", reasons)
	}
	// The same bad row read again is counted, not stored twice.
	f.store.ResetCursor(context.Background(), "motcua")
	f.run(t)
	q, _ = f.store.Quarantined(context.Background(), "motcua", 10)
	if len(q) != 2 {
		t.Fatalf("quarantine holds %d entries after a re-read, want 2", len(q))
	}
}

func TestSlowRunIsNotOverlapped(t *testing.T) {
	f := newJobFixture(t, 10)
	f.src.put("A", pipeline.Row{"status": "2"})
	f.src.block = make(chan struct{})
	done := make(chan error, 1)
	go func() { _, err := f.job.Run(context.Background()); done <- err }()
	waitUntil(t, func() bool { return f.job.running.Load() })
	if _, err := f.job.Run(context.Background()); err != ErrAlreadyRunning {
		t.Fatalf("second run while the first is in flight: err = %v, want ErrAlreadyRunning", err)
	}
	close(f.src.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCancelledRunCommitsTheBatchInFlight(t *testing.T) {
	f := newJobFixture(t, 1)
	for _, k := range []string{"A", "B", "C"} {
		f.src.put(k, pipeline.Row{"status": "2"})
	}
	f.src.block = make(chan struct{})
	f.src.reading = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan RunStats, 1)
	go func() { st, _ := f.job.Run(ctx); done <- st }()
	<-f.src.reading // the first batch is being read
	cancel()        // when SIGTERM arrives
	close(f.src.block)
	st := <-done
	if st.Batches != 1 || st.Events != 1 {
		t.Fatalf("run after cancel = %+v, want exactly the batch in flight committed", st)
	}
	cur, _ := f.store.Cursor(context.Background(), "motcua")
	if cur.Position == nil {
		t.Fatal("cursor not committed with the batch in flight")
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// touchingSource changes a row while the first sync reads: before its read
// number at, it puts the row again (moving it to the end of the cursor order).
type touchingSource struct {
	*memSource
	reads int
	at    int
	touch func()
}

func (s *touchingSource) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	s.reads++
	if s.reads == s.at {
		s.touch()
	}
	return s.memSource.ReadBatch(ctx, pos, out)
}

// A first sync commits its batches in groups; a record read twice within one
// group is compared with its own first version: created, then updated, in order.
func TestFirstSyncGroupSeesARecordReadTwice(t *testing.T) {
	f := newJobFixture(t, 2)
	f.src.put("A", pipeline.Row{"status": "2", "name": "An"})
	f.src.put("B", pipeline.Row{"status": "2", "name": "Bình"})
	f.src.put("C", pipeline.Row{"status": "4", "name": "Cường"})
	f.job.Source = &touchingSource{memSource: f.src, at: 2, touch: func() {
		f.src.put("A", pipeline.Row{"status": "9", "name": "An"})
	}}
	st := f.run(t)
	if st.Events != 4 || st.Batches != 3 {
		t.Fatalf("first sync %+v: want 4 events (A, B, C created, A updated) in 3 batches", st)
	}
	snap, err := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"A", "B", "C"})
	if err != nil {
		t.Fatal(err)
	}
	if snap["A"].Version != 2 || snap["B"].Version != 1 || snap["C"].Version != 1 {
		t.Fatalf("versions A %d B %d C %d, want 2 1 1", snap["A"].Version, snap["B"].Version, snap["C"].Version)
	}
	f.rounds(t, 3, time.Second)
	got := strings.Join(f.sink.keys(), " ")
	if strings.Count(got, "@") != 4 || strings.Index(got, "A@1") > strings.Index(got, "A@2") || strings.Index(got, "A@1") < 0 {
		t.Fatalf("delivered %q: want A@1 before A@2, and B@1, C@1", got)
	}
}

// An incremental batch large enough to be mapped on two cores, its keys looked
// up while it is mapped: each row keeps its own outcome (a bad row is quarantined
// under its own key) and each changed record is compared with its stored version.
func TestLargeIncrementalBatchKeepsEachRowsOutcome(t *testing.T) {
	const n = 3 * parallelMapRows
	f := newJobFixture(t, 2*n)
	key := func(i int) string { return fmt.Sprintf("K%04d", i) }
	for i := range n {
		f.src.put(key(i), pipeline.Row{"status": "2", "name": "An"})
	}
	if st := f.run(t); st.Events != n || st.Quarantined != 0 {
		t.Fatalf("first run %+v: want %d events", st, n)
	}
	changed, bad := map[string]bool{}, map[string]bool{}
	for i := range n {
		switch {
		case i%7 == 3:
			f.src.put(key(i), pipeline.Row{"status": "bảy", "name": "An"})
			bad[key(i)] = true
		case i%3 == 0:
			f.src.put(key(i), pipeline.Row{"status": "4", "name": "An"})
			changed[key(i)] = true
		default:
			f.src.put(key(i), pipeline.Row{"status": "2", "name": "An"}) // touched, unchanged
		}
	}
	st := f.run(t)
	if st.Rows != n || st.Events != len(changed) || st.Quarantined != len(bad) {
		t.Fatalf("second run %+v: want %d rows, %d events, %d quarantined", st, n, len(changed), len(bad))
	}
	q, err := f.store.Quarantined(context.Background(), "motcua", 2*n)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range q {
		if !bad[e.RowKey] || !strings.Contains(e.Reason, `"bảy"`) {
			t.Fatalf("quarantined %q (%s); want only the rows with a bad status", e.RowKey, e.Reason)
		}
	}
	if len(q) != len(bad) {
		t.Fatalf("quarantine holds %d rows, want %d", len(q), len(bad))
	}
	keys := make([]string, n)
	for i := range n {
		keys[i] = key(i)
	}
	snap, err := f.store.Snapshot(context.Background(), "motcua", "dossier", keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		want := int64(1)
		if changed[k] {
			want = 2 // an update of the stored record, not a second creation
		}
		if snap[k].Version != want {
			t.Fatalf("%s: version %d, want %d", k, snap[k].Version, want)
		}
	}
}
