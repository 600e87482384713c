package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Options are the daemon's injected collaborators.
type Options struct {
	Logger *slog.Logger
	Clock  pipeline.Clock
	// Mount adds routes to the daemon's HTTP server (the API and the steering
	// page, wired by the command); called once before it serves.
	Mount []func(mux *http.ServeMux, d *Daemon)
}

// Daemon is a configured egov-bridge: store, jobs, sinks, dispatcher, HTTP.
type Daemon struct {
	Config     *Config
	Store      store.Store
	Jobs       []*Job
	Sinks      map[string]pipeline.Sink
	Dispatcher *Dispatcher
	Metrics    *Metrics
	Logger     *slog.Logger
	Clock      pipeline.Clock
	// Access authenticates the page's and the API's requests (http.tokens).
	Access *access.Guard
	// Figures computes the steering figures and the service-quality index from the
	// store (pipeline/figures); its optional Feedback and Ratings sources may be
	// set by whoever wires them before Run.
	Figures *figures.Service

	ready    atomic.Bool
	httpAddr atomic.Value // string
	mount    []func(mux *http.ServeMux, d *Daemon)
	router   *Router
	// replicaName names this process among replicas (Replica), for /readyz and
	// the lock gauge.
	replicaName string
}

// New opens the store and builds every sink; sources open on their first run.
func New(ctx context.Context, cfg *Config, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		Config: cfg, Store: st, Sinks: map[string]pipeline.Sink{},
		Metrics: NewMetrics(), Logger: opts.Logger, Clock: opts.Clock, mount: opts.Mount,
		router: NewRouter(cfg.Routes), replicaName: Replica(),
		Access: &access.Guard{Keys: access.NewKeyring(cfg.HTTP.Tokens)},
	}
	d.Metrics.Registry.MustRegister(newHealthCollector(d))
	for _, sc := range cfg.Sinks {
		sink, err := sc.Spec.Build(ctx, d.env(sc.Name, cfg.Zone), sc.Options)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("sink %s: %w", sc.Name, err)
		}
		d.Sinks[sc.Name] = sink
		if c, ok := sink.(prometheus.Collector); ok { // a sink's own figures (the zalo sink's routes)
			if err := d.Metrics.Registry.Register(c); err != nil {
				d.Close()
				return nil, fmt.Errorf("sink %s: metrics: %w", sc.Name, err)
			}
		}
	}
	d.Dispatcher = &Dispatcher{
		Store: st, Sinks: d.Sinks, Default: cfg.Delivery, Delivery: map[string]DeliveryConfig{},
		Clock: opts.Clock, Logger: opts.Logger, Metrics: d.Metrics,
	}
	for _, sc := range cfg.Sinks {
		d.Dispatcher.Delivery[sc.Name] = cfg.DeliveryFor(sc.Name)
	}
	d.Figures = d.newFigures()
	router := d.router
	for _, sc := range cfg.Sources {
		sc := sc
		sc.Map.SetClock(opts.Clock)
		d.Jobs = append(d.Jobs, &Job{
			Name: sc.Name, Map: sc.Map, Agency: sc.Agency, Store: st, Router: router, Deletes: sc.Deletes,
			Clock: opts.Clock, Logger: opts.Logger, Metrics: d.Metrics, OnCommit: d.Dispatcher.Wake, Zone: cfg.Zone,
			Open: func(ctx context.Context) (pipeline.Source, error) {
				return sc.Spec.Build(ctx, d.env(sc.Name, sc.Location), sc.Options)
			},
		})
	}
	return d, nil
}

func (d *Daemon) env(name string, zone *time.Location) pipeline.Env {
	resolve := func(p string) string { return p }
	if d.Config.File != "" {
		resolve = resolveAgainst(d.Config.File)
	}
	return pipeline.Env{Name: name, Logger: d.Logger.With("component", name), Clock: d.Clock, Zone: zone, Resolve: resolve, State: d.Store,
		Route: d.router.Sinks, Wake: d.wake, Officials: d.officials()}
}

// wake wakes the dispatcher, once there is one (sinks are built before it).
func (d *Daemon) wake() {
	if d.Dispatcher != nil {
		d.Dispatcher.Wake()
	}
}

