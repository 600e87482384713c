package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// window is one run of a sink's deliveries: up to `concurrency` deliveries (or
// batches, for a pipeline.BatchSink) in flight at any time, refilled from the
// outbox as slots free, with no round to wait for. A record is "in flight" from
// the moment its head is handed to the sink until the outcome is recorded in the
// store; the store's next head of the record only becomes due after that, and the
// window never takes a head of a record in flight, so a record never has two
// events out at once and its events go in commit order.
type window struct {
	d    *Dispatcher
	sink string
	// fence, when set, is the sink's lock acquisition: outcomes are recorded only
	// while it is still the lock's current one.
	fence *store.Fence
	cfg   DeliveryConfig
	plain pipeline.Sink
	batch pipeline.BatchSink // nil: the sink takes one event per Deliver
	lim   *rate.Limiter
	unit  int // events per call to the sink
	// most is how many records may be in flight, delivered or waiting for their
	// outcome to be recorded: the calls' worth and a poll's more, so the next
	// calls overlap the recording of the last ones, but delivery never runs far
	// ahead of the store (what is delivered and not yet recorded is sent again
	// after a crash).
	most int
	work context.Context

	slots   chan struct{} // one per call to the sink in flight
	freed   chan struct{} // a call ended: a slot is free
	settled chan struct{} // outcomes were recorded: heads may have moved

	mu       sync.Mutex
	inflight map[string]int64 // record -> seq, from hand-out until its outcome is recorded
	results  []attempt        // ended, waiting to be recorded
	settling bool
	moved    bool // a recording made new heads since the loop last looked
	sent     int  // delivered and recorded
	err      error
	wg       sync.WaitGroup // calls and the recorder
}

// attempt is one event's delivery attempt and its outcome.
type attempt struct {
	it      *store.Pending
	err     error // the sink's answer
	outcome store.Outcome
}

func (d *Dispatcher) newWindow(sink string) *window {
	d.init()
	cfg := d.config(sink)
	w := &window{
		d: d, sink: sink, cfg: cfg, plain: d.Sinks[sink], lim: d.limiters[sink], unit: 1,
		slots:    make(chan struct{}, max(cfg.Concurrency, 1)),
		freed:    make(chan struct{}, 1),
		settled:  make(chan struct{}, 1),
		inflight: map[string]int64{},
	}
	if b, ok := w.plain.(pipeline.BatchSink); ok {
		w.batch = b
		w.unit = max(cfg.Batch, 1)
		if cfg.Rate > 0 {
			// Each event takes a token: a batch bigger than the burst would wait
			// for tokens it can never hold at once.
			w.unit = min(w.unit, max(cfg.Burst, 1))
		}
	}
	w.most = cap(w.slots)*w.unit + max(cap(w.slots)*w.unit, cfg.Batch)
	return w
}

// runMode says how long a window runs and what wakes it.
type runMode struct {
	// held reports whether the sink's lock is still this process's; nil: not
	// checked (the fence still guards every recording).
	held func() bool
	wake <-chan struct{} // commits of new events
	poll time.Duration   // a poll at least this often; 0: only when woken
	// until, once closed, makes the window stop as soon as nothing is due and
	// nothing is in flight; closed from the start, the window drains what is due
	// now; nil, it runs until ctx ends (the daemon's worker).
	until <-chan struct{}
}

