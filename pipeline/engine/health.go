package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Health is the daemon's state as /readyz reports it.
type Health struct {
	// Ready is false while the daemon starts or stops, when the store cannot be
	// reached, or when a source is stopped until an operator fixes it (a column
	// its mapping reads is missing). A source whose runs fail (its database is
	// down) is degraded, not a reason to stop taking traffic: the others go on.
	Ready   bool           `json:"ready"`
	Status  string         `json:"status"` // ok, degraded, not_ready
	At      time.Time      `json:"at"`
	Replica string         `json:"replica"`
	Store   StoreHealth    `json:"store"`
	Sources []SourceHealth `json:"sources"`
	Sinks   []SinkHealth   `json:"sinks"`
	// Problems says, one line each, why the daemon is not ready or degraded.
	Problems []string `json:"problems"`
}

// StoreHealth says whether the state store answers.
type StoreHealth struct {
	Driver    string `json:"driver"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

// SourceHealth is one source's last runs.
type SourceHealth struct {
	Name   string `json:"name"`
	Agency string `json:"agency,omitempty"`
	// LastSuccess is when a run last succeeded (zero: never since the store
	// began); FreshnessSeconds is how long ago, -1 when never.
	LastSuccess      time.Time `json:"last_success,omitzero"`
	FreshnessSeconds float64   `json:"freshness_seconds"`
	LastError        string    `json:"last_error,omitempty"`
	ErrorAt          time.Time `json:"error_at,omitzero"`
	Degraded         bool      `json:"degraded"` // its last run failed
	Stopped          bool      `json:"stopped"`  // it waits for an operator's fix
}

// SinkHealth is one sink's backlog.
type SinkHealth struct {
	Name                    string  `json:"name"`
	OutboxDepth             int     `json:"outbox_depth"`
	OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"` // 0 when nothing waits
	DeadLetters             int     `json:"dead_letters"`               // replayable ones
}

// Replica names this process among the replicas sharing a store: host and pid.
func Replica() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

// Health reads the daemon's state. It asks the store for cursors and backlogs,
// bounded by ctx.
func (d *Daemon) Health(ctx context.Context) Health {
	now := d.Clock().UTC()
	h := Health{Ready: d.ready.Load(), At: now, Replica: d.replica(), Store: StoreHealth{Driver: d.Config.Store.Driver, Reachable: true},
		Sources: []SourceHealth{}, Sinks: []SinkHealth{}, Problems: []string{}}
	if !h.Ready {
		h.Problems = append(h.Problems, "starting or stopping")
	}
	cursors := map[string]store.CursorState{}
	for _, j := range d.Jobs {
		c, err := d.Store.Cursor(ctx, j.Name)
		if err != nil {
			h.Store.Reachable, h.Store.Error = false, err.Error()
			break
		}
		cursors[j.Name] = c
	}
	if len(d.Jobs) == 0 {
		if _, err := d.Store.Cursor(ctx, "_readyz"); err != nil {
			h.Store.Reachable, h.Store.Error = false, err.Error()
		}
	}
	if !h.Store.Reachable {
		h.Ready = false
		h.Problems = append(h.Problems, "state store unreachable: "+h.Store.Error)
	}
	for _, j := range d.Jobs {
		sh := SourceHealth{Name: j.Name, Agency: j.Agency, FreshnessSeconds: -1}
		c := cursors[j.Name]
		if ns := j.lastOK.Load(); ns != 0 {
			sh.LastSuccess = time.Unix(0, ns).UTC()
		} else if c.Position != nil && c.LastError == "" {
			sh.LastSuccess = c.UpdatedAt // before this process's first run: the last commit
		}
		if !sh.LastSuccess.IsZero() {
			sh.FreshnessSeconds = max(0, now.Sub(sh.LastSuccess).Seconds())
		}
		if p := j.lastErr.Load(); p != nil {
			sh.LastError, sh.ErrorAt = (*p).Error(), now
			if !c.ErrorAt.IsZero() {
				sh.ErrorAt = c.ErrorAt
			}
		} else if c.LastError != "" && j.lastOK.Load() == 0 {
			sh.LastError, sh.ErrorAt = c.LastError, c.ErrorAt
		}
		sh.Degraded = sh.LastError != ""
		if err := j.Stopped(); err != nil {
			sh.Stopped = true
			h.Ready = false
			h.Problems = append(h.Problems, "source stopped until fixed: "+err.Error())
		} else if sh.Degraded {
			h.Problems = append(h.Problems, fmt.Sprintf("source %s degraded: %s", j.Name, firstLine(sh.LastError)))
		}
		h.Sources = append(h.Sources, sh)
	}
	if fs, ok := d.Store.(store.FactStore); ok && h.Store.Reachable {
		backlogs, err := fs.Backlogs(ctx)
		if err != nil {
			h.Problems = append(h.Problems, "cannot read the outbox: "+err.Error())
		}
		by := map[string]store.SinkBacklog{}
		for _, b := range backlogs {
			by[b.Sink] = b
		}
		for _, sc := range d.Config.Sinks {
			b := by[sc.Name]
			sh := SinkHealth{Name: sc.Name, OutboxDepth: b.Depth, DeadLetters: b.DeadLetters}
			if !b.OldestAt.IsZero() {
				sh.OldestPendingAgeSeconds = max(0, now.Sub(b.OldestAt).Seconds())
			}
			h.Sinks = append(h.Sinks, sh)
		}
	}
	switch {
	case !h.Ready:
		h.Status = "not_ready"
	case len(h.Problems) > 0:
		h.Status = "degraded"
	default:
		h.Status = "ok"
	}
	return h
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (d *Daemon) replica() string { return d.replicaName }

// serveReadyz answers 200 when ready (degraded sources included) and 503 when
// not: JSON (Health) when the client asks for it (Accept: application/json or
// ?format=json), otherwise one line per problem, then "ready" or "not ready".
func (d *Daemon) serveReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	h := d.Health(ctx)
	code := http.StatusOK
	if !h.Ready {
		code = http.StatusServiceUnavailable
	}
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(h)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	for _, p := range h.Problems {
		fmt.Fprintln(w, p)
	}
	if h.Ready {
		fmt.Fprintln(w, "ready")
	} else {
		fmt.Fprintln(w, "not ready")
	}
}

