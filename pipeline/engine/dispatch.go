package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Dispatcher delivers the outbox to sinks. Each sink has its own worker that
// keeps up to the sink's concurrency of deliveries in flight continuously: as
// soon as one ends, the next due event takes its slot, so a slow answer holds up
// only its own record. A sink that takes batches (pipeline.BatchSink) gets up to
// the sink's batch of due events per call, each call one slot. Events of one
// record are delivered in commit order: the store hands out only each record's
// head, and the worker never has two events of one record in flight. Outcomes
// are recorded in the store in batches, one transaction for whatever ended while
// the previous one was written. Deliveries run under the sink's rate limit. A
// transient error is retried with exponential backoff and jitter (or the wait the
// destination asked for), holding back only that record, until the event is
// max_age old (counted from its detection or its last replay) or, when
// max_attempts is set, has had that many attempts; a permanent error goes to dead
// letters at once. Under on_dead: hold a dead letter keeps its record's later
// events back until it is replayed or dismissed. Errors that carry an alert
// reason (a refused key, a vanished endpoint) are retried like any transient
// error and raise one alert per sink.
type Dispatcher struct {
	Store    DispatchStore
	Sinks    map[string]pipeline.Sink
	Delivery map[string]DeliveryConfig // per sink; a missing sink uses Default
	Default  DeliveryConfig
	Clock    pipeline.Clock
	Logger   *slog.Logger
	Metrics  *Metrics
	// DeliverTimeout bounds one delivery attempt; default 30s.
	DeliverTimeout time.Duration

	once     sync.Once
	wakes    map[string]chan struct{}
	limiters map[string]*rate.Limiter
	alerts   *alerts
	fails    *failSummary
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		d.wakes = make(map[string]chan struct{}, len(d.Sinks))
		d.limiters = make(map[string]*rate.Limiter, len(d.Sinks))
		for name := range d.Sinks {
			d.wakes[name] = make(chan struct{}, 1)
			cfg := d.config(name)
			lim := rate.Inf
			if cfg.Rate > 0 {
				lim = rate.Limit(cfg.Rate)
			}
			d.limiters[name] = rate.NewLimiter(lim, max(cfg.Burst, 1))
		}
		if d.DeliverTimeout == 0 {
			d.DeliverTimeout = 30 * time.Second
		}
		d.alerts = newAlerts(d.Metrics.Registry, d.Logger)
		d.fails = newFailSummary(d.Logger)
	})
}

func (d *Dispatcher) config(sink string) DeliveryConfig {
	if c, ok := d.Delivery[sink]; ok {
		return c
	}
	return d.Default
}

// Wake tells every worker that new events were committed.
func (d *Dispatcher) Wake() {
	d.init()
	for _, ch := range d.wakes {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx is cancelled; deliveries in flight are allowed to finish.
func (d *Dispatcher) Run(ctx context.Context) {
	d.init()
	var wg sync.WaitGroup
	for name := range d.Sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.worker(ctx, name)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.flushFailures(ctx)
	}()
	wg.Wait()
	d.fails.flush(d.Clock(), true)
}

// flushFailures writes each ended minute's failure summaries (see failSummary)
// even when no new failure comes to push them out.
func (d *Dispatcher) flushFailures(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.fails.flush(d.Clock(), false)
		}
	}
}