// drainNow is an until that is closed from the start.
var drainNow = func() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// run delivers until ctx is cancelled, m.held reports the lock lost, a store
// operation fails, or, once m.until is closed, nothing is due and nothing is in
// flight. Deliveries in flight always finish and their outcomes are recorded
// before run returns. It returns how many events were delivered.
func (w *window) run(ctx context.Context, m runMode) (int, error) {
	w.work = context.WithoutCancel(ctx)
	var tick <-chan time.Time
	if m.poll > 0 {
		t := time.NewTicker(m.poll)
		defer t.Stop()
		tick = t.C
	}
	until := m.until
	drain := false
	var queue []store.Pending // due heads read but not yet handed out
	dirty := true             // something may be due that queue does not hold
	for ctx.Err() == nil && w.failure() == nil {
		if !drain && closed(until) {
			// Nothing more will be committed: one more look, then stop when idle.
			drain, dirty, until = true, true, nil
		}
		if len(queue) == 0 && dirty && len(w.slots) < cap(w.slots) && w.room() > 0 {
			if m.held != nil && !m.held() {
				break
			}
			var err error
			queue, dirty, err = w.poll()
			if err != nil {
				w.fail(err)
				break
			}
		}
		if !w.handOut(ctx, &queue) {
			break // shutting down
		}
		if drain && len(queue) == 0 && !dirty {
			idle, moved := w.quiet()
			if moved {
				dirty = true
				continue
			}
			if idle {
				break
			}
		}
		select {
		case <-w.freed:
		case <-w.settled:
			dirty = dirty || w.headsMoved()
		case <-m.wake:
			dirty = true
		case <-tick:
			dirty = true
		case <-until:
		case <-ctx.Done():
		}
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent, w.err
}

// closed reports whether ch is closed (a nil ch never is).
func closed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// poll reads due heads, leaving out those in flight. full reports that more may
// be due than were read.
func (w *window) poll() (due []store.Pending, full bool, err error) {
	limit := max(w.cfg.Batch, 1)
	if w.batch != nil {
		limit = w.unit * (cap(w.slots) - len(w.slots))
	}
	limit = min(limit, w.room())
	w.mu.Lock()
	skip := make([]int64, 0, len(w.inflight))
	for _, seq := range w.inflight {
		skip = append(skip, seq)
	}
	w.mu.Unlock()
	pending := w.d.Store.Pending
	if _, ok := w.plain.(pipeline.FieldsJSON); ok {
		pending = w.d.Store.PendingJSON
	}
	due, err = pending(w.work, w.sink, w.d.Clock(), limit, skip...)
	return due, len(due) == limit, err
}

// handOut starts calls to the sink from queue while slots are free. It returns
// false when ctx ended while it waited for the rate limiter.
func (w *window) handOut(ctx context.Context, queue *[]store.Pending) bool {
	for len(*queue) > 0 {
		select {
		case w.slots <- struct{}{}:
		default:
			return true // every slot is busy
		}
		unit := w.take(queue)
		if len(unit) == 0 {
			<-w.slots
			continue
		}
		for range unit {
			if err := w.lim.Wait(ctx); err != nil {
				w.release(unit)
				<-w.slots
				return false
			}
		}
		w.wg.Add(1)
		go w.call(unit)
	}
	return true
}

// take moves up to unit heads of records not in flight from queue into a call,
// marking their records in flight.
func (w *window) take(queue *[]store.Pending) []*store.Pending {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := *queue
	var unit []*store.Pending
	i := 0
	for ; i < len(q) && len(unit) < w.unit; i++ {
		it := &q[i]
		if _, busy := w.inflight[it.Record]; busy {
			continue // a replay moved the record's head meanwhile: polled again later
		}
		w.inflight[it.Record] = it.Seq
		unit = append(unit, it)
	}
	*queue = q[i:]
	return unit
}

// room is how many more records may go in flight.
func (w *window) room() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.most - len(w.inflight)
}

// release takes records out of flight.
func (w *window) release(items []*store.Pending) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, it := range items {
		delete(w.inflight, it.Record)
	}
}

// call makes one attempt of a unit's events, frees its slot and queues the
// outcomes to be recorded.
func (w *window) call(unit []*store.Pending) {
	defer w.wg.Done()
	start := time.Now()
	errs := w.deliver(unit)
	took := time.Since(start).Seconds()
	now := w.d.Clock()
	results := make([]attempt, len(unit))
	for i, it := range unit {
		w.d.Metrics.deliveryTime.WithLabelValues(w.sink).Observe(took)
		if errs[i] != nil {
			w.d.alerts.failed(w.sink, errs[i])
		}
		results[i] = attempt{it: it, err: errs[i], outcome: w.outcome(it, errs[i], now)}
	}
	<-w.slots
	signal(w.freed)
	w.record(results)
}

