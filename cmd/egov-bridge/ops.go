package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// operator opens the config and store for an operator command.
type operator struct {
	path  string
	cfg   *engine.Config
	store store.Store
}

func openOperator(ctx context.Context, cfgFlag string, stderr io.Writer) (*operator, bool) {
	path, cfg, ok := loadFlagConfig(cfgFlag, stderr)
	if !ok {
		return nil, false
	}
	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return nil, false
	}
	return &operator{path: path, cfg: cfg, store: st}, true
}

// audit records what the operator did; the command fails if it cannot be recorded.
func (o *operator) audit(ctx context.Context, action, detail string, stderr io.Writer) bool {
	err := o.store.Audit(ctx, store.AuditEntry{At: time.Now().UTC(), Actor: actor(), Action: action, Detail: detail})
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge: the action was done but could not be written to the audit log:", err)
		return false
	}
	return true
}

func actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

func (a *app) replayCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay -c FILE [--sink NAME] [--id N[,N…]] [--since TIME] [--until TIME] [--dry-run] [--dismiss]",
		Short: "move dead letters back into the outbox (or dismiss them)",
		Args:  cobra.NoArgs,
	}
	cfgFlag := configFlag(cmd, false)
	fs := cmd.Flags()
	sink := fs.String("sink", "", "only dead letters of this sink")
	ids := fs.String("id", "", "only these dead letter ids (comma-separated)")
	since := fs.String("since", "", "only dead letters from this time on (RFC 3339 or 2006-01-02 15:04, province time)")
	until := fs.String("until", "", "only dead letters before this time")
	dry := fs.Bool("dry-run", false, "list what would be replayed, change nothing")
	dismiss := fs.Bool("dismiss", false, "give the dead letters up instead: never resent, and their records' held events go on")
	_ = cmd.RegisterFlagCompletionFunc("sink", configNames(cfgFlag, true))
	cmd.RunE = action(func([]string) int {
		o, ok := openOperator(a.ctx, *cfgFlag, a.stderr)
		if !ok {
			return exitFailed
		}
		defer o.store.Close()
		from, err := parseWhen(*since, o.cfg.Zone)
		if err == nil {
			var to time.Time
			if to, err = parseWhen(*until, o.cfg.Zone); err == nil {
				sel := replaySelection{sink: *sink, ids: *ids, from: from, to: to}
				return o.replay(a.ctx, sel, *dry, *dismiss, a.stdout, a.stderr)
			}
		}
		fmt.Fprintln(a.stderr, "egov-bridge:", err)
		return exitUsage
	})
	return cmd
}

// replaySelection is which dead letters an operator picked.
type replaySelection struct {
	sink, ids string
	from, to  time.Time
}

func (sel replaySelection) String() string {
	return fmt.Sprintf("sink=%q ids=%q since=%s until=%s", sel.sink, sel.ids, when(sel.from), when(sel.to))
}

// replayTally sums up the picked dead letters by what replaying them would do.
type replayTally struct {
	resend     []int64 // replayable
	held       int     // events waiting behind the replayable ones
	superseded int
	dismissed  int
}

func (o *operator) replay(ctx context.Context, sel replaySelection, dry, dismiss bool, stdout, stderr io.Writer) int {
	want := map[int64]bool{}
	for _, s := range strings.FieldsFunc(sel.ids, func(r rune) bool { return r == ',' || r == ' ' }) {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "egov-bridge: --id: %q is not a number\n", s)
			return 2
		}
		want[id] = true
	}
	dead, err := o.store.DeadLetters(ctx, sel.sink, 0)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	var tally replayTally
	var pick []int64
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSINK\tEVENT\tRECORD\tAT\tSTATE\tHELD\tREASON")
	for _, d := range dead {
		if (len(want) > 0 && !want[d.ID]) || (!sel.from.IsZero() && d.At.Before(sel.from)) || (!sel.to.IsZero() && !d.At.Before(sel.to)) {
			continue
		}
		pick = append(pick, d.ID)
		switch d.State {
		case store.DeadSuperseded:
			tally.superseded++
		case store.DeadDismissed:
			tally.dismissed++
		default:
			tally.resend = append(tally.resend, d.ID)
			tally.held += d.Held
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s/%s\t%s\t%s\t%d\t%s\n", d.ID, d.Sink, d.Event.ID, d.Event.Entity, d.Event.Key,
			d.At.In(o.cfg.Zone).Format(time.DateTime), d.State, d.Held, firstLine(d.Reason, 80))
	}
	w.Flush()
	if len(pick) == 0 {
		fmt.Fprintln(stdout, "no dead letters match")
		return 0
	}
	if dry {
		verb := "would be replayed"
		if dismiss {
			verb = "would be dismissed"
		}
		fmt.Fprintf(stdout, "%d dead letters %s (dry run); %d held events of their records would go on\n", len(tally.resend), verb, tally.held)
		o.reportSkipped(tally.superseded, tally.dismissed, stdout)
		return 0
	}
	if dismiss {
		return o.dismiss(ctx, sel, tally, stdout, stderr)
	}
	res, err := o.store.Replay(ctx, pick, time.Now().UTC())
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d dead letters are back in the outbox; a running daemon delivers them on its next poll, "+
		"followed in order by the %d held events of their records\n", res.Replayed, tally.held)
	o.reportSkipped(res.Superseded, res.Dismissed, stdout)
	detail := fmt.Sprintf("%d dead letters, %d superseded and %d dismissed not resent (%s)", res.Replayed, res.Superseded, res.Dismissed, sel)
	if !o.audit(ctx, "replay", detail, stderr) {
		return 1
	}
	return 0
}

