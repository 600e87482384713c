package zalo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

func init() {
	pipeline.AddSink("zalo", "sends citizen notices through a Zalo Official Account: OA message to a follower, else ZNS by phone", NewOptions,
		func(_ context.Context, env pipeline.Env, o *Options) (pipeline.Sink, error) { return New(env, *o) })
}

// State is the part of the daemon's state store the sink needs; env.State must
// implement it (store.Store does).
type State interface {
	TokenStore
	ZaloFollowerByPhone(ctx context.Context, oaID, phone string) (store.ZaloFollower, error)
	RecordZaloSend(ctx context.Context, r store.ZaloSend) error
	ZaloSends(ctx context.Context, sink, eventID string, limit int) ([]store.ZaloSend, error)
}

// DryRunOA is the OA id used in records when a dry-run sink names none.
const DryRunOA = "dry-run"

// Sink delivers rule events' messages to citizens through Zalo.
type Sink struct {
	name    string
	o       Options
	st      State
	api     *api
	tokens  *tokens
	clock   pipeline.Clock
	zone    *time.Location // months for accounting
	quiet   quiet
	log     *slog.Logger
	metrics *metrics
	// cit is the citizens' side (webhook, commands, subscriptions, feedback); nil
	// without a citizens block.
	cit   *citizens
	route func(*pipeline.Event) []string // the config's routes, for feedback events
	wake  func()                         // the dispatcher, after queueing answers
	// officials are the config's agency officials, for notices addressed to
	// them; nil when the config lists none.
	officials func(agency, rule string) []pipeline.Official
}

var _ pipeline.Sink = (*Sink)(nil)

