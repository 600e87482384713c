package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/egov-bridge/egov-bridge/pipeline/announce"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// newAnnouncements builds the announcement service of a daemon: the config's
// regulation, and every sink that can carry announcements (zalo) as a channel.
// nil without a regulation.
func newAnnouncements(cfg *engine.Config, d *engine.Daemon, log *slog.Logger) (*announce.Service, error) {
	if cfg.Announcements.Rules == nil {
		return nil, nil
	}
	channels := map[string]announce.Channel{}
	for name, s := range d.Sinks {
		if ch, ok := s.(announce.Channel); ok {
			channels[name] = ch
		}
	}
	st, ok := d.Store.(announce.Store)
	if !ok {
		return nil, fmt.Errorf("announcements: the store %T lacks the announcement tables", d.Store)
	}
	clock := d.Clock
	if clock == nil {
		clock = time.Now
	}
	return announce.New(announce.Options{Regulation: cfg.Announcements.Rules, Store: st, Agencies: cfg.Agencies,
		Channels: channels, Residence: cfg.Announcements.Residence, Clock: clock, Zone: cfg.Zone, Logger: log.With("component", "announcements")})
}

// withAnnouncements opens the config's daemon (store and sinks, nothing started)
// and its announcement service for one command.
func withAnnouncements(ctx context.Context, cfgFlag string, stderr io.Writer, f func(cfg *engine.Config, svc *announce.Service) int) int {
	_, cfg, ok := loadFlagConfig(cfgFlag, stderr)
	if !ok {
		return 1
	}
	if cfg.Announcements.Rules == nil {
		fmt.Fprintln(stderr, "egov-bridge: the config names no announcement regulation (announcements: { regulation: FILE })")
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := engine.New(ctx, cfg, engine.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	defer d.Close()
	svc, err := newAnnouncements(cfg, d, log)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return 1
	}
	return f(cfg, svc)
}

// announceFail prints a refusal or an error.
func announceFail(stderr io.Writer, err error) int {
	if announce.IsRefused(err) {
		fmt.Fprintln(stderr, "egov-bridge: refused:", err)
	} else {
		fmt.Fprintln(stderr, "egov-bridge:", err)
	}
	return 1
}

func (a *app) announceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "announce",
		Short: "proactive announcements under the channel regulation: draft, approve, send, report",
		Long: `Proactive announcements to citizens on Zalo under the province's channel regulation
(the config's announcements.regulation). You act as your OS user name, which the
regulation must list as an author, approver or sender of the agency.`,
		Args: cobra.NoArgs,
	}
	cfgFlag := configFlag(cmd, true)
	run := func(body func(cfg *engine.Config, svc *announce.Service, args []string) int) func(*cobra.Command, []string) error {
		return action(func(args []string) int {
			return withAnnouncements(a.ctx, *cfgFlag, a.stderr, func(cfg *engine.Config, svc *announce.Service) int {
				return body(cfg, svc, args)
			})
		})
	}
	idArg := func(args []string) (int64, bool) {
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || id <= 0 {
			fmt.Fprintf(a.stderr, "egov-bridge: %q is not an announcement number\n", args[0])
			return 0, false
		}
		return id, true
	}

	draftFlags := func(c *cobra.Command) func(cfg *engine.Config) (announce.Draft, error) {
		fs := c.Flags()
		agency := fs.String("agency", "", "the announcing agency's code")
		title := fs.String("title", "", "title (at most 100 characters)")
		text := fs.String("text", "", "text (at most 2,000 characters)")
		textFile := fs.String("text-file", "", "read the text from this file")
		tmpl := fs.String("template", "", "an approved template of the regulation, instead of a text")
		data := fs.StringArray("data", nil, "a template value, NAME=VALUE (repeatable)")
		link := fs.String("link", "", "an https:// link shown as a button")
		image := fs.String("image", "", "an https:// image shown as a banner")
		kind := fs.String("segment", "", "all, area, topic or dossiers")
		placesF := fs.StringArray("place", nil, "a commune or ward, current or former name (area, topic; repeatable)")
		topic := fs.String("topic", "", "the subscription topic (topic)")
		of := fs.String("of", "", "whose open dossiers (dossiers; default the announcing agency)")
		at := fs.String("at", "", "when to send: 2026-12-02 09:00 (province time), RFC 3339, or now")
		return func(cfg *engine.Config) (announce.Draft, error) {
			d := announce.Draft{Agency: *agency, Title: *title,
				Content: announce.Content{Text: *text, Template: *tmpl, Link: *link, Image: *image},
				Segment: announce.Segment{Kind: *kind, Places: *placesF, Topic: *topic, Agency: *of}}
			if *textFile != "" {
				b, err := os.ReadFile(*textFile)
				if err != nil {
					return d, err
				}
				d.Content.Text = string(b)
			}
			for _, kv := range *data {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return d, fmt.Errorf("--data %q: want NAME=VALUE", kv)
				}
				if d.Content.Data == nil {
					d.Content.Data = map[string]string{}
				}
				d.Content.Data[k] = v
			}
			t, err := parseSendAt(*at, cfg.Zone)
			if err != nil {
				return d, err
			}
			d.SendAt = t
			return d, nil
		}
	}

	draft := &cobra.Command{Use: "draft -c FILE --agency A --title T (--text T | --template NAME) --segment KIND … --at TIME", Short: "write a new announcement (as its author)", Args: cobra.NoArgs}
	readDraft := draftFlags(draft)
	draft.RunE = run(func(cfg *engine.Config, svc *announce.Service, _ []string) int {
		d, err := readDraft(cfg)
		if err != nil {
			fmt.Fprintln(a.stderr, "egov-bridge:", err)
			return 1
		}
		id, err := svc.Create(a.ctx, actor(), d)
		if err != nil {
			return announceFail(a.stderr, err)
		}
		fmt.Fprintf(a.stdout, "announcement %d drafted; preview it with 'egov-bridge announce preview %d', then submit it\n", id, id)
		return 0
	})

	edit := &cobra.Command{Use: "edit -c FILE ID (draft flags)", Short: "rewrite a draft or a rejected announcement", Args: cobra.ExactArgs(1)}
	readEdit := draftFlags(edit)
	edit.RunE = run(func(cfg *engine.Config, svc *announce.Service, args []string) int {
		id, ok := idArg(args)
		if !ok {
			return 1
		}
		d, err := readEdit(cfg)
		if err != nil {
			fmt.Fprintln(a.stderr, "egov-bridge:", err)
			return 1
		}
		if err := svc.Edit(a.ctx, actor(), id, d); err != nil {
			return announceFail(a.stderr, err)
		}
		fmt.Fprintf(a.stdout, "announcement %d rewritten (a draft again)\n", id)
		return 0
	})

	preview := &cobra.Command{Use: "preview -c FILE ID [--json]", Short: "show the message as citizens will see it, and its recipients by route, quota and cost", Args: cobra.ExactArgs(1)}
	asJSON := preview.Flags().Bool("json", false, "print JSON")
	preview.RunE = run(func(cfg *engine.Config, svc *announce.Service, args []string) int {
		id, ok := idArg(args)
		if !ok {
			return 1
		}
		p, err := svc.PreviewStored(a.ctx, id)
		if err != nil {
			return announceFail(a.stderr, err)
		}
		if *asJSON {
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(p)
			return 0
		}
		printPreview(a.stdout, p)
		return 0
	})

	step := func(use, short string, withReason bool, do func(svc *announce.Service, id int64, reason string) error, done string) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1)}
		var reason *string
		if withReason {
			reason = c.Flags().String("reason", "", "why")
		}
		c.RunE = run(func(cfg *engine.Config, svc *announce.Service, args []string) int {
			id, ok := idArg(args)
			if !ok {
				return 1
			}
			r := ""
			if reason != nil {
				r = *reason
			}
			if err := do(svc, id, r); err != nil {
				return announceFail(a.stderr, err)
			}
			fmt.Fprintf(a.stdout, "announcement %d %s\n", id, done)
			return 0
		})
		return c
	}
	who := actor
	submit := step("submit -c FILE ID", "send a draft to the agency's approvers (as its author)", false,
		func(svc *announce.Service, id int64, _ string) error { return svc.Submit(a.ctx, who(), id) }, "submitted for approval")
	approve := step("approve -c FILE ID", "approve a submitted announcement (as an approver who did not write it)", false,
		func(svc *announce.Service, id int64, _ string) error { return svc.Approve(a.ctx, who(), id) }, "approved")
	reject := step("reject -c FILE ID --reason R", "return a submitted announcement to its author", true,
		func(svc *announce.Service, id int64, r string) error { return svc.Reject(a.ctx, who(), id, r) }, "rejected")
	schedule := step("schedule -c FILE ID", "hand an approved announcement to the daemon to send at its time (as a sender)", false,
		func(svc *announce.Service, id int64, _ string) error { return svc.Schedule(a.ctx, who(), id) }, "scheduled")
	cancel := step("cancel -c FILE ID [--reason R]", "stop an announcement, also while it is being sent", true,
		func(svc *announce.Service, id int64, r string) error { return svc.Cancel(a.ctx, who(), id, r) }, "cancelled")

	list := &cobra.Command{Use: "list -c FILE [--state S]", Short: "announcements, newest first", Args: cobra.NoArgs}
	state := list.Flags().String("state", "", "only this state (draft, submitted, approved, rejected, scheduled, sending, sent, cancelled)")
	list.RunE = run(func(cfg *engine.Config, svc *announce.Service, _ []string) int {
		var states []string
		if *state != "" {
			states = []string{*state}
		}
		all, err := svc.List(a.ctx, nil, states, 100)
		if err != nil {
			return announceFail(a.stderr, err)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAGENCY\tSTATE\tSEND AT\tAUTHOR\tAPPROVER\tRECIPIENTS\tSENT\tFAILED\tNOT REACHABLE\tOPTED OUT\tCOST\tTITLE")
		for _, x := range all {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", x.ID, x.Agency, x.State,
				x.SendAt.In(cfg.Zone).Format("02/01/2006 15:04"), x.Author, x.Approver, x.Recipients, x.Sent, x.Failed,
				x.Unreachable, x.OptedOut, x.Cost, x.Title)
		}
		_ = tw.Flush()
		return 0
	})

	queue := &cobra.Command{Use: "queue -c FILE", Short: "announcements waiting for your approval", Args: cobra.NoArgs}
	queue.RunE = run(func(cfg *engine.Config, svc *announce.Service, _ []string) int {
		q, err := svc.Queue(a.ctx, who())
		if err != nil {
			return announceFail(a.stderr, err)
		}
		for _, x := range q {
			fmt.Fprintf(a.stdout, "%d\t%s\t%s\tby %s\t%s\n", x.ID, x.Agency, x.SendAt.In(cfg.Zone).Format("02/01/2006 15:04"), x.Author, x.Title)
		}
		if len(q) == 0 {
			fmt.Fprintln(a.stdout, "nothing waits for your approval")
		}
		return 0
	})

	report := &cobra.Command{Use: "report -c FILE", Short: "reach, failures and cost per agency", Args: cobra.NoArgs}
	report.RunE = run(func(cfg *engine.Config, svc *announce.Service, _ []string) int {
		rep, err := svc.Report(a.ctx, nil)
		if err != nil {
			return announceFail(a.stderr, err)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "AGENCY\tANNOUNCEMENTS\tWAITING APPROVAL\tRECIPIENTS\tSENT\tFAILED\tNOT REACHABLE\tOPTED OUT\tPAID\tCOST (đ)")
		for _, r := range rep {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", r.Agency, r.Announcements, r.Waiting, r.Recipients, r.Sent, r.Failed, r.Unreachable, r.OptedOut, r.Paid, r.Cost)
		}
		_ = tw.Flush()
		return 0
	})

	show := &cobra.Command{Use: "show -c FILE ID", Short: "one announcement and how its recipients fared (phones masked)", Args: cobra.ExactArgs(1)}
	show.RunE = run(func(cfg *engine.Config, svc *announce.Service, args []string) int {
		id, ok := idArg(args)
		if !ok {
			return 1
		}
		x, d, err := svc.Get(a.ctx, id)
		if err != nil {
			return announceFail(a.stderr, err)
		}
		fmt.Fprintf(a.stdout, "announcement %d (%s), %s\nagency %s, OA %s, send at %s\nauthor %s, approver %s, sender %s\n",
			x.ID, x.Title, x.State, x.Agency, x.OA, x.SendAt.In(cfg.Zone).Format("02/01/2006 15:04"), x.Author, x.Approver, x.Sender)
		if x.Reason != "" {
			fmt.Fprintf(a.stdout, "reason: %s\n", x.Reason)
		}
		seg, _ := json.Marshal(d.Segment)
		fmt.Fprintf(a.stdout, "segment %s\nrecipients %d: sent %d, failed %d, not reachable %d, opted out %d, cancelled %d; cost %d đồng\n",
			seg, x.Recipients, x.Sent, x.Failed, x.Unreachable, x.OptedOut, x.Cancelled, x.Cost)
		return 0
	})

	cmd.AddCommand(draft, edit, preview, submit, approve, reject, schedule, cancel, list, queue, report, show)
	return cmd
}

