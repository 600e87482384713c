package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/egov-bridge/egov-bridge/connectors/zalo"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

func (a *app) zaloCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "zalo",
		Short: "Zalo OA operator commands: token, status, followers, test send",
		Args:  cobra.NoArgs,
	}
	z := &zaloFlags{cfg: configFlag(cmd, true)}
	z.sink = cmd.PersistentFlags().String("sink", "", "the zalo sink, when the config has several")
	_ = cmd.RegisterFlagCompletionFunc("sink", configNames(z.cfg, true))

	token := &cobra.Command{Use: "token", Short: "the OA's refresh token", Args: cobra.NoArgs}
	set := &cobra.Command{
		Use:   "set -c FILE [--sink NAME] [--token-file F]",
		Short: "store a new refresh token after re-authorising the app (read from standard input unless --token-file)",
		Args:  cobra.NoArgs,
	}
	tokenFile := set.Flags().String("token-file", "", "read the refresh token from this file (default: standard input)")
	set.RunE = action(func([]string) int { return zaloTokenSet(a.ctx, z, *tokenFile, a.stdout, a.stderr) })
	token.AddCommand(set)

	status := &cobra.Command{
		Use:   "status -c FILE [--sink NAME] [--month YYYY-MM]",
		Short: "token age and expiry, followers, routes and savings this month",
		Args:  cobra.NoArgs,
	}
	month := status.Flags().String("month", "", "the month to count (default: this month)")
	status.RunE = action(func([]string) int { return zaloStatus(a.ctx, z, *month, a.stdout, a.stderr) })

	followers := &cobra.Command{Use: "followers", Short: "the OA's followers and their phones", Args: cobra.NoArgs}
	imp := &cobra.Command{
		Use:   "import -c FILE [--sink NAME] FILE.csv",
		Short: "link followers to phones from an agency's list (user_id,phone,…)",
		Args:  cobra.ExactArgs(1),
	}
	imp.RunE = action(func(args []string) int { return zaloImport(a.ctx, z, args[0], a.stdout, a.stderr) })
	followers.AddCommand(imp)

	send := &cobra.Command{
		Use:   "send -c FILE --phone P --text T [--rule R] [--dry-run] [--sink NAME]",
		Short: "send one test message through the Zalo sink",
		Args:  cobra.NoArgs,
	}
	sf := sendFlags{
		phone: send.Flags().String("phone", "", "the citizen's phone (a follower gets an OA message, else ZNS if --rule names a template)"),
		text:  send.Flags().String("text", "", "the message"),
		rule:  send.Flags().String("rule", "zalo.smoke", "the rule whose route settings apply"),
		dry:   send.Flags().Bool("dry-run", false, "route and record, but send nothing"),
	}
	_ = send.MarkFlagRequired("phone")
	_ = send.MarkFlagRequired("text")
	send.RunE = action(func([]string) int { return zaloSend(a.ctx, a.now, z, sf, a.stdout, a.stderr) })

	cmd.AddCommand(token, status, followers, send)
	return cmd
}

// zaloFlags are the flags every zalo command shares.
type zaloFlags struct{ cfg, sink *string }

type sendFlags struct {
	phone, text, rule *string
	dry               *bool
}

// zaloOp is an operator command's config, store and chosen zalo sink.
type zaloOp struct {
	*operator
	sink string
	opts zalo.Options
}

// openZalo loads the config, opens the store and picks the zalo sink: the one
// named, or the only one.
func openZalo(ctx context.Context, cfgFlag, sinkFlag string, stderr io.Writer) (*zaloOp, bool) {
	op, ok := openOperator(ctx, cfgFlag, stderr)
	if !ok {
		return nil, false
	}
	var found []engine.SinkConfig
	for _, s := range op.cfg.Sinks {
		if s.Type == "zalo" && (sinkFlag == "" || s.Name == sinkFlag) {
			found = append(found, s)
		}
	}
	switch {
	case len(found) == 0:
		fmt.Fprintf(stderr, "egov-bridge: %s has no zalo sink%s\n", op.path, map[bool]string{true: " named " + sinkFlag}[sinkFlag != ""])
	case len(found) > 1:
		fmt.Fprintln(stderr, "egov-bridge: the config has several zalo sinks: name one with --sink")
	default:
		o, ok := found[0].Options.(*zalo.Options)
		if ok {
			opts := *o
			if opts.OAID == "" {
				opts.OAID = zalo.DryRunOA
			}
			return &zaloOp{operator: op, sink: found[0].Name, opts: opts}, true
		}
		fmt.Fprintf(stderr, "egov-bridge: sink %s: options are %T\n", found[0].Name, found[0].Options)
	}
	op.store.Close()
	return nil, false
}