// New builds a sink; it checks the options and needs env.State, but contacts
// neither Zalo nor the store: the first notice does.
func New(env pipeline.Env, o Options) (*Sink, error) {
	if err := pipeline.Invalid(&o); err != nil {
		return nil, pipeline.Permanentf("zalo sink %q: invalid options: %v", env.Name, err)
	}
	st, ok := env.State.(State)
	if !ok || env.State == nil {
		return nil, fmt.Errorf("zalo sink %q: needs the daemon's state store (tokens, followers, send records)", env.Name)
	}
	if o.OAID == "" {
		o.OAID = DryRunOA
	}
	if o.RefusedRetry <= 0 {
		o.RefusedRetry = config.Duration(DefaultRefusedRetry)
	}
	start, end, qzone, _ := o.QuietHours.parse() // valid: checked above
	s := &Sink{
		name: env.Name, o: o, st: st, api: newAPI(o), clock: env.Clock, zone: env.Zone,
		quiet: quiet{start: start, end: end, zone: qzone}, log: env.Logger,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.zone == nil {
		s.zone = qzone
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.tokens = &tokens{st: st, api: s.api, oaID: o.OAID, seed: o.RefreshToken, clock: s.clock,
		ahead: o.RefreshAhead.D(), wait: o.RefusedRetry.D(), log: s.log}
	s.metrics = newMetrics(env.Name, s.tokens)
	s.route, s.wake, s.officials = env.Route, env.Wake, env.Officials
	if s.wake == nil {
		s.wake = func() {}
	}
	if o.Citizens != nil {
		c, err := newCitizens(env, *o.Citizens, s.zone)
		if err != nil {
			return nil, err
		}
		s.cit = c
	}
	return s, nil
}

// Refreshes is how many token refreshes this sink made (for tests and metrics).
func (s *Sink) Refreshes() int64 { return s.tokens.refreshes.Load() }

// notice is one event being routed.
type notice struct {
	ev    *pipeline.Event
	rule  RuleOptions
	now   time.Time
	phone string // 84xxxxxxxxx, "" when none or invalid
	// noPhone says why phone is "": "no_phone" or "invalid_phone".
	noPhone string
	prior   []store.ZaloSend
}

// sentOA is which parts of the notice an earlier delivery already sent as OA
// messages: a redelivery sends only the rest.
func (n *notice) sentOA() map[int]bool {
	done := map[int]bool{}
	for _, r := range n.prior {
		if r.Route == store.ZaloRouteOA {
			done[r.Part] = true
		}
	}
	return done
}

// Deliver routes one notice: an OA message to the follower linked to the phone,
// else a ZNS by phone, else it is recorded as undeliverable with the reason (not an
// error). A notice already handled (a redelivery) is not sent again.
func (s *Sink) Deliver(ctx context.Context, ev *pipeline.Event) error {
	if ev == nil || ev.ID == "" {
		return pipeline.Permanentf("zalo sink %q: event has no id", s.name)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("zalo sink %q: %w", s.name, err)
	}
	prior, err := s.st.ZaloSends(ctx, s.name, ev.ID, 0)
	if err != nil {
		return fmt.Errorf("zalo sink %q: %w", s.name, err)
	}
	if handled(prior) {
		return nil
	}
	n := &notice{ev: ev, rule: s.ruleOf(ev.Rule), now: s.clock(), prior: prior}
	if ev.Message == nil {
		return s.unsent(ctx, n, store.ZaloRouteUndeliverable, "no_message",
			"the event carries no rendered message: route only rule events with notify to a zalo sink")
	}
	if age := n.rule.MaxAge.D(); age > 0 && n.now.Sub(ev.DetectedAt) > age {
		return s.unsent(ctx, n, store.ZaloRouteStale, "stale",
			fmt.Sprintf("detected %s ago, over the rule's max_age %s", n.now.Sub(ev.DetectedAt).Round(time.Minute), age))
	}
	if ev.Message.Officials {
		return s.deliverOfficials(ctx, n)
	}
	if s.cit != nil {
		if done, err := s.deliverCitizens(ctx, n); done {
			return err
		}
	}
	return s.routes(ctx, n)
}

// routes tries the rule's routes in order for the notice's addressee.
func (s *Sink) routes(ctx context.Context, n *notice) error {
	n.phone, n.noPhone = phoneOf(n.ev.Message.Phone)
	var left []string
	for _, route := range n.rule.Routes {
		var why string
		var err error
		switch route {
		case RouteOA:
			why, err = s.viaOA(ctx, n)
		case RouteZNS:
			why, err = s.viaZNS(ctx, n)
		}
		if err != nil {
			return err
		}
		if why == "" {
			return nil
		}
		left = append(left, route+": "+why)
	}
	return s.unsent(ctx, n, store.ZaloRouteUndeliverable, undeliverable(left), strings.Join(left, "; "))
}

// handled reports whether earlier attempts finished the notice.
func handled(prior []store.ZaloSend) bool {
	oa := 0
	for _, r := range prior {
		switch r.Route {
		case store.ZaloRouteOA:
			oa++
			if oa >= r.Parts {
				return true
			}
		default:
			return true
		}
	}
	return false
}

func (s *Sink) ruleOf(name string) RuleOptions {
	r := s.o.Rules[name]
	if r.Routes == nil {
		r.Routes = s.o.Routes
	}
	return r
}

// phoneOf normalises a notice's phone to 84xxxxxxxxx.
func phoneOf(raw string) (phone, why string) {
	if strings.TrimSpace(raw) == "" {
		return "", "no_phone"
	}
	p, err := transform.PhoneVN(raw)
	if err != nil {
		return "", "invalid_phone"
	}
	return p, ""
}

// undeliverable names, as one metric label, why no route took a notice.
func undeliverable(left []string) string {
	all := func(pred func(string) bool) bool {
		for _, l := range left {
			if !pred(l) {
				return false
			}
		}
		return len(left) > 0
	}
	has := func(s string) bool {
		for _, l := range left {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	}
	switch {
	case all(func(l string) bool { return strings.HasSuffix(l, ": no_phone") }):
		return "no_phone"
	case all(func(l string) bool { return strings.HasSuffix(l, ": invalid_phone") }):
		return "invalid_phone"
	case has("opted_out"):
		return "opted_out"
	case has("recipient"):
		return "recipient_refused"
	case has("no_recent_interaction"):
		return "no_recent_interaction"
	case has("not_follower") || has("no_template"):
		return "not_follower_no_template"
	}
	return "no_route"
}

// viaOA sends the notice to the follower; "" when sent, else why the route was
// left. The event's user_id is used as is; else the follower linked to the phone.
func (s *Sink) viaOA(ctx context.Context, n *notice) (string, error) {
	msg := n.ev.Message
	userID := msg.UserID
	if userID == "" {
		if n.phone == "" {
			return n.noPhone, nil
		}
		f, err := s.st.ZaloFollowerByPhone(ctx, s.o.OAID, n.phone)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return "not_follower", nil
		case err != nil:
			return "", fmt.Errorf("zalo sink %q: %w", s.name, err)
		case !f.Followed:
			return "opted_out", nil
		case s.silent(f, n):
			return "no_recent_interaction", nil
		}
		userID = f.UserID
	} else if s.cit != nil {
		f, err := s.cit.st.ZaloFollower(ctx, s.o.OAID, userID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("zalo sink %q: %w", s.name, err)
		}
		if err == nil && s.silent(f, n) {
			return "no_recent_interaction", nil
		}
	}
	path, bodies := s.oaBodies(n, userID)
	if len(bodies) == 0 {
		return "empty_text", nil
	}
	done := n.sentOA()
	for i, body := range bodies {
		if done[i] {
			continue
		}
		res, err := s.send(ctx, s.o.OAURL, path, body)
		if why, ok := recipientError(err); ok {
			return why, nil
		}
		if err != nil {
			return "", s.failure(n, err)
		}
		if err := s.record(ctx, n, store.ZaloRouteOA, i, len(bodies), res, body); err != nil {
			return "", err
		}
	}
	return "", nil
}

// oaBodies builds the OA request(s): one transaction message when the rule has a
// layout and the text fits, else text messages split at sentence boundaries.
func (s *Sink) oaBodies(n *notice, userID string) (string, []any) {
	text := strings.TrimSpace(n.ev.Message.Text)
	recipient := map[string]string{"user_id": userID}
	if t := n.rule.Transaction; t != nil && text != "" && len([]rune(text)) <= MaxText {
		elements := []map[string]any{{"type": "header", "content": t.Header, "align": "left"}}
		elements = append(elements, map[string]any{"type": "text", "content": text, "align": "left"})
		if len(t.Table) > 0 {
			rows := make([]map[string]string, 0, len(t.Table))
			for _, r := range t.Table {
				rows = append(rows, map[string]string{"key": r.Key, "value": fieldText(n.ev, r.Field, s.zone)})
			}
			elements = append(elements, map[string]any{"type": "table", "content": rows})
		}
		typ, lang := t.TemplateType, t.Language
		if typ == "" {
			typ = "transaction_order"
		}
		if lang == "" {
			lang = "VI"
		}
		payload := map[string]any{"template_type": typ, "language": lang, "elements": elements}
		return pathTransaction, []any{map[string]any{"recipient": recipient,
			"message": map[string]any{"attachment": map[string]any{"type": "template", "payload": payload}}}}
	}
	parts := splitText(text, MaxText)
	bodies := make([]any, len(parts))
	for i, p := range parts {
		bodies[i] = map[string]any{"recipient": recipient, "message": map[string]string{"text": p}}
	}
	return pathText, bodies
}

// viaZNS sends the rule's ZNS template to the phone; "" when sent, else why the
// route was left. In quiet hours the notice waits for the window's end.
func (s *Sink) viaZNS(ctx context.Context, n *notice) (string, error) {
	if n.rule.ZNSTemplateID == "" {
		return "no_template", nil
	}
	if n.phone == "" {
		return n.noPhone, nil
	}
	if end, in := s.quiet.until(n.now); in {
		return "", s.deferred(end.Sub(n.now), end)
	}
	data := map[string]string{}
	for param, field := range n.rule.TemplateData {
		data[param] = fieldText(n.ev, field, s.zone)
	}
	body := map[string]any{"phone": n.phone, "template_id": n.rule.ZNSTemplateID, "template_data": data,
		"tracking_id": trackingID(n.ev.ID)}
	res, err := s.send(ctx, s.o.ZNSURL, pathZNS, body)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == CodeNight { // Zalo's clock says night even if ours does not
		end, in := s.quiet.until(n.now)
		if !in {
			end = n.now.Add(time.Hour)
		}
		return "", s.deferred(end.Sub(n.now), end)
	}
	if why, ok := recipientError(err); ok {
		return why, nil
	}
	if err != nil {
		return "", s.failure(n, err)
	}
	return "", s.record(ctx, n, store.ZaloRouteZNS, 0, 1, res, body)
}

// deferredError is a ZNS notice waiting for the quiet hours to end: transient,
// with the wait, so the dispatcher tries again then and other records go on.
type deferredError struct {
	wait time.Duration
	end  time.Time
}

func (e *deferredError) Error() string {
	return fmt.Sprintf("ZNS waits for the end of quiet hours at %s", e.end.Format("15:04 02/01/2006"))
}

func (e *deferredError) RetryAfter() time.Duration { return e.wait }

func (s *Sink) deferred(wait time.Duration, end time.Time) error {
	s.metrics.deferred.Inc()
	return &deferredError{wait: wait, end: end}
}

// trackingID is the event id, cut to what Zalo takes (event ids are 32 characters).
func trackingID(id string) string {
	if len(id) > MaxTrackingID {
		return id[:MaxTrackingID]
	}
	return id
}

// fieldText reads a record field for a template: $text, $key, $agency, or a field
// of the record after the change; "" when absent. Times read as a citizen reads a
// date (02/01/2006 in the province's zone, with the hour when it is not midnight).
func fieldText(ev *pipeline.Event, field string, zone *time.Location) string {
	switch field {
	case "$text":
		if ev.Message != nil {
			return ev.Message.Text
		}
		return ""
	case "$key":
		return ev.Key
	case "$agency":
		return ev.Agency
	}
	v, ok := ev.After[field]
	if !ok || v == nil {
		return ""
	}
	t, isTime := v.(time.Time)
	if s, isText := v.(string); isText {
		parsed, err := time.Parse(time.RFC3339Nano, s)
		t, isTime = parsed, err == nil
	}
	if isTime {
		t = t.In(zone)
		if t.Hour() == 0 && t.Minute() == 0 {
			return t.Format("02/01/2006")
		}
		return t.Format("15:04 02/01/2006")
	}
	return fmt.Sprint(v)
}

// recipientError reports whether err says this route cannot reach the citizen,
// and names it for the record.
func recipientError(err error) (string, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.Class == ClassRecipient {
		return fmt.Sprintf("recipient (zalo error %d)", ae.Code), true
	}
	return "", false
}

// send calls Zalo with a usable token, refreshing once and retrying once when
// Zalo rejects the token. In dry run it calls nothing.
func (s *Sink) send(ctx context.Context, base, path string, body any) (sendResult, error) {
	if s.o.DryRun {
		return sendResult{}, nil
	}
	t, err := s.tokens.access(ctx)
	if err != nil {
		return sendResult{}, err
	}
	res, err := s.api.send(ctx, base, path, t.AccessToken, body)
	s.metrics.apiError(err)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Class != ClassToken {
		return res, err
	}
	if t, err = s.tokens.rejected(ctx, t.AccessToken); err != nil {
		return sendResult{}, err
	}
	res, err = s.api.send(ctx, base, path, t.AccessToken, body)
	s.metrics.apiError(err)
	return res, err
}

// failure classifies an error that is not a recipient's: bad input is
// permanent, a rate or quota code waits, anything else is transient.
func (s *Sink) failure(n *notice, err error) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("zalo sink %q: %w", s.name, err)
	}
	err = pipeline.WithDetail(fmt.Errorf("zalo sink %q: %w", s.name, err), ae.Message)
	switch ae.Class {
	case ClassBadInput:
		return pipeline.Permanent(err)
	case ClassRate:
		return pipeline.RetryAfter(err, rateWait(ae.Code))
	case ClassToken:
		return fmt.Errorf("zalo rejected a freshly refreshed access token: %w", err)
	default:
		s.log.Warn("unknown Zalo error code; the notice will be retried", "code", ae.Code, "path", ae.Path, "event", n.ev.ID)
		return err
	}
}

