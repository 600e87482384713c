package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func (a *app) previewCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "preview -c FILE --source NAME [--limit N] [--json] [--unmasked]",
		Short: "read a source once and show records, events, messages and quarantine reasons; commit nothing",
		Args:  cobra.NoArgs,
	}
	cfgFlag := configFlag(cmd, false)
	source := cmd.Flags().String("source", "", "the source to read (required)")
	limit := cmd.Flags().Int("limit", 20, "rows to read at most")
	asJSON := cmd.Flags().Bool("json", false, "print JSON instead of a table")
	unmasked := cmd.Flags().Bool("unmasked", false, "show citizen names, phones and ID numbers as read (masked by default)")
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.RegisterFlagCompletionFunc("source", configNames(cfgFlag, false))
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		if *limit < 1 {
			return fmt.Errorf("--limit must be at least 1")
		}
		return action(func([]string) int {
			return preview(a.ctx, *cfgFlag, *source, *limit, *asJSON, *unmasked, a.stdout, a.stderr)
		})(c, nil)
	}
	return cmd
}

func preview(ctx context.Context, cfgFlag, source string, limit int, asJSON, unmasked bool, stdout, stderr io.Writer) int {
	_, cfg, ok := loadFlagConfig(cfgFlag, stderr)
	if !ok {
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Compare against the stored snapshot when there is one; never create a store.
	var st store.Store
	if cfg.Store.Driver == store.DriverPostgres || fileExists(cfg.Store.Path) {
		var err error
		if st, err = store.Open(ctx, cfg.Store); err != nil {
			log.Warn("state store unavailable: every record is shown as new", "err", err)
			st = nil
		} else {
			defer st.Close()
		}
	}
	rows, err := engine.Preview(ctx, cfg, source, limit, st, unmasked, engine.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			fmt.Fprintln(stderr, "egov-bridge:", err)
			return 1
		}
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tRESULT\tDETAIL")
	quarantined, events := 0, 0
	for _, r := range rows {
		if r.Quarantine != "" && r.Record == nil {
			quarantined++
			fmt.Fprintf(w, "%s\tquarantine\t%s\n", r.RowKey, r.Quarantine)
			continue
		}
		if len(r.Events) == 0 {
			fmt.Fprintf(w, "%s\tunchanged\t\n", r.RowKey)
			continue
		}
		for _, ev := range r.Events {
			events++
			switch {
			case ev.Message != nil:
				fmt.Fprintf(w, "%s\t%s\t%s\n", r.Record.Key, ev.Rule, oneLineText(ev.Message.Text))
			case ev.Rule != "":
				fmt.Fprintf(w, "%s\t%s\t\n", r.Record.Key, ev.Rule)
			case ev.Snapshot:
				fmt.Fprintf(w, "%s\t%s (first sync: no notice)\t%s\n", r.Record.Key, ev.Type, summary(r.Record.Fields))
			case len(ev.Changed) > 0:
				fmt.Fprintf(w, "%s\t%s\tchanged: %s\n", r.Record.Key, ev.Type, strings.Join(ev.Changed, ", "))
			default:
				fmt.Fprintf(w, "%s\t%s\t%s\n", r.Record.Key, ev.Type, summary(r.Record.Fields))
			}
		}
	}
	w.Flush()
	fmt.Fprintf(stdout, "\n%d rows read, %d events, %d quarantined; nothing was committed\n", len(rows), events, quarantined)
	return 0
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func oneLineText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// summary shows a record compactly for the table: the first few fields.
func summary(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	s := string(b)
	if r := []rune(s); len(r) > 100 {
		s = string(r[:100]) + "…"
	}
	return s
}
