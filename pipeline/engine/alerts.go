package engine

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// alerting is implemented by sink errors that retrying is right for but that a
// person must fix: a receiver that refuses the sink's key after a rotation, an
// endpoint that vanished in a redeploy. The dispatcher retries them as transient
// (the events wait in the outbox until max_age) and raises an alert for the sink.
// Connectors carry it on their own error types, found with errors.As, as with
// RetryAfter: the pipeline cannot import a connector.
type alerting interface {
	AlertReason() string // short, fixed label value such as "http_401"
}

// alertReason returns the alert reason an error carries, if any.
func alertReason(err error) (string, bool) {
	var a alerting
	if errors.As(err, &a) && a.AlertReason() != "" {
		return a.AlertReason(), true
	}
	return "", false
}

// alerts tracks, per sink, whether its deliveries are being refused in a way that
// needs a person. It logs at ERROR once when a sink enters that state (or its
// reason changes) and once at INFO when a delivery succeeds again, never per
// event, and exports:
//
//	egov_delivery_alert{sink,reason}         1 while the sink's deliveries fail with reason
//	egov_delivery_alerts_total{sink,reason}  attempts that failed with an alert reason
type alerts struct {
	log      *slog.Logger
	state    *prometheus.GaugeVec
	attempts *prometheus.CounterVec

	mu  sync.Mutex
	now map[string]string // sink -> current reason; absent when fine
}

func newAlerts(reg *prometheus.Registry, log *slog.Logger) *alerts {
	a := &alerts{
		log: log,
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "egov_delivery_alert",
			Help: "1 while a sink's deliveries fail in a way a person must fix (a refused key, a vanished endpoint); they are retried meanwhile.",
		}, []string{"sink", "reason"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egov_delivery_alerts_total",
			Help: "Delivery attempts that failed in a way a person must fix, by reason.",
		}, []string{"sink", "reason"}),
		now: map[string]string{},
	}
	a.state = register(reg, a.state)
	a.attempts = register(reg, a.attempts)
	return a
}

// register registers c, or returns the collector already registered under its
// name (several dispatchers may share one daemon's registry).
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// failed notes a failed attempt; only errors with an alert reason count.
func (a *alerts) failed(sink string, err error) {
	reason, ok := alertReason(err)
	if !ok {
		return
	}
	a.attempts.WithLabelValues(sink, reason).Inc()
	a.mu.Lock()
	prev, was := a.now[sink]
	a.now[sink] = reason
	a.mu.Unlock()
	if was && prev == reason {
		return
	}
	if was {
		a.state.WithLabelValues(sink, prev).Set(0)
	}
	a.state.WithLabelValues(sink, reason).Set(1)
	a.log.Error("sink refuses deliveries: fix its configuration or the receiver; events are kept and retried until max_age",
		"sink", sink, "reason", reason, "err", pipeline.LogText(err))
}

// recovered notes a successful delivery, ending the sink's alert if it had one.
func (a *alerts) recovered(sink string) {
	a.mu.Lock()
	prev, was := a.now[sink]
	delete(a.now, sink)
	a.mu.Unlock()
	if !was {
		return
	}
	a.state.WithLabelValues(sink, prev).Set(0)
	a.log.Info("sink accepts deliveries again", "sink", sink, "was", prev)
}