// Run serves until ctx is cancelled: every source runs at start and then on its
// schedule, the dispatcher delivers, and the HTTP endpoint answers. On cancel it
// stops scheduling, lets each run commit its batch in flight, and returns; it gives
// up waiting after the configured shutdown_timeout.
func (d *Daemon) Run(ctx context.Context) error {
	srv, err := d.startHTTP(ctx)
	if err != nil {
		return err
	}
	dispatchCtx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	var dispatchDone sync.WaitGroup
	dispatchDone.Add(1)
	go func() {
		defer dispatchDone.Done()
		d.Dispatcher.Run(dispatchCtx)
	}()

	c := cron.New(cron.WithLocation(d.Config.Zone), cron.WithParser(CronParser))
	var runs sync.WaitGroup
	trigger := func(j *Job) {
		runs.Add(1)
		defer runs.Done()
		d.runJob(ctx, j)
	}
	for i, sc := range d.Config.Sources {
		j := d.Jobs[i]
		if _, err := c.AddFunc(sc.Schedule, func() { trigger(j) }); err != nil {
			stopDispatch()
			dispatchDone.Wait()
			if srv != nil {
				_ = srv.Close()
			}
			return fmt.Errorf("source %s: schedule %q: %w", sc.Name, sc.Schedule, err)
		}
	}
	for i, sc := range d.Config.Sources {
		if sc.Deletes.Reconcile == "" {
			continue
		}
		j := d.Jobs[i]
		if _, err := c.AddFunc(sc.Deletes.Reconcile, func() {
			runs.Add(1)
			defer runs.Done()
			d.reconcileJob(ctx, j)
		}); err != nil {
			stopDispatch()
			dispatchDone.Wait()
			if srv != nil {
				_ = srv.Close()
			}
			return fmt.Errorf("source %s: deletes.reconcile %q: %w", sc.Name, sc.Deletes.Reconcile, err)
		}
	}
	c.Start()
	dispatchDone.Add(1)
	go func() {
		defer dispatchDone.Done()
		d.purgeLoop(dispatchCtx)
	}()
	dispatchDone.Add(1)
	go func() {
		defer dispatchDone.Done()
		d.deadlineLoop(dispatchCtx)
	}()
	for _, j := range d.Jobs {
		runs.Add(1)
		go func() {
			defer runs.Done()
			d.runJob(ctx, j)
		}()
	}
	d.ready.Store(true)
	d.Logger.Info("egov-bridge running", "sources", len(d.Jobs), "sinks", len(d.Sinks), "store", d.Config.Store.Driver)

	<-ctx.Done()
	d.ready.Store(false)
	d.Logger.Info("shutting down: finishing batches in flight")
	cronDone := c.Stop().Done()
	stopDispatch()
	finished := make(chan struct{})
	go func() {
		<-cronDone
		runs.Wait()
		dispatchDone.Wait()
		close(finished)
	}()
	var shutdownErr error
	select {
	case <-finished:
	case <-time.After(d.Config.ShutdownTimeout.D()):
		shutdownErr = fmt.Errorf("shutdown: runs still in flight after %s; their uncommitted batches will be re-read on the next start", d.Config.ShutdownTimeout.D())
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	return shutdownErr
}

func (d *Daemon) runJob(ctx context.Context, j *Job) {
	if ctx.Err() != nil {
		return
	}
	st, err := j.Run(ctx)
	switch {
	case errors.Is(err, ErrAlreadyRunning):
		d.Logger.Info("tick skipped: a run of this source is still in progress (here or in another replica)", "source", j.Name)
	case err != nil:
		d.Logger.Error("sync failed", "source", j.Name, "err", err)
	case st.Events > 0 || st.Quarantined > 0:
		d.Logger.Info("synced", "source", j.Name, "rows", st.Rows, "events", st.Events, "deleted", st.Deleted,
			"quarantined", st.Quarantined, "snapshot", st.Snapshot)
	default:
		d.Logger.Debug("synced, no changes", "source", j.Name, "rows", st.Rows)
	}
}

// OnceOptions shape RunOnceWith.
type OnceOptions struct {
	// Progress, when set, gives each source's run a callback for its progress.
	Progress func(source string) func(RunStats)
	// SyncFirst delivers nothing until every source is synced and the timers
	// have fired, as `run --once` did before decision 0025: slower end to end,
	// but the sync has the machine to itself and its end is the first delivery.
	SyncFirst bool
}

// RunOnce is RunOnceWith with the default options: delivery overlaps the sync.
func (d *Daemon) RunOnce(ctx context.Context, progress func(source string) func(RunStats)) (map[string]RunStats, error) {
	return d.RunOnceWith(ctx, OnceOptions{Progress: progress})
}

// RunOnceWith syncs every source until it has nothing more, fires the due
// timers, delivers what is due and purges what the retention allows. Sources run
// one after another, gentlest on agency servers. Unless o.SyncFirst is set, the
// sinks are delivered while the sources sync, woken by each commit as in the
// daemon (decision 0025), and what is left is drained once the last source and
// the timers are done. Cancelling ctx stops each source after its batch in flight
// is committed and each sink after its deliveries in flight are recorded.
func (d *Daemon) RunOnceWith(ctx context.Context, o OnceOptions) (map[string]RunStats, error) {
	synced := make(chan struct{})
	var delivery *Draining
	if !o.SyncFirst {
		delivery = d.Dispatcher.StartDrain(ctx, synced)
	}
	out := map[string]RunStats{}
	var errs []error
	for _, j := range d.Jobs {
		if o.Progress != nil {
			j.Progress = o.Progress(j.Name)
		}
		start := time.Now()
		st, err := j.Run(ctx)
		out[j.Name] = st
		if err != nil {
			errs = append(errs, err)
		} else {
			// From the run's start to its last commit: what a poll costs.
			d.Logger.Info("synced", "source", j.Name, "rows", st.Rows, "events", st.Events, "quarantined", st.Quarantined,
				"snapshot", st.Snapshot, "took", time.Since(start).Round(time.Millisecond))
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() == nil {
		d.FireTimers(ctx)
	}
	close(synced)
	if delivery == nil {
		delivery = d.Dispatcher.StartDrain(ctx, synced)
	}
	_, err := delivery.Wait()
	if ctx.Err() != nil {
		// What is left waits for the next run; that is what an interrupt means,
		// not a failed delivery.
		return out, errors.Join(append(errs, fmt.Errorf("interrupted (%w): the batch in flight was committed and the deliveries in flight recorded; the next run goes on from there", ctx.Err()))...)
	}
	if err != nil {
		errs = append(errs, err)
	}
	d.Purge(ctx)
	return out, errors.Join(errs...)
}

// HTTPAddr is the address the HTTP endpoint listens on, once Run has started it.
func (d *Daemon) HTTPAddr() string {
	s, _ := d.httpAddr.Load().(string)
	return s
}

func (d *Daemon) startHTTP(ctx context.Context) (*http.Server, error) {
	if d.Config.HTTP.Listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", d.Config.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", d.Config.HTTP.Listen, err)
	}
	d.httpAddr.Store(ln.Addr().String())
	mux := http.NewServeMux()
	expose := func(pattern string, e access.Exposure, h http.Handler) { // each per its own setting
		if h = d.Access.Expose(e, h); h != nil {
			mux.Handle(pattern, h)
		}
	}
	expose("GET /healthz", d.Config.HTTP.Healthz, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	expose("GET /readyz", d.Config.HTTP.Readyz, http.HandlerFunc(d.serveReadyz))
	expose("GET /metrics", d.Config.HTTP.Metrics, promhttp.HandlerFor(d.Metrics.Registry, promhttp.HandlerOpts{}))
	for _, sc := range d.Config.Sinks { // config order: a route clash fails the same way every time
		if m, ok := d.Sinks[sc.Name].(pipeline.Mounter); ok {
			m.Mount(mux)
		}
	}
	for _, mount := range d.mount {
		mount(mux, d)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		// Requests end with the daemon: long-lived ones (the API's event stream)
		// would otherwise hold up the shutdown.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.Logger.Error("http server stopped", "err", err)
		}
	}()
	d.Logger.Info("http listening", "addr", ln.Addr().String())
	return srv, nil
}

// Close closes sources, sinks and the store.
func (d *Daemon) Close() error {
	var errs []error
	for _, j := range d.Jobs {
		if j.Source != nil {
			errs = append(errs, j.Source.Close())
		}
	}
	for _, s := range d.Sinks {
		errs = append(errs, s.Close())
	}
	if d.Store != nil {
		errs = append(errs, d.Store.Close())
	}
	return errors.Join(errs...)
}

// purgeLoop applies the retention every interval, under a store-wide lock so that
// one replica purges at a time.
func (d *Daemon) purgeLoop(ctx context.Context) {
	t := time.NewTicker(d.Config.Retention.Interval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.Purge(ctx)
		}
	}
}

// Purge removes what the retention allows and logs what it removed.
func (d *Daemon) Purge(ctx context.Context) {
	lock, ok, err := d.Store.TryLock(ctx, "purge")
	if err != nil || !ok {
		if err != nil {
			d.Logger.Error("purge: cannot take the purge lock", "err", err)
		}
		return
	}
	defer lock.Unlock()
	res, err := d.Store.Purge(ctx, d.Config.Retention.Store(), d.Clock().UTC())
	if err != nil {
		d.Logger.Error("purge failed", "err", err)
		return
	}
	if res != (store.PurgeResult{}) {
		d.Logger.Info("purged what the retention allows", "events", res.Events, "deliveries", res.Deliveries,
			"dead_letters", res.DeadLetters, "quarantine", res.Quarantine)
	}
}
