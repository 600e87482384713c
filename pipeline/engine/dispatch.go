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

// Dispatcher delivers the outbox to sinks. Each sink has its own worker; events of
// one record are delivered in commit order (the store hands out only each record's
// oldest waiting event), different records in parallel up to the sink's
// concurrency, under the sink's rate limit. A transient error is retried with
// exponential backoff and jitter (or the wait the destination asked for), holding
// back only that record, until the event is max_age old (counted from its
// detection or its last replay) or, when max_attempts is set, has had that many
// attempts; a permanent error goes to dead letters at once. Under on_dead: hold a
// dead letter keeps its record's later events back until it is replayed or
// dismissed. Errors that carry an alert reason (a refused key, a vanished
// endpoint) are retried like any transient error and raise one alert per sink.
type Dispatcher struct {
	Store    store.Store
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
	wg.Wait()
}

// worker delivers one sink while it holds the sink's store-wide lock: one
// dispatcher per sink across replicas keeps each record's order and the sink's rate
// limit whole (a limit split over replicas would multiply). A replica without the
// lock stands by and takes over when the holder stops or dies.
func (d *Dispatcher) worker(ctx context.Context, sink string) {
	poll := d.config(sink).Poll.D()
	var lock store.Lock
	defer func() {
		if lock != nil {
			lock.Unlock()
		}
	}()
	for {
		var n int
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
			n, err = d.deliverDue(ctx, sink)
		}
		if err != nil {
			d.Logger.Error("dispatch failed", "sink", sink, "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be due right away
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

// deliverDue delivers one round of the sink's due events, one per record, and
// returns how many were delivered.
func (d *Dispatcher) deliverDue(ctx context.Context, sink string) (int, error) {
	d.init()
	cfg := d.config(sink)
	work := context.WithoutCancel(ctx)
	items, err := d.Store.Pending(work, sink, d.Clock(), cfg.Batch)
	if err != nil {
		return 0, err
	}
	var (
		mu        sync.Mutex
		delivered int
		firstErr  error
		wg        sync.WaitGroup
		sem       = make(chan struct{}, max(cfg.Concurrency, 1))
	)
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		if err := d.limiters[sink].Wait(ctx); err != nil {
			break // shutting down
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, err := d.deliverOne(work, sink, cfg, it)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				delivered++
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return delivered, firstErr
}

// deliverOne makes one attempt and records its outcome; the error is the store's.
func (d *Dispatcher) deliverOne(ctx context.Context, sink string, cfg DeliveryConfig, it store.Pending) (bool, error) {
	attempts := it.Attempts + 1
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, d.DeliverTimeout)
	derr := d.Sinks[sink].Deliver(dctx, &it.Event)
	cancel()
	d.Metrics.deliveryTime.WithLabelValues(sink).Observe(time.Since(start).Seconds())
	now := d.Clock()
	if derr == nil {
		if err := d.Store.Delivered(ctx, sink, it.Seq, attempts, now); err != nil {
			return false, err
		}
		d.Metrics.deliveries.WithLabelValues(sink, "ok").Inc()
		d.alerts.recovered(sink)
		return true, nil
	}
	d.alerts.failed(sink, derr)
	if reason, dead := giveUp(cfg, it, attempts, now, derr); dead {
		if err := d.Store.Dead(ctx, sink, it.Seq, attempts, reason, now, cfg.OnDead); err != nil {
			return false, err
		}
		d.Metrics.deliveries.WithLabelValues(sink, "dead").Inc()
		msg := "event moved to dead letters"
		if cfg.OnDead != store.OnDeadSkip {
			msg += "; its record's later events wait for it until it is replayed or dismissed"
		}
		d.Logger.Warn(msg, "sink", sink, "event", it.Event.ID, "attempts", attempts, "err", pipeline.LogText(derr))
		return false, nil
	}
	wait := backoff(cfg, attempts)
	if asked, ok := pipeline.RetryAfterOf(derr); ok && asked > wait {
		wait = asked
	}
	next := now.Add(wait)
	if err := d.Store.Retry(ctx, sink, it.Seq, attempts, next, derr.Error()); err != nil {
		return false, err
	}
	d.Metrics.deliveries.WithLabelValues(sink, "retry").Inc()
	d.Logger.Warn("delivery failed, will retry", "sink", sink, "event", it.Event.ID, "attempt", attempts, "retry_at", next, "err", pipeline.LogText(derr))
	return false, nil
}

// giveUp decides whether a failed attempt ends in dead letters, and why: a
// permanent error at once; otherwise when the event is older than max_age,
// counted from the later of its detection and its last replay (a replayed event
// gets a fresh max_age), or when max_attempts is set and used up.
func giveUp(cfg DeliveryConfig, it store.Pending, attempts int, now time.Time, derr error) (string, bool) {
	age := now.Sub(it.AgeFrom())
	switch {
	case pipeline.IsPermanent(derr):
		return derr.Error(), true
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
	d.init()
	var handled []string
	for name := range d.Sinks {
		lock, ok, err := d.Store.TryLock(ctx, "dispatch/"+name)
		if err != nil {
			return 0, err
		}
		if !ok {
			d.Logger.Info("a running daemon delivers this sink; leaving its outbox to it", "sink", name)
			continue
		}
		handled = append(handled, name)
		for ctx.Err() == nil {
			n, err := d.deliverDue(ctx, name)
			if err != nil {
				lock.Unlock()
				return waiting, err
			}
			if n == 0 {
				break
			}
		}
		lock.Unlock()
	}
	st, err := d.Store.Stats(ctx)
	if err != nil {
		return 0, err
	}
	for _, name := range handled {
		waiting += st.Outbox[name]
	}
	if waiting > 0 {
		return waiting, ErrUndelivered
	}
	return 0, nil
}