// reportSkipped says which picked dead letters are not resent, and why.
func (o *operator) reportSkipped(superseded, dismissed int, stdout io.Writer) {
	if superseded > 0 {
		fmt.Fprintf(stdout, "%d superseded dead letters not resent: a newer event of their record already reached the sink, "+
			"and resending would give it an older version after a newer one\n", superseded)
	}
	if dismissed > 0 {
		fmt.Fprintf(stdout, "%d dismissed dead letters not resent: an operator gave them up\n", dismissed)
	}
}

func (o *operator) dismiss(ctx context.Context, sel replaySelection, tally replayTally, stdout, stderr io.Writer) int {
	n, err := o.store.Dismiss(ctx, tally.resend, time.Now().UTC())
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d dead letters dismissed: they are kept but never resent; the %d held events of their records go on\n", n, tally.held)
	if !o.audit(ctx, "dismiss", fmt.Sprintf("%d dead letters (%s)", n, sel), stderr) {
		return 1
	}
	return 0
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// parseWhen reads an operator's time: RFC 3339, or a date/time in the province's zone.
func parseWhen(s string, zone *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02", "02/01/2006 15:04", "02/01/2006"} {
		if t, err := time.ParseInLocation(layout, s, zone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time; use 2026-11-27T08:00:00+07:00, 2026-11-27 08:00 or 27/11/2026", s)
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func (a *app) quarantineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine [list] -c FILE [--source NAME] [--limit N] [--raw]",
		Short: "rows their mapping rejected, with reasons (citizen data masked)",
		Args:  cobra.NoArgs,
	}
	cfgFlag := configFlag(cmd, true)
	source := cmd.PersistentFlags().String("source", "", "only this source")
	_ = cmd.RegisterFlagCompletionFunc("source", configNames(cfgFlag, false))
	// withOp opens the config and store for a quarantine command.
	withOp := func(body func(o *operator) int) int {
		o, ok := openOperator(a.ctx, *cfgFlag, a.stderr)
		if !ok {
			return exitFailed
		}
		defer o.store.Close()
		return body(o)
	}
	listFlags := func(c *cobra.Command) (*int, *bool) {
		return c.Flags().Int("limit", 50, "list at most this many entries (newest)"),
			c.Flags().Bool("raw", false, "show the raw rows, citizen fields masked")
	}
	limit, raw := listFlags(cmd)
	cmd.RunE = action(func([]string) int {
		return withOp(func(o *operator) int { return o.listQuarantine(a.ctx, *source, *limit, *raw, a.stdout, a.stderr) })
	})
	list := &cobra.Command{
		Use:   "list -c FILE [--source NAME] [--limit N] [--raw]",
		Short: "list quarantined rows (the default)",
		Args:  cobra.NoArgs,
	}
	listLimit, listRaw := listFlags(list)
	list.RunE = action(func([]string) int {
		return withOp(func(o *operator) int {
			return o.listQuarantine(a.ctx, *source, *listLimit, *listRaw, a.stdout, a.stderr)
		})
	})
	reprocess := &cobra.Command{
		Use:   "reprocess -c FILE [--source NAME]",
		Short: "map quarantined rows again after a mapping fix",
		Args:  cobra.NoArgs,
	}
	reprocess.RunE = action(func([]string) int {
		return withOp(func(o *operator) int { return o.reprocess(a.ctx, *source, a.stdout, a.stderr) })
	})
	dismiss := &cobra.Command{
		Use:   "dismiss -c FILE (ID... | --all [--source NAME])",
		Short: "drop entries dealt with otherwise (audited)",
		Args:  cobra.ArbitraryArgs,
	}
	all := dismiss.Flags().Bool("all", false, "every entry (of --source, when given)")
	dismiss.RunE = action(func(args []string) int {
		return withOp(func(o *operator) int { return o.dismissQuarantine(a.ctx, *source, *all, args, a.stdout, a.stderr) })
	})
	cmd.AddCommand(list, reprocess, dismiss)
	return cmd
}

func (o *operator) listQuarantine(ctx context.Context, source string, limit int, raw bool, stdout, stderr io.Writer) int {
	entries, err := o.store.Quarantined(ctx, source, limit)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	maps := map[string]*engine.SourceConfig{}
	for i := range o.cfg.Sources {
		maps[o.cfg.Sources[i].Name] = &o.cfg.Sources[i]
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSOURCE\tROW\tSEEN\tLAST\tREASON")
	for _, e := range entries {
		reason, rowKey := e.Reason, e.RowKey
		if sc := maps[e.Source]; sc != nil {
			reason, rowKey = sc.Map.MaskText(reason, e.Raw), sc.Map.MaskText(rowKey, e.Raw)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%d×\t%s\t%s\n", e.ID, e.Source, rowKey, e.Count, e.LastAt.In(o.cfg.Zone).Format(time.DateTime), reason)
		if raw {
			masked := e.Raw
			if sc := maps[e.Source]; sc != nil {
				masked = sc.Map.MaskRaw(e.Raw)
			}
			cols := make([]string, 0, len(masked))
			for k := range masked {
				cols = append(cols, k)
			}
			sort.Strings(cols)
			for _, c := range cols {
				fmt.Fprintf(w, "\t\t\t\t%s\t%s\n", c, masked[c])
			}
		}
	}
	w.Flush()
	fmt.Fprintf(stdout, "%d entries\n", len(entries))
	return 0
}

func (o *operator) reprocess(ctx context.Context, source string, stdout, stderr io.Writer) int {
	d, err := engine.New(ctx, o.cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	defer d.Close()
	failed := false
	for _, j := range d.Jobs {
		if source != "" && j.Name != source {
			continue
		}
		res, err := j.Reprocess(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "egov-bridge: %s: %v\n", j.Name, err)
			failed = true
			continue
		}
		from := "the stored copies (the source cannot re-read rows)"
		if res.FromSource {
			from = "the source's current rows"
		}
		summary := fmt.Sprintf("%d rows now map cleanly (%d skipped because the record was synced since), %d still rejected, %d gone from the source, %d failed notices sent; %d events; read from %s",
			res.Fixed, res.Superseded, res.StillBad, res.Gone, res.Notices, res.Events, from)
		fmt.Fprintf(stdout, "%s: %s\n", j.Name, summary)
		if !o.audit(ctx, "quarantine reprocess", "source "+j.Name+": "+summary, stderr) {
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

// dismissQuarantine removes quarantine entries the operator has dealt with otherwise (a row
// the agency will not fix, a notice that is no longer worth sending), audited.
func (o *operator) dismissQuarantine(ctx context.Context, source string, all bool, args []string, stdout, stderr io.Writer) int {
	var ids []int64
	switch {
	case all && len(args) > 0:
		fmt.Fprintln(stderr, "egov-bridge: quarantine dismiss takes entry ids or --all, not both")
		return 2
	case all:
		entries, err := o.store.Quarantined(ctx, source, 0)
		if err != nil {
			fmt.Fprintln(stderr, "egov-bridge:", err)
			return 1
		}
		for _, e := range entries {
			ids = append(ids, e.ID)
		}
	case len(args) == 0:
		fmt.Fprintln(stderr, "egov-bridge: name the entries to dismiss (ids from 'egov-bridge quarantine list'), or --all")
		return 2
	default:
		for _, a := range args {
			id, err := strconv.ParseInt(a, 10, 64)
			if err != nil || id <= 0 {
				fmt.Fprintf(stderr, "egov-bridge: %q is not a quarantine entry id\n", a)
				return 2
			}
			ids = append(ids, id)
		}
	}
	n, err := o.store.ResolveQuarantine(ctx, ids)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	detail := fmt.Sprintf("%d entries dismissed", n)
	if all {
		detail += " (--all"
		if source != "" {
			detail += " of source " + source
		}
		detail += ")"
	} else {
		detail += ": ids " + strings.Join(args, " ")
	}
	if !o.audit(ctx, "quarantine dismiss", detail, stderr) {
		return 1
	}
	fmt.Fprintln(stdout, detail)
	if n < len(ids) {
		fmt.Fprintf(stderr, "egov-bridge: %d of the ids named no entry\n", len(ids)-n)
		return 1
	}
	return 0
}
