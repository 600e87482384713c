package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Dispatcher delivers the outbox to sinks: one worker per sink, events in commit
// order, each delivery recorded. A transient error holds the sink back with
// exponential backoff (so order is kept); a permanent error, or too many attempts,
// moves the event to dead letters.
type Dispatcher struct {
	Store   store.Store
	Sinks   map[string]pipeline.Sink
	Config  DeliveryConfig
	Clock   pipeline.Clock
	Logger  *slog.Logger
	Metrics *Metrics
	// DeliverTimeout bounds one delivery attempt; default 30s.
	DeliverTimeout time.Duration

	once  sync.Once
	wakes map[string]chan struct{}
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		d.wakes = make(map[string]chan struct{}, len(d.Sinks))
		for name := range d.Sinks {
			d.wakes[name] = make(chan struct{}, 1)
		}
		if d.DeliverTimeout == 0 {
			d.DeliverTimeout = 30 * time.Second
		}
	})
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

// Run delivers until ctx is cancelled; a delivery in flight is allowed to finish.
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

func (d *Dispatcher) worker(ctx context.Context, sink string) {
	poll := d.Config.Poll.D()
	for {
		wait := poll
		n, holdUntil, err := d.deliverDue(ctx, sink)
		switch {
		case err != nil:
			d.Logger.Error("dispatch failed", "sink", sink, "err", err)
		case !holdUntil.IsZero():
			wait = max(holdUntil.Sub(d.Clock()), 10*time.Millisecond)
		case n > 0:
			continue // more may be due right away
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-d.wakes[sink]:
			if !holdUntil.IsZero() {
				// New events do not jump a failed one; keep waiting for its retry time.
				select {
				case <-ctx.Done():
					timer.Stop()
					return
				case <-timer.C:
				}
			}
		case <-timer.C:
		}
		timer.Stop()
	}
}

// deliverDue delivers the due outbox rows of one sink in order. It stops at the first
// transient failure and returns when that row may be retried, so later events of the
// sink are not delivered before it.
func (d *Dispatcher) deliverDue(ctx context.Context, sink string) (delivered int, holdUntil time.Time, err error) {
	s := d.Sinks[sink]
	work := context.WithoutCancel(ctx)
	items, err := d.Store.Pending(work, sink, d.Clock(), d.Config.Batch)
	if err != nil {
		return 0, time.Time{}, err
	}
	for _, it := range items {
		if ctx.Err() != nil {
			return delivered, time.Time{}, nil
		}
		attempts := it.Attempts + 1
		start := time.Now()
		dctx, cancel := context.WithTimeout(work, d.DeliverTimeout)
		derr := s.Deliver(dctx, &it.Event)
		cancel()
		d.Metrics.deliveryTime.WithLabelValues(sink).Observe(time.Since(start).Seconds())
		now := d.Clock()
		switch {
		case derr == nil:
			if err := d.Store.Delivered(work, sink, it.Seq, attempts, now); err != nil {
				return delivered, time.Time{}, err
			}
			d.Metrics.deliveries.WithLabelValues(sink, "ok").Inc()
			delivered++
		case pipeline.IsPermanent(derr) || attempts >= d.Config.MaxAttempts:
			reason := derr.Error()
			if !pipeline.IsPermanent(derr) {
				reason = fmt.Sprintf("gave up after %d attempts: %v", attempts, derr)
			}
			if err := d.Store.Dead(work, sink, it.Seq, attempts, reason, now); err != nil {
				return delivered, time.Time{}, err
			}
			d.Metrics.deliveries.WithLabelValues(sink, "dead").Inc()
			d.Logger.Warn("event moved to dead letters", "sink", sink, "event", it.Event.ID, "attempts", attempts, "err", derr)
		default:
			next := now.Add(d.backoff(attempts))
			if err := d.Store.Retry(work, sink, it.Seq, attempts, next, derr.Error()); err != nil {
				return delivered, time.Time{}, err
			}
			d.Metrics.deliveries.WithLabelValues(sink, "retry").Inc()
			d.Logger.Warn("delivery failed, will retry", "sink", sink, "event", it.Event.ID, "attempt", attempts, "retry_at", next, "err", derr)
			return delivered, next, nil
		}
	}
	return delivered, time.Time{}, nil
}

// backoff is exponential from BackoffMin to BackoffMax with equal jitter, so sinks
// that failed together do not retry in lockstep.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	lo, hi := d.Config.BackoffMin.D(), d.Config.BackoffMax.D()
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
	for name := range d.Sinks {
		for {
			n, hold, err := d.deliverDue(ctx, name)
			if err != nil {
				return waiting, err
			}
			if !hold.IsZero() {
				pend, err := d.Store.Stats(ctx)
				if err != nil {
					return waiting, err
				}
				waiting += pend.Outbox[name]
				break
			}
			if n == 0 || ctx.Err() != nil {
				break
			}
		}
	}
	if waiting > 0 {
		return waiting, ErrUndelivered
	}
	return 0, nil
}