func printPreview(w io.Writer, p announce.Preview) {
	fmt.Fprintln(w, "What citizens will see:")
	fmt.Fprintln(w, "----")
	fmt.Fprintln(w, p.Text)
	fmt.Fprintln(w, "----")
	if p.ZNSTemplate != "" {
		fmt.Fprintf(w, "Citizens who do not follow the OA: ZNS template %s\n", p.ZNSTemplate)
	}
	fmt.Fprintf(w, "Recipients: %d\n", p.Recipients)
	fmt.Fprintf(w, "  OA, free quota:   %d (free left this month: %d)\n", p.OAFree, p.FreeLeft)
	fmt.Fprintf(w, "  OA, paid:         %d\n", p.OAPaid)
	fmt.Fprintf(w, "  ZNS by phone:     %d (paid)\n", p.ZNS)
	fmt.Fprintf(w, "  not reachable:    %d\n", p.Unreachable)
	fmt.Fprintf(w, "  opted out:        %d (HUY TIN)\n", p.OptedOut)
	fmt.Fprintf(w, "Cost: %d đồng\n", p.Cost)
	fmt.Fprintf(w, "Caps: day %d of %d taken, month %d of %d taken\n", p.DailyUsed, p.DailyCap, p.MonthUsed, p.MonthlyCap)
	for _, pr := range p.Problems {
		fmt.Fprintln(w, "Cannot be approved now:", pr)
	}
}

// parseSendAt reads a send time.
func parseSendAt(s string, zone *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return time.Time{}, fmt.Errorf("--at: give the send time (2026-12-02 09:00, RFC 3339 or now)")
	case "now":
		return time.Now().UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "02/01/2006 15:04"} {
		if t, err := time.ParseInLocation(layout, s, zone); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--at: %q is not a time (2026-12-02 09:00, RFC 3339 or now)", s)
}