// worker delivers one sink while it holds the sink's store-wide lock: one
// dispatcher per sink across replicas keeps each record's order and the sink's rate
// limit whole (a limit split over replicas would multiply). A replica without the
// lock stands by and takes over when the holder stops or dies. The lock is checked
// before every outbox poll.
func (d *Dispatcher) worker(ctx context.Context, sink string) {
	poll := d.config(sink).Poll.D()
	if poll <= 0 {
		poll = DefaultDelivery.Poll.D()
	}
	var lock store.Lock
	defer func() {
		if lock != nil {
			lock.Unlock()
		}
	}()
	for {
		var err error
		work := context.WithoutCancel(ctx)
		if lock != nil && !lock.Held(work) {
			d.Logger.Warn("lost the store-wide lock of this sink; standing by", "sink", sink)
			lock = nil
		}
		if lock == nil {
			var ok bool
			if lock, ok, err = d.Store.TryLock(work, "dispatch/"+sink); err == nil && !ok {
				lock = nil
				d.Logger.Debug("another replica delivers this sink; standing by", "sink", sink)
			}
		}
		if lock != nil {
			held := func() bool { return lock.Held(work) }
			w, fence := d.newWindow(sink), lock.Fence()
			w.fence = &fence
			_, err = w.run(ctx, runMode{held: held, wake: d.wakes[sink], poll: poll})
		}
		if err != nil {
			d.Logger.Error("dispatch failed", "sink", sink, "err", err)
		}
		timer := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-d.wakes[sink]:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// deliverDue delivers the sink's events until none is due at the clock's now and
// none is in flight, and returns how many were delivered. A record whose event
// is delivered and whose next event is due has that one delivered too.
func (d *Dispatcher) deliverDue(ctx context.Context, sink string) (int, error) {
	d.init()
	return d.newWindow(sink).run(ctx, runMode{until: drainNow})
}

// giveUp decides whether a failed attempt ends in dead letters, and why: a
// permanent error at once; otherwise when the event is older than max_age,
// counted from the later of its detection and its last replay (a replayed event
// gets a fresh max_age), or when max_attempts is set and used up. A sink paused
// for a reason outside every event (pipeline.IsPaused: its credentials were
// refused) gives nothing up: its events wait for the operator however long.
func giveUp(cfg DeliveryConfig, it store.Pending, attempts int, now time.Time, derr error) (string, bool) {
	age := now.Sub(it.AgeFrom())
	switch {
	case pipeline.IsPermanent(derr):
		return derr.Error(), true
	case pipeline.IsPaused(derr):
		return "", false
	case cfg.MaxAge > 0 && age > cfg.MaxAge.D():
		what := "event"
		if it.ReplayedAt.After(it.Event.DetectedAt) {
			what = "event's replay"
		}
		return fmt.Sprintf("gave up after %d attempts: %s is %s old, over max_age %s: %v", attempts, what, age.Round(time.Second), cfg.MaxAge.D(), derr), true
	case cfg.MaxAttempts > 0 && attempts >= cfg.MaxAttempts:
		return fmt.Sprintf("gave up after %d attempts (max_attempts): %v", attempts, derr), true
	}
	return "", false
}

// backoff is exponential from backoff_min to backoff_max with equal jitter, so
// records that failed together do not retry in lockstep.
func backoff(cfg DeliveryConfig, attempt int) time.Duration {
	lo, hi := cfg.BackoffMin.D(), cfg.BackoffMax.D()
	b := lo
	for i := 1; i < attempt && b < hi; i++ {
		b *= 2
	}
	b = min(b, hi)
	half := b / 2
	return half + rand.N(half+1)
}

// ErrUndelivered reports that Drain left events waiting for a retry.
var ErrUndelivered = errors.New("some events are still waiting for a retry")

// Drain delivers everything that is due now, for `run --once`. Events whose
// delivery failed stay in the outbox for the next run; their count is returned.
func (d *Dispatcher) Drain(ctx context.Context) (waiting int, err error) {
	return d.StartDrain(ctx, drainNow).Wait()
}

// Draining is a run of every sink's deliveries started by StartDrain.
type Draining struct {
	d       *Dispatcher
	ctx     context.Context
	handled []string // the sinks whose lock this run holds
	done    chan struct{}
	err     error
}

// StartDrain starts delivering every sink whose store-wide lock it gets (a sink
// a running daemon delivers is left to it), each in its own window, woken by
// Wake as commits add events, until synced is closed: each window then delivers
// what is due and stops when nothing is due and nothing is in flight (what
// waits for a retry stays for the next run). `run --once` closes synced when its
// sources are synced, so the delivery overlaps the sync instead of following
// it; a closed synced is Drain. Cancelling ctx stops the windows after their
// deliveries in flight are recorded.
func (d *Dispatcher) StartDrain(ctx context.Context, synced <-chan struct{}) *Draining {
	d.init()
	r := &Draining{d: d, ctx: ctx, done: make(chan struct{})}
	type sinkRun struct {
		name  string
		lock  store.Lock
		fence store.Fence
	}
	var runs []sinkRun
	var errs []error
	for name := range d.Sinks {
		lock, ok, err := d.Store.TryLock(ctx, "dispatch/"+name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			d.Logger.Info("a running daemon delivers this sink; leaving its outbox to it", "sink", name)
			continue
		}
		r.handled = append(r.handled, name)
		runs = append(runs, sinkRun{name: name, lock: lock, fence: lock.Fence()})
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, sr := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sr.lock.Unlock()
			w := d.newWindow(sr.name)
			w.fence = &sr.fence
			_, err := w.run(ctx, runMode{wake: d.wakes[sr.name], until: synced})
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("sink %s: %w", sr.name, err))
				mu.Unlock()
			}
		}()
	}
	go func() {
		wg.Wait()
		d.fails.flush(d.Clock(), true)
		r.err = errors.Join(errs...)
		close(r.done)
	}()
	return r
}

// Wait waits for every window to stop and returns how many events of the sinks
// it delivered still wait in the outbox (for a retry, or because ctx ended),
// with ErrUndelivered when there are any.
func (r *Draining) Wait() (waiting int, err error) {
	<-r.done
	if r.err != nil {
		return 0, r.err
	}
	st, err := r.d.Store.Stats(context.WithoutCancel(r.ctx))
	if err != nil {
		return 0, err
	}
	for _, name := range r.handled {
		waiting += st.Outbox[name]
	}
	if waiting > 0 {
		return waiting, ErrUndelivered
	}
	return 0, nil
}