func zaloTokenSet(ctx context.Context, zf *zaloFlags, file string, stdout, stderr io.Writer) int {
	token, err := readToken(file)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	z, ok := openZalo(ctx, *zf.cfg, *zf.sink, stderr)
	if !ok {
		return 1
	}
	defer z.store.Close()
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := zalo.SetToken(tctx, z.store, z.opts.OAID, token, time.Now()); err != nil {
		fmt.Fprintln(stderr, "egov-bridge: store the refresh token:", err)
		return 1
	}
	if !z.audit(ctx, "zalo token set", "sink "+z.sink+", OA "+z.opts.OAID, stderr) {
		return 1
	}
	fmt.Fprintf(stdout, "refresh token stored for OA %s: the next notice refreshes the access token with it, and notices that waited are sent\n", z.opts.OAID)
	return 0
}

// readToken reads a refresh token from a file or standard input, never from a
// flag, so it stays out of shell history and process lists.
func readToken(file string) (string, error) {
	var r io.Reader = os.Stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(io.LimitReader(r, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	token := strings.TrimSpace(line)
	if token == "" {
		return "", errors.New("no refresh token given (pipe it in, or use --token-file)")
	}
	return token, nil
}

func zaloStatus(ctx context.Context, zf *zaloFlags, month string, stdout, stderr io.Writer) int {
	z, ok := openZalo(ctx, *zf.cfg, *zf.sink, stderr)
	if !ok {
		return 1
	}
	defer z.store.Close()
	now := time.Now().In(z.cfg.Zone)
	if month == "" {
		month = now.Format("2006-01")
	}
	monthStart, err := time.ParseInLocation("2006-01", month, z.cfg.Zone)
	if err != nil {
		fmt.Fprintf(stderr, "egov-bridge: --month %q: want YYYY-MM\n", month)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "sink\t%s\nOA\t%s\n", z.sink, z.opts.OAID)
	if z.opts.DryRun {
		fmt.Fprintln(w, "mode\tdry run: notices are routed and counted, nothing is sent")
	}
	tok, err := z.store.ZaloToken(ctx, z.opts.OAID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		fmt.Fprintln(w, "token\tnone stored yet (the config's refresh_token is stored by the first notice, or run `zalo token set`)")
	case err != nil:
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	default:
		printToken(w, tok, now, z.cfg.Zone)
	}
	following, withPhone, err := z.store.CountZaloFollowers(ctx, z.opts.OAID)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	fmt.Fprintf(w, "followers\t%d following, %d with a phone linked\n", following, withPhone)
	type citizenCounter interface {
		CountCitizens(ctx context.Context, oaID string) (store.CitizenCounts, error)
	}
	if cc, ok := z.store.(citizenCounter); ok && z.opts.Citizens != nil {
		c, err := cc.CountCitizens(ctx, z.opts.OAID)
		if err != nil {
			fmt.Fprintln(stderr, "egov-bridge:", err)
			return 1
		}
		fmt.Fprintf(w, "citizens\t%d messages waiting, %d given up; %d subscriptions; %d feedback (%d unanswered); %d ratings\n",
			c.Waiting, c.GivenUp, c.Subscriptions, c.Feedback, c.Unanswered, c.Ratings)
	}
	fmt.Fprintln(w)
	w.Flush()
	if err := printZaloUsage(ctx, stdout, z.store, z.sink, month, z.opts.Prices); err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	// The proactive quota is drawn by notices and announcements alike, both
	// recorded in zalo_sends: one number.
	type quotaCounter interface {
		OAMessages(ctx context.Context, oa string, from, to time.Time) (int, error)
	}
	if qc, ok := z.store.(quotaCounter); ok {
		n, err := qc.OAMessages(ctx, z.sink, monthStart.UTC(), monthStart.AddDate(0, 1, 0).UTC())
		if err != nil {
			fmt.Fprintln(stderr, "egov-bridge:", err)
			return 1
		}
		fmt.Fprintf(stdout, "proactive quota: %d OA messages in %s (notices and announcements)\n", n, month)
	}
	return 0
}

func printToken(w io.Writer, t store.ZaloToken, now time.Time, zone *time.Location) {
	fmt.Fprintf(w, "token\tgeneration %d, stored %s (%s ago)\n", t.Generation, t.RefreshedAt.In(zone).Format(time.DateTime),
		now.Sub(t.RefreshedAt).Round(time.Minute))
	switch {
	case t.Refused != "":
		fmt.Fprintf(w, "token\tREFUSED at %s: %s\n\tre-authorise the app, then run `egov-bridge zalo token set`\n",
			t.RefusedAt.In(zone).Format(time.DateTime), t.Refused)
	case t.AccessToken == "":
		fmt.Fprintln(w, "access token\tnone yet: the next notice refreshes")
	case now.After(t.ExpiresAt):
		fmt.Fprintf(w, "access token\texpired at %s: the next notice refreshes\n", t.ExpiresAt.In(zone).Format(time.DateTime))
	default:
		fmt.Fprintf(w, "access token\texpires %s (in %s)\n", t.ExpiresAt.In(zone).Format(time.DateTime), t.ExpiresAt.Sub(now).Round(time.Minute))
	}
}

// printZaloUsage prints a month's routes per agency and what Zalo saved against SMS.
func printZaloUsage(ctx context.Context, out io.Writer, st store.Store, sink, month string, p zalo.Prices) error {
	use, err := st.ZaloUsage(ctx, sink, month)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "ZALO %s\tAGENCY\tROUTE\tNOTICES\tMESSAGES\tDRY RUN\n", month)
	var onZalo, dry int
	var saved float64
	for _, u := range use {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\n", sink, u.Agency, u.Route, u.Notices, u.Messages, u.DryRun)
		if u.Route == zalo.RouteOA || u.Route == zalo.RouteZNS {
			onZalo += u.Notices
			saved += zalo.Saving(u.Route, u.Notices, u.Messages, p)
			dry += u.DryRun
		}
	}
	if len(use) == 0 {
		fmt.Fprintf(w, "%s\t-\t-\t0\t0\t0\n", sink)
	}
	line := fmt.Sprintf("sent on Zalo instead of SMS: %d messages, %s đồng saved", onZalo, strconv.FormatFloat(saved, 'f', 0, 64))
	if p.SMS == 0 {
		line += " (set prices.sms in the sink's config to see the saving)"
	}
	if dry > 0 {
		line += fmt.Sprintf(" (%d of the messages were a dry run)", dry)
	}
	fmt.Fprintln(w, line)
	return w.Flush()
}

// printZaloState adds each zalo sink's month to `egov-bridge state`.
func printZaloState(ctx context.Context, out io.Writer, st store.Store, cfg *engine.Config) error {
	month := time.Now().In(cfg.Zone).Format("2006-01")
	for _, s := range cfg.Sinks {
		o, ok := s.Options.(*zalo.Options)
		if !ok {
			continue
		}
		fmt.Fprintln(out)
		if err := printZaloUsage(ctx, out, st, s.Name, month, o.Prices); err != nil {
			return err
		}
	}
	return nil
}

func zaloImport(ctx context.Context, zf *zaloFlags, file string, stdout, stderr io.Writer) int {
	z, ok := openZalo(ctx, *zf.cfg, *zf.sink, stderr)
	if !ok {
		return 1
	}
	defer z.store.Close()
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	defer f.Close()
	followers, problems, err := readFollowers(f, z.opts.OAID, time.Now(), z.cfg.Zone)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", file+":", err)
		return 1
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "%s: %s\n", file, p)
	}
	n, err := z.store.UpsertZaloFollowers(ctx, followers)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	if !z.audit(ctx, "zalo followers import", fmt.Sprintf("%d followers from %s (%d rows skipped), OA %s", n, file, len(problems), z.opts.OAID), stderr) {
		return 1
	}
	fmt.Fprintf(stdout, "%d followers imported for OA %s, %d rows skipped\n", n, z.opts.OAID, len(problems))
	if len(problems) > 0 {
		return 1
	}
	return 0
}

