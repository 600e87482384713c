package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	egovbridge "github.com/egov-bridge/egov-bridge"
	"github.com/egov-bridge/egov-bridge/internal/demo"
	"github.com/egov-bridge/egov-bridge/pipeline/announce"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

func (a *app) runCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [-c FILE] [--once [--sync-first]]",
		Short: "run the daemon (default config: the embedded demo)",
		Long: `Run the daemon (default config: the embedded demo).

With --once, every source is synced once, the due deadline timers fire, what is
due is delivered, and the command exits (backfills, cron-driven deployments).
Sinks are delivered while the sources sync, as the daemon does; --sync-first
delivers nothing until every source is synced and the timers have fired, as
--once did before: slower end to end, but the sync has the machine to itself and
no event leaves before the whole snapshot is committed.`,
		Args: cobra.NoArgs,
	}
	cfgFlag := configFlag(cmd, false)
	once := cmd.Flags().Bool("once", false, "sync every source once, deliver what is due, and exit (backfills, cron-driven deployments)")
	syncFirst := cmd.Flags().Bool("sync-first", false, "with --once: deliver only after every source is synced (default: deliver while syncing)")
	cmd.RunE = action(func([]string) int {
		if *syncFirst && !*once {
			fmt.Fprintln(a.stderr, "egov-bridge: --sync-first needs --once (the daemon always delivers while it syncs)")
			return exitUsage
		}
		return runDaemon(a.ctx, *cfgFlag, runFlags{once: *once, syncFirst: *syncFirst}, a.stdout, a.stderr)
	})
	return cmd
}

// runFlags are the run command's flags.
type runFlags struct {
	once      bool
	syncFirst bool // with once: deliver after the sync, not during it
}

func runDaemon(ctx context.Context, cfgFlag string, f runFlags, stdout, stderr io.Writer) int {
	once := f.once
	_, cfg, ok := loadFlagConfig(cfgFlag, stderr)
	if !ok {
		return 1
	}
	log := newLogger(cfg.Log, stderr)

	var demoWG sync.WaitGroup
	demoCtx, stopDemo := context.WithCancel(ctx)
	defer func() { stopDemo(); demoWG.Wait() }()
	if cfg.Demo != nil {
		if err := startDemo(demoCtx, cfg, once, log, &demoWG); err != nil {
			fmt.Fprintln(stderr, "egov-bridge:", err)
			return 1
		}
	}

	var ann *announce.Service // set before the daemon serves
	d, err := engine.New(ctx, cfg, engine.Options{Logger: log, Mount: mounts(&ann)})
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	defer d.Close()
	if ann, err = newAnnouncements(cfg, d, log); err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	if ann != nil && !once {
		annCtx, stopAnn := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = ann.Run(annCtx, cfg.Announcements.Poll.D()) }()
		defer func() { stopAnn(); <-done }()
	}

	if once {
		return runOnce(ctx, d, f.syncFirst, stdout, stderr)
	}
	if err := d.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// mounts is what the daemon serves besides its own routes: the steering API and
// page, and the announcements' API once *ann is set (before the daemon serves).
func mounts(ann **announce.Service) []func(*http.ServeMux, *engine.Daemon) {
	return append(steering(), func(mux *http.ServeMux, d *engine.Daemon) {
		if *ann != nil {
			announce.Register(mux, d.Access, *ann)
		}
	})
}

func startDemo(ctx context.Context, cfg *engine.Config, once bool, log *slog.Logger, wg *sync.WaitGroup) error {
	seed, err := egovbridge.Files.ReadFile("testdata/demo/seed.sql")
	if err != nil {
		return err
	}
	created, err := demo.Prepare(ctx, cfg.Demo.Database, seed)
	if err != nil {
		return err
	}
	if created {
		log.Info("demo agency database created and seeded", "path", cfg.Demo.Database)
	}
	if once || cfg.Demo.Activity == 0 {
		return nil
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := demo.Activity(ctx, cfg.Demo.Database, cfg.Demo.Activity.D(), cfg.Demo.Changes, cfg.Zone, time.Now, log.With("component", "demo"))
		if err != nil {
			log.Error("demo activity stopped", "err", err)
		}
	}()
	log.Info("demo activity generator on: dossiers advance every " + cfg.Demo.Activity.D().String())
	return nil
}

// runOnce syncs everything once with a progress bar on a terminal and a summary.
func runOnce(ctx context.Context, d *engine.Daemon, syncFirst bool, stdout, stderr io.Writer) int {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	var bars []*progressbar.ProgressBar
	progress := func(source string) func(engine.RunStats) {
		if !tty {
			return nil
		}
		bar := progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription(source),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionShowIts(),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionClearOnFinish(),
		)
		bars = append(bars, bar)
		return func(st engine.RunStats) { _ = bar.Set(st.Rows) }
	}
	stats, err := d.RunOnceWith(ctx, engine.OnceOptions{Progress: progress, SyncFirst: syncFirst})
	for _, b := range bars {
		_ = b.Finish()
	}
	names := make([]string, 0, len(stats))
	for n := range stats {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := stats[n]
		fmt.Fprintf(stdout, "%s: %d rows in %d batches, %d events, %d quarantined\n", n, st.Rows, st.Batches, st.Events, st.Quarantined)
	}
	if errors.Is(err, engine.ErrUndelivered) {
		fmt.Fprintln(stderr, "egov-bridge: some deliveries failed and wait in the outbox for the next run; see 'egov-bridge state'")
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	return 0
}