// healthCollector reads the store's backlogs and quarantine at scrape time, so the
// gauges are what the store holds now, in whichever replica is scraped.
type healthCollector struct {
	d          *Daemon
	depth      *prometheus.Desc
	oldest     *prometheus.Desc
	dead       *prometheus.Desc
	quarantine *prometheus.Desc
	freshness  *prometheus.Desc
	lockHeld   *prometheus.Desc
}

func newHealthCollector(d *Daemon) *healthCollector {
	return &healthCollector{
		d: d,
		depth: prometheus.NewDesc("egov_outbox_depth", "Outbox rows waiting for a sink.",
			[]string{"sink"}, nil),
		oldest: prometheus.NewDesc("egov_outbox_oldest_age_seconds", "Age of the oldest event waiting for a sink (0 when none waits).",
			[]string{"sink"}, nil),
		dead: prometheus.NewDesc("egov_dead_letters", "Replayable dead letters (holding or open) per sink.",
			[]string{"sink"}, nil),
		quarantine: prometheus.NewDesc("egov_quarantine_entries", "Quarantine entries (bad rows and failed notices) per source.",
			[]string{"source"}, nil),
		freshness: prometheus.NewDesc("egov_source_freshness_seconds", "Seconds since a source's last successful run (-1: none yet).",
			[]string{"source"}, nil),
		lockHeld: prometheus.NewDesc("egov_lock_held", "1 for each store-wide lock this replica holds (source/…, dispatch/…, timers/…, purge).",
			[]string{"lock", "replica"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.depth, c.oldest, c.dead, c.quarantine, c.freshness, c.lockHeld} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := c.d.Health(ctx)
	for _, s := range h.Sinks {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.OutboxDepth), s.Name)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, s.OldestPendingAgeSeconds, s.Name)
		ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(s.DeadLetters), s.Name)
	}
	for _, s := range h.Sources {
		ch <- prometheus.MustNewConstMetric(c.freshness, prometheus.GaugeValue, s.FreshnessSeconds, s.Name)
	}
	if fs, ok := c.d.Store.(store.FactStore); ok {
		if counts, err := fs.QuarantineCounts(ctx); err == nil {
			for _, sc := range c.d.Config.Sources {
				ch <- prometheus.MustNewConstMetric(c.quarantine, prometheus.GaugeValue, float64(counts[sc.Name]), sc.Name)
			}
		}
	}
	if hl, ok := c.d.Store.(interface{ HeldLocks() []string }); ok {
		for _, name := range hl.HeldLocks() {
			ch <- prometheus.MustNewConstMetric(c.lockHeld, prometheus.GaugeValue, 1, name, h.Replica)
		}
	}
}
