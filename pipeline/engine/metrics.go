package engine

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the daemon's Prometheus series. Each daemon has its own registry, so
// tests can run several daemons in one process.
type Metrics struct {
	Registry     *prometheus.Registry
	rowsRead     *prometheus.CounterVec
	events       *prometheus.CounterVec
	quarantined  *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	syncErrors   *prometheus.CounterVec
	syncDuration *prometheus.HistogramVec
	lastSync     *prometheus.GaugeVec
	// sourceStopped is 1 while a source is stopped by a problem an operator must
	// fix (a column the mapping reads is missing).
	sourceStopped *prometheus.GaugeVec
	// noticesSkipped counts rule events a rule held back (reason too_old: the
	// change is older than the rule's max_age).
	noticesSkipped *prometheus.CounterVec
	deliveries     *prometheus.CounterVec
	deliveryTime   *prometheus.HistogramVec
}

// NewMetrics registers the series on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		rowsRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egov_source_rows_read_total", Help: "Rows read from a source.",
		}, []string{"source"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egov_events_total", Help: "Change events committed to the outbox.",
		}, []string{"source", "type"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egov_quarantined_rows_total", Help: "Rows rejected by their mapping and quarantined.",
		}, []string{"source"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egov_dropped_values_total", Help: "Unreadable values dropped from kept records (invalid: null), by field.",
		}, []string{"source", "field"}),
		syncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egov_sync_errors_total", Help: "Source runs that failed.",
		}, []string{"source"}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "egov_sync_duration_seconds", Help: "Duration of completed source runs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}, []string{"source"}),
		lastSync: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "egov_last_sync_timestamp_seconds", Help: "Unix time of the last completed run of a source.",
		}, []string{"source"}),
		sourceStopped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "egov_source_stopped", Help: "1 while a source is stopped until an operator fixes its mapping or the source (a missing column).",
		}, []string{"source"}),
		noticesSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egov_notices_skipped_total", Help: "Citizen notices a rule held back, by reason (too_old: the change is older than the rule's max_age).",
		}, []string{"source", "rule", "reason"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egov_deliveries_total", Help: "Delivery attempts by result (ok, retry, dead).",
		}, []string{"sink", "result"}),
		deliveryTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "egov_delivery_duration_seconds", Help: "Duration of delivery attempts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"sink"}),
	}
	m.Registry.MustRegister(m.rowsRead, m.events, m.quarantined, m.dropped, m.syncErrors, m.syncDuration,
		m.lastSync, m.sourceStopped, m.noticesSkipped, m.deliveries, m.deliveryTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