// readFollowers reads a CSV with a header naming at least user_id and phone, and
// optionally followed (true/false, 1/0), consent_at and interaction_at (RFC 3339
// or "2006-01-02 15:04[:05]" in the province's zone). Rows that cannot be read are
// skipped with a problem that names the row, never the phone in full.
func readFollowers(r io.Reader, oaID string, now time.Time, zone *time.Location) ([]store.ZaloFollower, []string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("read the header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["user_id"]; !ok {
		return nil, nil, errors.New(`the header has no "user_id" column`)
	}
	if _, ok := col["phone"]; !ok {
		return nil, nil, errors.New(`the header has no "phone" column`)
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []store.ZaloFollower
	var problems []string
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("row %d: %v", line, err))
			continue
		}
		f := store.ZaloFollower{OAID: oaID, UserID: get(rec, "user_id"), Followed: true, UpdatedAt: now}
		if f.UserID == "" {
			problems = append(problems, fmt.Sprintf("row %d: no user_id", line))
			continue
		}
		phone, perr := transform.PhoneVN(get(rec, "phone"))
		if perr != nil {
			problems = append(problems, fmt.Sprintf("row %d: phone %s is not a Vietnamese mobile number", line, transform.MaskPhone(get(rec, "phone"))))
			continue
		}
		f.Phone = phone
		if v := get(rec, "followed"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("row %d: followed %q is not true or false", line, v))
				continue
			}
			f.Followed = b
		}
		var terr error
		if f.ConsentAt, terr = csvTime(get(rec, "consent_at"), zone); terr == nil {
			f.InteractionAt, terr = csvTime(get(rec, "interaction_at"), zone)
		}
		if terr != nil {
			problems = append(problems, fmt.Sprintf("row %d: %v", line, terr))
			continue
		}
		out = append(out, f)
	}
	return out, problems, nil
}

