package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func cmdState(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The action may come before or after the flags: "state audit -c f" and
	// "state -c f audit" both work.
	var lead []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		lead, args = append(lead, args[0]), args[1:]
	}
	fs, cfgFlag := newFlags("state", "state [reset-cursor SOURCE | audit] [-c FILE]", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path, cfg, ok := loadFlagConfig(*cfgFlag, stderr)
	if !ok {
		return 1
	}
	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	defer st.Close()

	rest := append(lead, fs.Args()...)
	if len(rest) > 0 {
		switch rest[0] {
		case "reset-cursor":
			if len(rest) != 2 {
				fmt.Fprintln(stderr, "usage: egov-bridge state reset-cursor -c FILE SOURCE")
				return 2
			}
			known := false
			for _, s := range cfg.Sources {
				known = known || s.Name == rest[1]
			}
			if !known {
				fmt.Fprintf(stderr, "egov-bridge: no source named %q in %s\n", rest[1], path)
				return 1
			}
			if err := st.ResetCursor(ctx, rest[1]); err != nil {
				fmt.Fprintln(stderr, "egov-bridge:", err)
				return 1
			}
			if err := st.Audit(ctx, store.AuditEntry{At: time.Now().UTC(), Actor: actor(), Action: "reset-cursor", Detail: "source " + rest[1]}); err != nil {
				fmt.Fprintln(stderr, "egov-bridge: the cursor was reset but the audit log could not be written:", err)
				return 1
			}
			fmt.Fprintf(stdout, "cursor of %s reset: its next run re-reads from the start (unchanged records produce no events)\n", rest[1])
			return 0
		case "audit":
			log, err := st.AuditLog(ctx, 100)
			if err != nil {
				fmt.Fprintln(stderr, "egov-bridge:", err)
				return 1
			}
			w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "AT\tACTOR\tACTION\tDETAIL")
			for _, e := range log {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.At.In(cfg.Zone).Format(time.DateTime), e.Actor, e.Action, e.Detail)
			}
			w.Flush()
			return 0
		default:
			fmt.Fprintf(stderr, "egov-bridge: unknown state command %q\n", rest[0])
			return 2
		}
	}

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
