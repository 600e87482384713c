package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func (a *app) stateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state [-c FILE]",
		Short: "cursors, each source's last run, outbox, dead letters, quarantine",
		Args:  cobra.NoArgs,
	}
	cfgFlag := configFlag(cmd, true)
	cmd.RunE = action(func([]string) int {
		return withState(a.ctx, *cfgFlag, a.stderr, func(path string, cfg *engine.Config, st store.Store) int {
			return printState(a.ctx, cfg, st, a.stdout, a.stderr)
		})
	})
	reset := &cobra.Command{
		Use:   "reset-cursor -c FILE SOURCE",
		Short: "re-read SOURCE from the start on its next run",
		Args:  cobra.ExactArgs(1),

		ValidArgsFunction: configNames(cfgFlag, false),
	}
	reset.RunE = action(func(args []string) int {
		return withState(a.ctx, *cfgFlag, a.stderr, func(path string, cfg *engine.Config, st store.Store) int {
			return resetCursor(a.ctx, path, cfg, st, args[0], a.stdout, a.stderr)
		})
	})
	audit := &cobra.Command{
		Use:   "audit [-c FILE]",
		Short: "operator actions (resets, replays, reprocessing)",
		Args:  cobra.NoArgs,
	}
	audit.RunE = action(func([]string) int {
		return withState(a.ctx, *cfgFlag, a.stderr, func(_ string, cfg *engine.Config, st store.Store) int {
			return printAudit(a.ctx, cfg, st, a.stdout, a.stderr)
		})
	})
	reconcile := &cobra.Command{
		Use:   "reconcile -c FILE SOURCE",
		Short: "list SOURCE's keys now and delete the records whose rows are gone (what deletes.reconcile schedules)",
		Args:  cobra.ExactArgs(1),

		ValidArgsFunction: configNames(cfgFlag, false),
	}
	reconcile.RunE = action(func(args []string) int {
		path, cfg, ok := loadFlagConfig(*cfgFlag, a.stderr)
		if !ok {
			return exitFailed
		}
		return reconcileNow(a.ctx, path, cfg, args[0], a.stdout, a.stderr)
	})
	cmd.AddCommand(reset, audit, reconcile)
	return cmd
}

// reconcileNow runs one reconcile of source, as the daemon does on the source's
// deletes.reconcile schedule; the deleted events wait in the outbox for the daemon
// (or `run --once`) to deliver. Audited.
func reconcileNow(ctx context.Context, path string, cfg *engine.Config, source string, stdout, stderr io.Writer) int {
	d, err := engine.New(ctx, cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return exitFailed
	}
	defer d.Close()
	for _, j := range d.Jobs {
		if j.Name != source {
			continue
		}
		rs, err := j.Reconcile(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "egov-bridge:", err)
			return exitFailed
		}
		summary := fmt.Sprintf("%d keys listed in %d pages, %d records gone: deleted events queued", rs.Keys, rs.Pages, rs.Deleted)
		fmt.Fprintf(stdout, "%s: %s\n", source, summary)
		if err := d.Store.Audit(ctx, store.AuditEntry{At: time.Now().UTC(), Actor: actor(), Action: "reconcile", Detail: "source " + source + ": " + summary}); err != nil {
			fmt.Fprintln(stderr, "egov-bridge: reconciled, but the audit log could not be written:", err)
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "egov-bridge: no source named %q in %s\n", source, path)
	return exitFailed
}

// withState loads the config and opens its store for body.
func withState(ctx context.Context, cfgFlag string, stderr io.Writer, body func(path string, cfg *engine.Config, st store.Store) int) int {
	path, cfg, ok := loadFlagConfig(cfgFlag, stderr)
	if !ok {
		return exitFailed
	}
	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return exitFailed
	}
	defer st.Close()
	return body(path, cfg, st)
}

func resetCursor(ctx context.Context, path string, cfg *engine.Config, st store.Store, source string, stdout, stderr io.Writer) int {
	known := false
	for _, s := range cfg.Sources {
		known = known || s.Name == source
	}
	if !known {
		fmt.Fprintf(stderr, "egov-bridge: no source named %q in %s\n", source, path)
		return exitFailed
	}
	if err := st.ResetCursor(ctx, source); err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return exitFailed
	}
	if err := st.Audit(ctx, store.AuditEntry{At: time.Now().UTC(), Actor: actor(), Action: "reset-cursor", Detail: "source " + source}); err != nil {
		fmt.Fprintln(stderr, "egov-bridge: the cursor was reset but the audit log could not be written:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "cursor of %s reset: its next run re-reads from the start (unchanged records produce no events)\n", source)
	return exitOK
}

func printAudit(ctx context.Context, cfg *engine.Config, st store.Store, stdout, stderr io.Writer) int {
	log, err := st.AuditLog(ctx, 100)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return exitFailed
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AT\tACTOR\tACTION\tDETAIL")
	for _, e := range log {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.At.In(cfg.Zone).Format(time.DateTime), e.Actor, e.Action, e.Detail)
	}
	w.Flush()
	return exitOK
}

func printState(ctx context.Context, cfg *engine.Config, st store.Store, stdout, stderr io.Writer) int {
	stats, err := st.Stats(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SOURCE\tSNAPSHOT DONE\tCURSOR UPDATED\tQUARANTINED\tLAST RUN")
	var failed []store.CursorState
	for _, c := range stats.Cursors {
		updated := "-"
		if c.Position != nil && !c.UpdatedAt.IsZero() {
			updated = c.UpdatedAt.In(cfg.Zone).Format(time.DateTime)
		}
		status := "ok"
		if c.LastError != "" {
			status = "FAILED at " + c.ErrorAt.In(cfg.Zone).Format(time.DateTime) + " (see below)"
			failed = append(failed, c)
		}
		fmt.Fprintf(w, "%s\t%v\t%s\t%d\t%s\n", c.Source, c.InitialDone, updated, stats.Quarantined[c.Source], status)
	}
	fmt.Fprintln(w)
	for _, c := range failed {
		fmt.Fprintf(w, "source %s: %s\n\n", c.Source, c.LastError)
	}
	// HELD: records whose later events wait behind a dead letter (on_dead: hold)
	// until it is replayed or dismissed, and how many events wait so.
	fmt.Fprintln(w, "SINK\tOUTBOX\tDEAD LETTERS\tHELD RECORDS\tHELD EVENTS")
	for _, s := range cfg.Sinks {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\n", s.Name, stats.Outbox[s.Name], stats.DeadLetters[s.Name],
			stats.HeldRecords[s.Name], stats.HeldEvents[s.Name])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "events\t%d\n", stats.Events)
	fmt.Fprintf(w, "deliveries\t%d\n", stats.Deliveries)
	w.Flush()
	if err := printZaloState(ctx, stdout, st, cfg); err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	return 0
}