func csvTime(s string, zone *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, zone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want 2006-01-02 15:04 or RFC 3339", s)
}

func zaloSend(ctx context.Context, clock func() time.Time, zf *zaloFlags, f sendFlags, stdout, stderr io.Writer) int {
	phone, text, rule, dry := f.phone, f.text, f.rule, f.dry
	if *phone == "" || *text == "" {
		fmt.Fprintln(stderr, "egov-bridge: --phone and --text must not be empty")
		return exitUsage
	}
	z, ok := openZalo(ctx, *zf.cfg, *zf.sink, stderr)
	if !ok {
		return 1
	}
	defer z.store.Close()
	opts := z.opts
	opts.DryRun = opts.DryRun || *dry
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sink, err := zalo.New(pipeline.Env{Name: z.sink, Logger: log, Clock: clock, Zone: z.cfg.Zone, State: z.store}, opts)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	defer sink.Close()
	now := clock()
	id := "smoke-" + strconv.FormatInt(now.UnixNano(), 36)
	ev := &pipeline.Event{ID: id, Type: *rule, Rule: *rule, Source: "operator", Entity: "smoke-test", Key: id,
		Agency: "operator", Version: 1, DetectedAt: now, Message: &pipeline.Message{Phone: *phone, Text: *text}}
	if err := sink.Deliver(ctx, ev); err != nil {
		fmt.Fprintln(stderr, "egov-bridge: not sent:", err)
		return 1
	}
	recs, err := z.store.ZaloSends(ctx, z.sink, id, 0)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	for _, r := range recs {
		out := map[string]any{"route": r.Route, "part": r.Part + 1, "parts": r.Parts, "dry_run": r.DryRun}
		for k, v := range map[string]string{"message_id": r.MessageID, "quota_type": r.QuotaType, "reason": r.Reason} {
			if v != "" {
				out[k] = v
			}
		}
		if r.Request != "" {
			out["request"] = json.RawMessage(r.Request)
		}
		b, _ := json.Marshal(out)
		fmt.Fprintln(stdout, string(b))
	}
	if !z.audit(ctx, "zalo send", fmt.Sprintf("test message to %s, dry run %v", transform.MaskPhone(*phone), opts.DryRun), stderr) {
		return 1
	}
	return 0
}