// record stores one message sent (or, in dry run, the request it would have been)
// and counts it. It runs to the end even if the delivery's context ends: the
// message has gone.
func (s *Sink) record(ctx context.Context, n *notice, route string, part, parts int, res sendResult, body any) error {
	r := s.sendRecord(n, route)
	r.Part, r.Parts, r.MessageID, r.QuotaType = part, parts, res.MessageID, res.QuotaType
	if s.o.DryRun {
		b, _ := json.Marshal(body) // maps of strings: cannot fail
		r.Request = string(b)
		s.log.Info("zalo notice routed (dry run: not sent)", "event", n.ev.ID, "rule", n.ev.Rule, "route", route,
			"part", part+1, "parts", parts, "phone", transform.MaskPhone(n.phone))
	}
	if err := s.st.RecordZaloSend(context.WithoutCancel(ctx), r); err != nil {
		return fmt.Errorf("zalo sink %q: sent, but: %w", s.name, err)
	}
	s.metrics.message(route, res.QuotaType)
	if part == parts-1 {
		s.metrics.notice(route, n.ev.Agency, parts, s.o.Prices)
	}
	return nil
}

// unsent records a notice that no route took (or that was stale); not an error.
func (s *Sink) unsent(ctx context.Context, n *notice, route, label, detail string) error {
	r := s.sendRecord(n, route)
	r.Parts, r.Reason = 1, label+": "+detail
	if err := s.st.RecordZaloSend(ctx, r); err != nil {
		return fmt.Errorf("zalo sink %q: %w", s.name, err)
	}
	s.metrics.unsent(route, n.ev.Agency, label)
	s.log.Info("zalo notice not sent", "event", n.ev.ID, "rule", n.ev.Rule, "outcome", route, "reason", label)
	return nil
}

func (s *Sink) sendRecord(n *notice, route string) store.ZaloSend {
	return store.ZaloSend{Sink: s.name, EventID: n.ev.ID, OAID: s.o.OAID, Route: route, Agency: n.ev.Agency,
		Rule: n.ev.Rule, Month: n.now.In(s.zone).Format("2006-01"), DryRun: s.o.DryRun, At: n.now}
}

// Close stops the citizens' worker and releases idle connections.
func (s *Sink) Close() error {
	s.stopWorker()
	s.api.client.GetClient().CloseIdleConnections()
	return nil
}

// InteractionWindow is how long after a citizen's last message Zalo still takes
// an OA text message to them (error -230 after it).
const InteractionWindow = 7 * 24 * time.Hour

// silent reports whether the follower's last known interaction is too old for an
// OA text message, so the notice goes straight to the next route instead of
// spending a call on Zalo's refusal. An unknown interaction time is tried.
func (s *Sink) silent(f store.ZaloFollower, n *notice) bool {
	return n.rule.Transaction == nil && !f.InteractionAt.IsZero() && n.now.Sub(f.InteractionAt) > InteractionWindow
}
