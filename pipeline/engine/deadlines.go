package engine

import (
	"context"
	"errors"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// deadlineLoop evaluates the timer rules of every source every interval, until
// ctx is cancelled.
func (d *Daemon) deadlineLoop(ctx context.Context) {
	t := time.NewTicker(d.Config.Deadlines.Interval.D())
	defer t.Stop()
	for {
		d.FireTimers(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// FireTimers evaluates every source's due timer rules once (see Job.FireTimers)
// and logs what fired.
func (d *Daemon) FireTimers(ctx context.Context) {
	for _, j := range d.Jobs {
		if !j.Map.HasTimers() {
			continue
		}
		st, err := j.FireTimers(ctx)
		switch {
		case errors.Is(err, ErrAlreadyRunning):
		case err != nil:
			d.Logger.Error("deadline timers failed", "source", j.Name, "err", err)
		case st.Fired+st.Skipped+st.Failed > 0:
			d.Logger.Info("deadline timers", "source", j.Name, "fired", st.Fired, "not_applicable", st.Skipped, "failed", st.Failed)
		}
	}
}

// NoticePricer is a sink that sends citizen notices and knows their prices (the
// zalo sink): its notices are counted by the steering figures, with the saving.
type NoticePricer interface {
	NoticePrices() (oa, zns, sms float64)
}

// newFigures builds the steering figures service over the daemon's store.
func (d *Daemon) newFigures() *figures.Service {
	fs, ok := d.Store.(store.FactStore)
	if !ok {
		return nil
	}
	svc := &figures.Service{
		Store: fs, Agencies: figures.NewDirectory(d.Config.Agencies), Clock: d.Clock, Zone: d.Config.Zone,
		NoticeSinks: map[string]figures.Prices{},
	}
	for name, s := range d.Sinks {
		if p, ok := s.(NoticePricer); ok {
			oa, zns, sms := p.NoticePrices()
			svc.NoticeSinks[name] = figures.Prices{OA: oa, ZNS: zns, SMS: sms}
		}
	}
	if f, ok := d.Store.(figures.FeedbackSource); ok {
		svc.Feedback = f
	}
	if r, ok := d.Store.(figures.RatingSource); ok {
		svc.Ratings = r
	}
	return svc
}