// deliver hands the events to the sink, one result per event.
func (w *window) deliver(unit []*store.Pending) []error {
	ctx, cancel := context.WithTimeout(w.work, w.d.DeliverTimeout)
	defer cancel()
	if w.batch == nil {
		return []error{w.plain.Deliver(ctx, &unit[0].Event)}
	}
	evs := make([]*pipeline.Event, len(unit))
	for i := range unit {
		evs[i] = &unit[i].Event
	}
	errs := w.batch.DeliverBatch(ctx, evs)
	if len(errs) != len(evs) {
		err := fmt.Errorf("sink %s answered a batch of %d events with %d results", w.sink, len(evs), len(errs))
		errs = make([]error, len(evs))
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// outcome decides what an attempt's answer means for the event's row.
func (w *window) outcome(it *store.Pending, derr error, now time.Time) store.Outcome {
	o := store.Outcome{Seq: it.Seq, Attempts: it.Attempts + 1, At: now, Feed: it.Feed}
	if derr == nil {
		o.Kind = store.OutcomeDelivered
		return o
	}
	if reason, dead := giveUp(w.cfg, *it, o.Attempts, now, derr); dead {
		o.Kind, o.Err, o.OnDead = store.OutcomeDead, reason, w.cfg.OnDead
		return o
	}
	wait := backoff(w.cfg, o.Attempts)
	if asked, ok := pipeline.RetryAfterOf(derr); ok && asked > wait {
		wait = asked
	}
	o.Kind, o.NextAt, o.Err = store.OutcomeRetry, now.Add(wait), derr.Error()
	return o
}

// record queues ended attempts for the recorder, starting it when it is idle:
// whatever ends while it writes goes into its next transaction.
func (w *window) record(results []attempt) {
	w.mu.Lock()
	w.results = append(w.results, results...)
	if w.settling {
		w.mu.Unlock()
		return
	}
	w.settling = true
	w.wg.Add(1)
	w.mu.Unlock()
	go w.recorder()
}

func (w *window) recorder() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		batch := w.results
		w.results = nil
		if len(batch) == 0 {
			w.settling = false
			w.mu.Unlock()
			signal(w.settled)
			return
		}
		w.mu.Unlock()
		moved := w.settle(batch)
		w.mu.Lock()
		w.moved = w.moved || moved
		w.mu.Unlock()
		signal(w.settled)
	}
}

// settle records a batch of outcomes in one store transaction, then reports them
// (metrics, alerts, logs) and takes their records out of flight. It reports
// whether the recording made new heads, so the loop polls only when something
// may have become due. When the store fails, nothing was recorded: the events
// stay due and are delivered again (at least once), and the window stops.
func (w *window) settle(batch []attempt) bool {
	outcomes := make([]store.Outcome, len(batch))
	items := make([]*store.Pending, len(batch))
	for i, a := range batch {
		outcomes[i], items[i] = a.outcome, a.it
	}
	res, err := w.d.Store.Settle(w.work, w.sink, w.fence, outcomes)
	defer w.release(items)
	if err != nil {
		w.fail(err)
		return false
	}
	errs := res.Errs
	sent := 0
	var retries []attempt
	for i, a := range batch {
		if errs[i] != nil {
			w.d.Logger.Warn("delivery outcome not recorded: its event is no longer in the outbox", "sink", w.sink,
				"event", a.it.Event.ID, "err", errs[i])
			continue
		}
		switch a.outcome.Kind {
		case store.OutcomeDelivered:
			sent++
			w.d.alerts.recovered(w.sink)
		case store.OutcomeDead:
			msg := "event moved to dead letters"
			if w.cfg.OnDead != store.OnDeadSkip {
				msg += "; its record's later events wait for it until it is replayed or dismissed"
			}
			w.d.Logger.Warn(msg, "sink", w.sink, "event", a.it.Event.ID, "attempts", a.outcome.Attempts, "err", pipeline.LogText(a.err))
		case store.OutcomeRetry:
			retries = append(retries, a)
		}
		w.d.Metrics.deliveries.WithLabelValues(w.sink, resultLabel(a.outcome.Kind)).Inc()
	}
	w.logRetries(retries)
	w.mu.Lock()
	w.sent += sent
	w.mu.Unlock()
	return res.Heads > 0
}

// headsMoved reports, once, that recordings made new heads.
func (w *window) headsMoved() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	moved := w.moved
	w.moved = false
	return moved
}

// logRetries counts failed attempts in the per-minute summaries (failsummary.go)
// instead of a line each.
func (w *window) logRetries(retries []attempt) {
	for _, a := range retries {
		w.d.fails.record(w.sink, a.it.Event.ID, pipeline.LogText(a.err), w.d.Clock())
	}
}

func resultLabel(k store.OutcomeKind) string {
	switch k {
	case store.OutcomeDelivered:
		return "ok"
	case store.OutcomeDead:
		return "dead"
	}
	return "retry"
}

func (w *window) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *window) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// quiet reports whether nothing is in flight or waiting to be recorded, and,
// once, whether recordings made new heads. Both are read together: the recorder
// notes new heads before it goes idle, so a window that sees it idle also sees
// the heads it made.
func (w *window) quiet() (idle, moved bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	moved, w.moved = w.moved, false
	return len(w.inflight) == 0 && !w.settling && len(w.results) == 0, moved
}

// signal wakes whoever waits on ch without blocking; ch has room for one.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
