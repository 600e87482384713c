package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
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

// scriptSink is a recSink whose answer per event a test decides.
type scriptSink struct {
	recSink
	mu     sync.Mutex
	answer func(ev *pipeline.Event) error // nil error: delivered
}

func (s *scriptSink) Deliver(ctx context.Context, ev *pipeline.Event) error {
	s.mu.Lock()
	answer := s.answer
	s.mu.Unlock()
	if answer != nil {
		if err := answer(ev); err != nil {
			return err
		}
	}
	return s.recSink.Deliver(ctx, ev)
}

func (s *scriptSink) set(answer func(ev *pipeline.Event) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = answer
}

// refusedErr is a sink error that asks for an alert, as the webhook's 401 does.
type refusedErr struct{ reason string }

func (e refusedErr) Error() string       { return "receiver refused the sink: " + e.reason }
func (e refusedErr) AlertReason() string { return e.reason }

func withScriptSink(f *jobFixture) *scriptSink {
	s := &scriptSink{}
	f.disp.Sinks["audit"] = s
	return s
}

// rounds runs n dispatch rounds, advancing the clock by step after each.
func (f *jobFixture) rounds(t *testing.T, n int, step time.Duration) {
	t.Helper()
	for range n {
		if _, err := f.disp.deliverDue(context.Background(), "audit"); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(step)
	}
}

