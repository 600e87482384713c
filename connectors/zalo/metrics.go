package zalo

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the sink's own figures; the sink is a prometheus.Collector, which
// the daemon registers.
type metrics struct {
	notices    *prometheus.CounterVec // notices sent, by route and agency
	messages   *prometheus.CounterVec // messages sent (parts), by route and quota type
	unsentVec  *prometheus.CounterVec // notices not sent, by outcome and reason
	saved      prometheus.Gauge       // đồng saved against SMS (negative if ZNS costs more)
	deferred   prometheus.Counter     // ZNS notices deferred by quiet hours
	refreshes  prometheus.CounterFunc
	refused    prometheus.GaugeFunc
	apiErrors  *prometheus.CounterVec // Zalo's answers with error != 0, by code and class
	webhook    *prometheus.CounterVec // webhook requests by result (accepted, repeated, refused_<reason>)
	commands   *prometheus.CounterVec // citizens' messages by command
	collectors []prometheus.Collector
}

func newMetrics(sink string, t *tokens) *metrics {
	labels := prometheus.Labels{"sink": sink}
	m := &metrics{
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egov_zalo_notices_total",
			Help: "Citizen notices sent through Zalo, by route (oa, zns) and agency.", ConstLabels: labels},
			[]string{"route", "agency"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egov_zalo_messages_total",
			Help: "Messages sent to Zalo (a long OA text takes several), by route and Zalo's quota type.", ConstLabels: labels},
			[]string{"route", "quota_type"}),
		unsentVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egov_zalo_unsent_total",
			Help: "Notices not sent: undeliverable (no phone, not a follower and no template, opted out, ...) or stale.", ConstLabels: labels},
			[]string{"outcome", "reason", "agency"}),
		saved: prometheus.NewGauge(prometheus.GaugeOpts{Name: "egov_zalo_sms_saved_dong",
			Help: "Đồng saved since start by sending notices on Zalo instead of SMS (prices from the sink's config; `zalo status` has the month's figure).", ConstLabels: labels}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "egov_zalo_deferred_total",
			Help: "ZNS notices deferred to the end of the quiet hours.", ConstLabels: labels}),
		refreshes: prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "egov_zalo_token_refreshes_total",
			Help: "Access token refreshes made by this process.", ConstLabels: labels},
			func() float64 { return float64(t.refreshes.Load()) }),
		refused: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "egov_zalo_token_refused",
			Help: "1 while Zalo refuses the stored refresh token: run `egov-bridge zalo token set`.", ConstLabels: labels},
			func() float64 {
				if t.refused.Load() {
					return 1
				}
				return 0
			}),
	}
	m.apiErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egov_zalo_errors_total",
		Help: "Zalo API answers with an error code (HTTP 200 with error != 0), by code and class.", ConstLabels: labels},
		[]string{"code", "class"})
	m.webhook = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egov_zalo_webhook_requests_total",
		Help: "Webhook requests from Zalo by result: accepted, repeated (a redelivery), refused_bad_signature, refused_stale, refused_future, refused_no_signature, refused_too_large, store_error, ...", ConstLabels: labels},
		[]string{"result"})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "egov_zalo_citizen_messages_total",
		Help: "Citizens' messages handled, by command (lookup keyword, subscribe, feedback, unknown, ...).", ConstLabels: labels},
		[]string{"command"})
	m.collectors = []prometheus.Collector{m.notices, m.messages, m.unsentVec, m.saved, m.deferred, m.refreshes, m.refused, m.webhook, m.commands, m.apiErrors}
	return m
}

func (m *metrics) message(route, quotaType string) {
	m.messages.WithLabelValues(route, quotaType).Inc()
}

func (m *metrics) notice(route, agency string, messages int, p Prices) {
	m.notices.WithLabelValues(route, agency).Inc()
	if saved := Saving(route, 1, messages, p); saved != 0 {
		m.saved.Add(saved)
	}
}

func (m *metrics) unsent(outcome, agency, reason string) {
	m.unsentVec.WithLabelValues(outcome, reason, agency).Inc()
}

// Saving is what sending notices (taking messages) on a route saved against one
// SMS per notice, in đồng; it can be negative when ZNS costs more than SMS.
func Saving(route string, notices, messages int, p Prices) float64 {
	switch route {
	case RouteOA:
		return float64(notices)*p.SMS - float64(messages)*p.OA
	case RouteZNS:
		return float64(notices)*p.SMS - float64(messages)*p.ZNS
	}
	return 0
}

// Describe implements prometheus.Collector.
func (s *Sink) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s.metrics.collectors {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s.metrics.collectors {
		c.Collect(ch)
	}
}