func deadIDs(t *testing.T, f *jobFixture) []int64 {
	t.Helper()
	dl, err := f.store.DeadLetters(context.Background(), "audit", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, d := range dl {
		ids = append(ids, d.ID)
	}
	return ids
}

func rejectKey(key string) func(ev *pipeline.Event) error {
	return func(ev *pipeline.Event) error {
		if ev.Key == key {
			return pipeline.Permanentf("HTTP 422: unknown agency code")
		}
		return nil
	}
}

// Under the default on_dead: hold a dead-lettered event holds its record's later
// events until it is replayed, and then the record is delivered in order: the
// consumer never sees an older version after a newer one.
func TestDeadLetterHoldsRecordUntilReplayThenDeliversInOrder(t *testing.T) {
	f := newJobFixture(t, 10)
	sink := withScriptSink(f)
	sink.set(rejectKey("A"))
	f.src.put("A", pipeline.Row{"status": "2"})
	f.src.put("B", pipeline.Row{"status": "2"})
	f.run(t)
	f.rounds(t, 1, time.Minute) // B@1 delivered, A@1 dead
	f.src.put("A", pipeline.Row{"status": "4"})
	f.run(t)
	f.src.put("A", pipeline.Row{"status": "5"})
	f.run(t)
	sink.set(nil) // the receiver is fixed, but A@2 and A@3 must wait for A@1
	f.rounds(t, 3, time.Hour)
	if got := strings.Join(sink.keys(), " "); got != "B@1" {
		t.Fatalf("delivered %q while A@1 is a dead letter; want only B@1", got)
	}
	st, _ := f.store.Stats(context.Background())
	if st.HeldRecords["audit"] != 1 || st.HeldEvents["audit"] != 2 {
		t.Fatalf("held records %v events %v, want 1 and 2", st.HeldRecords, st.HeldEvents)
	}

	res, err := f.store.Replay(context.Background(), deadIDs(t, f), f.clock.Now())
	if err != nil || res.Replayed != 1 {
		t.Fatalf("Replay = %+v, %v", res, err)
	}
	f.rounds(t, 3, time.Second)
	if got := strings.Join(sink.keys(), " "); got != "B@1 A@1 A@2 A@3" {
		t.Fatalf("delivery order %q, want B@1 A@1 A@2 A@3", got)
	}
}

// Under on_dead: skip the later events flow; the dead letter is superseded and
// replay does not resend it.
func TestOnDeadSkipLetsLaterEventsFlowAndNeverResendsTheOlder(t *testing.T) {
	f := newJobFixture(t, 10)
	f.disp.Default.OnDead = store.OnDeadSkip
	sink := withScriptSink(f)
	sink.set(rejectKey("A"))
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	f.rounds(t, 1, time.Minute) // A@1 dead
	sink.set(nil)
	f.src.put("A", pipeline.Row{"status": "4"})
	f.run(t)
	f.rounds(t, 1, time.Minute)
	if got := strings.Join(sink.keys(), " "); got != "A@2" {
		t.Fatalf("delivered %q, want A@2 flowing past the dead A@1", got)
	}
	res, err := f.store.Replay(context.Background(), deadIDs(t, f), f.clock.Now())
	if err != nil || res != (store.ReplayResult{Superseded: 1}) {
		t.Fatalf("Replay = %+v, %v; want A@1 counted as superseded, not resent", res, err)
	}
	f.rounds(t, 2, time.Minute)
	if got := strings.Join(sink.keys(), " "); got != "A@2" {
		t.Fatalf("delivered %q after replay; A@1 must never follow A@2", got)
	}
}

// With the built-in defaults an outage is waited out: events are retried by time,
// not by count, and only max_age gives them up.
func TestDefaultsRetryThroughALongOutageUntilMaxAge(t *testing.T) {
	f := newJobFixture(t, 10)
	f.disp.Default = DefaultDelivery
	sink := withScriptSink(f)
	down := func(*pipeline.Event) error { return errors.New("HTTP 503") }
	sink.set(down)
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	f.rounds(t, 6*12, 5*time.Minute) // six hours down, an attempt every backoff_max
	if ids := deadIDs(t, f); len(ids) != 0 {
		t.Fatalf("%d dead letters after a six-hour outage; want the event still retried", len(ids))
	}
	p, err := f.store.Pending(context.Background(), "audit", f.clock.Now().Add(time.Hour), 10)
	if err != nil || len(p) != 1 || p[0].Attempts <= 20 {
		t.Fatalf("pending %+v, %v: want A@1 with more than the old 20 attempts", p, err)
	}
	sink.set(nil)
	f.rounds(t, 1, 5*time.Minute)
	if got := strings.Join(sink.keys(), " "); got != "A@1" {
		t.Fatalf("delivered %q after the outage, want A@1", got)
	}

	// max_age still ends it.
	sink.set(down)
	f.src.put("B", pipeline.Row{"status": "2"})
	f.run(t)
	f.rounds(t, 74, time.Hour)
	dl, _ := f.store.DeadLetters(context.Background(), "audit", 0)
	if len(dl) != 1 || !strings.Contains(dl[0].Reason, "over max_age 72h0m0s") {
		t.Fatalf("dead letters %+v, want B given up at max_age", dl)
	}
}

type pausedErr struct{}

func (pausedErr) Error() string             { return "credentials refused: an operator must set a new token" }
func (pausedErr) Paused() bool              { return true }
func (pausedErr) RetryAfter() time.Duration { return time.Hour }

// A sink paused for a reason outside every event (a refused Zalo token) keeps its
// events however long the operator takes: max_age does not give them up.
func TestPausedSinkKeepsItsEventsPastMaxAge(t *testing.T) {
	f := newJobFixture(t, 10)
	f.disp.Default = DefaultDelivery
	sink := withScriptSink(f)
	sink.set(func(*pipeline.Event) error { return pausedErr{} })
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	f.rounds(t, 100, time.Hour) // four days: past the 72h max_age
	if ids := deadIDs(t, f); len(ids) != 0 {
		t.Fatalf("%d dead letters while the sink was paused; want the event kept", len(ids))
	}
	sink.set(nil)
	f.rounds(t, 2, time.Hour)
	if got := strings.Join(sink.keys(), " "); got != "A@1" {
		t.Fatalf("delivered %q once the sink resumed, want A@1", got)
	}
}

// A replayed event gets a fresh max_age from the replay.
func TestReplayedEventAgesFromTheReplay(t *testing.T) {
	f := newJobFixture(t, 10)
	f.disp.Default.MaxAttempts = 0
	f.disp.Default.MaxAge = cfgDur(time.Hour)
	sink := withScriptSink(f)
	sink.set(func(*pipeline.Event) error { return errors.New("HTTP 503") })
	f.src.put("A", pipeline.Row{"status": "2"})
	f.run(t)
	f.rounds(t, 8, 10*time.Minute)
	ids := deadIDs(t, f)
	if len(ids) != 1 {
		t.Fatalf("%d dead letters, want A@1 given up at max_age 1h", len(ids))
	}
	f.clock.Add(5 * time.Hour)
	if _, err := f.store.Replay(context.Background(), ids, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.rounds(t, 1, 10*time.Minute) // still failing, but the replay is 0s old
	if ids := deadIDs(t, f); len(ids) != 0 {
		t.Fatalf("the replayed event went straight back to dead letters: its age must start at the replay")
	}
	f.rounds(t, 7, 10*time.Minute)
	dl, _ := f.store.DeadLetters(context.Background(), "audit", 0)
	if len(dl) != 1 || !strings.Contains(dl[0].Reason, "event's replay is") {
		t.Fatalf("dead letters %+v, want A@1 given up an hour after its replay", dl)
	}
}

// A sink that refuses the sink itself (401, a vanished endpoint) is retried, not
// dead-lettered, and alerted on once per change of its state, not per event.
func TestRefusedSinkIsRetriedAndAlertedOncePerStateChange(t *testing.T) {
	f := newJobFixture(t, 10)
	f.disp.Default.MaxAttempts = 0
	var logs strings.Builder
	f.disp.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	sink := withScriptSink(f)
	refuse := func(reason string) func(*pipeline.Event) error {
		return func(*pipeline.Event) error { return refusedErr{reason} }
	}
	sink.set(refuse("http_401"))
	for _, k := range []string{"A", "B", "C"} {
		f.src.put(k, pipeline.Row{"status": "2"})
	}
	f.run(t)
	f.rounds(t, 4, time.Hour)
	gauge := func(reason string) float64 { return metricValue(t, f, "egov_delivery_alert", reason) }
	if n := len(deadIDs(t, f)); n != 0 {
		t.Fatalf("%d dead letters; a refused sink is retried", n)
	}
	if g := gauge("http_401"); g != 1 {
		t.Fatalf("egov_delivery_alert{reason=http_401} = %v, want 1", g)
	}
	if n := metricValue(t, f, "egov_delivery_alerts_total", "http_401"); n != 12 {
		t.Fatalf("egov_delivery_alerts_total = %v, want 12 (3 records × 4 rounds)", n)
	}
	if n := strings.Count(logs.String(), "level=ERROR msg=\"sink refuses deliveries"); n != 1 {
		t.Fatalf("%d ERROR lines for 12 refused attempts, want 1:\n%s", n, logs.String())
	}

	sink.set(refuse("http_404")) // a redeploy moved the endpoint: a new state
	f.rounds(t, 2, time.Hour)
	if n := strings.Count(logs.String(), "level=ERROR msg=\"sink refuses deliveries"); n != 2 || gauge("http_401") != 0 || gauge("http_404") != 1 {
		t.Fatalf("after the reason changed: %d ERROR lines, gauges 401=%v 404=%v; want 2, 0, 1", n, gauge("http_401"), gauge("http_404"))
	}

	sink.set(nil)
	f.rounds(t, 2, time.Hour)
	if len(sink.keys()) != 3 || gauge("http_404") != 0 {
		t.Fatalf("after the fix: delivered %v, gauge %v; want all 3 and 0", sink.keys(), gauge("http_404"))
	}
	if n := strings.Count(logs.String(), "sink accepts deliveries again"); n != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", n, logs.String())
	}
}

// syncWriter lets concurrent deliveries log into one builder.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// metricValue reads a series of the sink "audit" with the given reason from the
// dispatcher's registry, as a scrape would; an absent series reads 0.
func metricValue(t *testing.T, f *jobFixture, name, reason string) float64 {
	t.Helper()
	families, err := f.disp.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["sink"] == "audit" && labels["reason"] == reason {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// jsonSink is a recSink that reads records only as JSON (pipeline.FieldsJSON).
type jsonSink struct{ recSink }

func (*jsonSink) ReadsFieldsAsJSON() {}

// A sink that reads records only as JSON gets a first sync's events with their
// fields as JSON and no map; another sink gets the map. Both write the same line.
func TestFieldsJSONSinkGetsFirstSyncFieldsAsJSON(t *testing.T) {
	f := newJobFixture(t, 10)
	js := &jsonSink{}
	f.job.Router = NewRouter([]Route{{Events: []string{"*"}, To: []string{"audit", "json"}}})
	f.disp.Sinks["json"] = js
	for _, k := range []string{"A", "B", "C"} {
		f.src.put(k, pipeline.Row{"status": "2", "name": "Nguyễn Văn " + k})
	}
	f.run(t)
	for _, sink := range []string{"audit", "json"} {
		if _, err := f.disp.deliverDue(context.Background(), sink); err != nil {
			t.Fatal(err)
		}
	}
	if len(js.got) != 3 || len(f.sink.got) != 3 {
		t.Fatalf("delivered %d events to the JSON sink and %d to the other; want 3 each", len(js.got), len(f.sink.got))
	}
	for i, ev := range js.got {
		if ev.After != nil || ev.AfterJSON == nil {
			t.Errorf("JSON sink's %s: After %v, AfterJSON %s; want the JSON alone", ev.Key, ev.After, ev.AfterJSON)
		}
		other := f.sink.got[i]
		if other.After == nil {
			t.Errorf("other sink's %s has no After", other.Key)
		}
		got, err := pipeline.AppendEventJSON(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		want, err := pipeline.AppendEventJSON(nil, other)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("the JSON sink writes\n%s\nthe other\n%s", got, want)
		}
	}
}

// run --once's drain delivers a first sync whose feed blocks outnumber what one
// read of the store takes (64 blocks) even when a poll's room is larger than
// those blocks hold: the drain stopped with the later blocks undelivered, as if
// nothing more were due, when Pending returned fewer events than its limit.
func TestDrainDeliversMoreFeedBlocksThanOneReadTakes(t *testing.T) {
	const records = 700 // two per batch, five batches per commit: 70 blocks of 10
	f := newJobFixture(t, 2)
	for i := range records {
		f.src.put(fmt.Sprintf("K%04d", i), pipeline.Row{"status": "2"})
	}
	f.run(t)
	sink := &batchSink{}
	f.disp.Sinks["audit"] = sink
	f.disp.Default.Batch, f.disp.Default.Concurrency = 1000, 1
	waiting, err := f.disp.Drain(context.Background())
	if err != nil || waiting != 0 {
		t.Fatalf("drain: %d events left waiting, %v; want every one delivered", waiting, err)
	}
	if got := len(sink.keys()); got != records {
		t.Fatalf("delivered %d events, want %d", got, records)
	}
}
