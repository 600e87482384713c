package zalo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/places"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Worker settings.
const (
	inboxPoll     = 2 * time.Second // also picks up what another replica left
	inboxBatch    = 100
	inboxAttempts = 5 // a failing event is given up (and kept, with its error) after this many attempts
)

// InboxLockName is the store-wide lock held while the OA's webhook events are
// handled: one worker at a time across replicas, so events are handled in order.
func InboxLockName(oaID string) string { return "zalo/inbox/" + oaID }

// StartWorker starts handling the webhook's events in the background (Mount does;
// a test may call it alone). Close stops it.
func (s *Sink) StartWorker() {
	if s.cit == nil {
		return
	}
	s.cit.start.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.cit.cancel = cancel
		go func() {
			defer close(s.cit.done)
			for {
				if err := s.HandleInbox(ctx); err != nil && ctx.Err() == nil {
					s.log.Error("zalo: handling citizens' messages failed; trying again", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-s.cit.wake:
				case <-time.After(inboxPoll):
				}
			}
		}()
	})
}

// stopWorker ends the worker and waits for it.
func (s *Sink) stopWorker() {
	if s.cit == nil || s.cit.cancel == nil {
		return
	}
	s.cit.cancel()
	<-s.cit.done
}

// HandleInbox handles every waiting webhook event, oldest first, under the inbox
// lock (another replica holding it handles them instead).
func (s *Sink) HandleInbox(ctx context.Context) error {
	lock, ok, err := s.cit.st.TryLock(ctx, InboxLockName(s.o.OAID))
	if err != nil || !ok {
		return err
	}
	defer lock.Unlock()
	s.fillIndexes(ctx)
	for ctx.Err() == nil && lock.Held(ctx) {
		waiting, err := s.cit.st.WaitingZaloInbound(ctx, s.o.OAID, inboxBatch)
		if err != nil || len(waiting) == 0 {
			return err
		}
		for _, in := range waiting {
			herr := s.handle(ctx, in)
			msg, done := "", herr == nil
			if herr != nil {
				msg = herr.Error()
				done = in.Attempts+1 >= inboxAttempts
				s.log.Warn("zalo: a citizen's event could not be handled", "event", in.EventName, "attempt", in.Attempts+1, "err", herr)
			}
			if err := s.cit.st.FinishZaloInbound(context.WithoutCancel(ctx), in.ID, s.clock(), msg, done); err != nil {
				return err
			}
			s.wake()
			if !done {
				return herr // try again at the next round, in order
			}
		}
	}
	return ctx.Err()
}

// fillIndexes indexes the records synced before a look-up was configured, once.
func (s *Sink) fillIndexes(ctx context.Context) {
	type ix struct{ entity, name string }
	var want []ix
	for _, l := range s.cit.lookups {
		want = append(want, ix{l.Entity, l.index})
	}
	if s.cit.rating.index != "" {
		want = append(want, ix{s.cit.cfg.Rating.Entity, s.cit.rating.index})
	}
	for _, w := range want {
		s.cit.mu.Lock()
		done := s.cit.filled[w.entity+"/"+w.name]
		s.cit.mu.Unlock()
		if done {
			continue
		}
		if _, err := s.cit.st.FillLookupIndex(ctx, w.entity, w.name, s.clock()); err != nil {
			s.log.Error("zalo: cannot index synced records for look-ups; trying again later", "entity", w.entity, "index", w.name, "err", err)
			continue
		}
		s.cit.mu.Lock()
		s.cit.filled[w.entity+"/"+w.name] = true
		s.cit.mu.Unlock()
	}
}

// inbound is a webhook event being handled.
type inbound struct {
	store.ZaloInbound
	env envelope
	at  time.Time // when Zalo says it happened
}

// handle acts on one event.
func (s *Sink) handle(ctx context.Context, in store.ZaloInbound) error {
	ib := inbound{ZaloInbound: in}
	if err := json.Unmarshal(in.Payload, &ib.env); err != nil {
		return nil // checked when received: nothing else can be done with it
	}
	ib.at, _ = ib.env.at()
	user := ib.env.userID()
	if user == "" {
		return nil
	}
	st := s.cit.st
	switch name := ib.env.EventName; {
	case name == "follow":
		return st.SetZaloFollowing(ctx, s.o.OAID, user, true, ib.at)
	case name == "unfollow":
		return st.SetZaloFollowing(ctx, s.o.OAID, user, false, ib.at)
	case name == "user_submit_info":
		phone, err := transform.PhoneVN(ib.env.Info.Phone)
		if err != nil {
			s.log.Info("zalo: a citizen shared no usable phone number", "user", user)
			return st.TouchZaloFollower(ctx, s.o.OAID, user, ib.at)
		}
		return st.LinkZaloPhone(ctx, s.o.OAID, user, phone, ib.at)
	case name == "user_send_text":
		if err := st.TouchZaloFollower(ctx, s.o.OAID, user, ib.at); err != nil {
			return err
		}
		return s.command(ctx, ib, user)
	case strings.HasPrefix(name, "user_"): // any other message or action still counts as an interaction
		return st.TouchZaloFollower(ctx, s.o.OAID, user, ib.at)
	}
	return nil
}

// reply is one answer to a citizen's message.
type reply struct {
	text        string
	requestInfo bool // Zalo's request-user-info form instead of text
}

// command answers a text message and queues the answers in the outbox.
func (s *Sink) command(ctx context.Context, in inbound, user string) error {
	c := s.cit
	cmd, arg := c.match(in.env.Message.Text)
	var replies []reply
	var err error
	label := "unknown"
	if cmd == nil {
		replies = []reply{{text: c.cfg.Texts.Unknown + "\n" + c.help()}}
	} else {
		switch cmd.kind {
		case cmdLookup:
			label = "lookup_" + strings.ToLower(cmd.lookup.keyword)
			replies, err = s.lookupReply(ctx, cmd.lookup, arg, user)
		case cmdSubscribe, cmdUnsubscribe:
			label = map[cmdKind]string{cmdSubscribe: "subscribe", cmdUnsubscribe: "unsubscribe"}[cmd.kind]
			replies, err = s.subscription(ctx, cmd.kind == cmdSubscribe, arg, user, in.at)
		case cmdStop, cmdResume:
			label = map[cmdKind]string{cmdStop: "stop", cmdResume: "resume"}[cmd.kind]
			if err = c.st.StopZaloFollower(ctx, s.o.OAID, user, cmd.kind == cmdStop, in.at); err == nil {
				replies = []reply{{text: map[cmdKind]string{cmdStop: c.cfg.Texts.Stopped, cmdResume: c.cfg.Texts.Resumed}[cmd.kind]}}
			}
		case cmdHelp:
			label = "help"
			replies = []reply{{text: c.help()}}
		case cmdFeedback:
			label = "feedback"
			replies, err = s.feedback(ctx, in, arg, user)
		case cmdRating:
			label = "rating"
			replies, err = s.rate(ctx, arg, user, in.at)
		}
	}
	if err != nil {
		return err
	}
	s.metrics.commands.WithLabelValues(label).Inc()
	evs := make([]store.OutboxEvent, 0, len(replies))
	for i, r := range replies {
		evs = append(evs, store.OutboxEvent{Event: s.replyEvent(in.EventKey, i, user, in.env.Message.MsgID, r, in.at), Sinks: []string{s.name}})
	}
	return c.st.Enqueue(ctx, s.name, evs, s.clock())
}

// replyEvent is an answer queued for this sink: keyed by the citizen so one
// citizen's answers go out in order, with an id derived from what it answers so
// handling the message again queues nothing new.
func (s *Sink) replyEvent(origin string, n int, user, replyTo string, r reply, at time.Time) *pipeline.Event {
	kind := "text"
	if r.requestInfo {
		kind = "request_info"
	}
	id := pipeline.EventID(s.name, replyEntity, user, 0, replyRule, origin+"\x00"+strconv.Itoa(n))
	if at.IsZero() {
		at = s.clock()
	}
	return &pipeline.Event{ID: id, Type: "reply", Rule: replyRule, Source: s.name, Entity: replyEntity, Key: user,
		After:   map[string]any{"kind": kind, "reply_to": replyTo},
		Message: &pipeline.Message{Text: r.text, UserID: user}, DetectedAt: at.UTC()}
}

// linkedPhone is the phone the citizen shared with the OA, "" if none.
func (s *Sink) linkedPhone(ctx context.Context, user string) (string, error) {
	f, err := s.cit.st.ZaloFollower(ctx, s.o.OAID, user)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return f.Phone, err
}

// askPhone is the answer that asks for the phone number: the reason, then the form.
func (s *Sink) askPhone(reason string) []reply {
	return []reply{{text: reason}, {requestInfo: true}}
}

// lookupReply answers a look-up from the synced records.
func (s *Sink) lookupReply(ctx context.Context, l *lookup, arg, user string) ([]reply, error) {
	c := s.cit
	query := strings.TrimSpace(arg)
	if query == "" {
		return []reply{{text: l.Usage}}, nil
	}
	data := map[string]any{"query": query}
	var phone string
	if l.Owner != "" {
		var err error
		if phone, err = s.linkedPhone(ctx, user); err != nil {
			return nil, err
		}
		if phone == "" {
			return s.askPhone(c.cfg.Texts.NeedPhone), nil
		}
	}
	value := transform.Fold(query)
	values := []string{value}
	if len(l.Area) > 0 {
		found := c.places.Resolve(query)
		if len(found) == 0 {
			return []reply{{text: c.text("unknown_place", data)}}, nil
		}
		data["place"] = strings.Join(places.Names(found), ", ")
		values = places.IDs(found)
	}
	var hits []store.LookupHit
	seen := map[string]bool{}
	for _, v := range values {
		found, err := c.st.LookupRecords(ctx, l.Entity, l.index, v, 200)
		if err != nil {
			return nil, err
		}
		for _, h := range found {
			if id := h.Source + "\x00" + h.Key; !seen[id] {
				seen[id] = true
				hits = append(hits, h)
			}
		}
	}
	now := s.clock()
	var recs []map[string]any
	for _, h := range hits {
		f := h.Fields
		// The index is a way in, not the truth: the record itself must still match.
		if l.Field != "" && transform.Fold(textOf(f[l.Field])) != value {
			continue
		}
		if len(l.Area) > 0 && !anyIn(places.IDs(c.places.Find(areaText(f, l.Area))), values) {
			continue
		}
		if l.Owner != "" {
			if p, err := transform.PhoneVN(textOf(f[l.Owner])); err != nil || p != phone {
				continue
			}
		}
		if l.Unless != "" && f[l.Unless] == true {
			continue
		}
		if l.Upcoming != nil {
			start, ok1 := asTime(f[l.start])
			end, ok2 := asTime(f[l.end])
			if !ok1 || !ok2 || end.Before(now) || start.After(now.AddDate(0, 0, l.Upcoming.Days)) {
				continue
			}
		}
		recs = append(recs, f)
	}
	if l.Upcoming != nil {
		sort.SliceStable(recs, func(i, j int) bool {
			a, _ := asTime(recs[i][l.start])
			b, _ := asTime(recs[j][l.start])
			return a.Before(b)
		})
	}
	if len(recs) == 0 {
		if l.Owner != "" {
			// The same answer whether the record does not exist or is somebody else's.
			return s.askPhone(c.text("not_yours", data)), nil
		}
		if l.notFound != nil {
			return []reply{{text: render(l.notFound, data)}}, nil
		}
		return []reply{{text: fmt.Sprintf("Không tìm thấy kết quả cho %q.", query)}}, nil
	}
	var parts []string
	if l.header != nil {
		parts = append(parts, render(l.header, data))
	}
	for i, f := range recs {
		if i == l.Max {
			parts = append(parts, fmt.Sprintf("… và %d kết quả khác.", len(recs)-l.Max))
			break
		}
		parts = append(parts, render(l.reply, f))
	}
	return []reply{{text: strings.Join(parts, "\n")}}, nil
}

// subscription handles DK/HUY <topic> <place>.
func (s *Sink) subscription(ctx context.Context, on bool, arg, user string, at time.Time) ([]reply, error) {
	c := s.cit
	topicWord, placeText, _ := strings.Cut(strings.TrimSpace(arg), " ")
	t := c.topicOf(topicWord)
	placeText = strings.TrimSpace(placeText)
	if t == nil || placeText == "" {
		return []reply{{text: c.cfg.Texts.Unknown + "\n" + c.help()}}, nil
	}
	data := map[string]any{"query": placeText, "keyword": strings.ToUpper(t.Name), "topic": t.Label}
	if t.Label == "" {
		data["topic"] = strings.ToLower(t.Name)
	}
	found := c.places.Resolve(placeText)
	if len(found) == 0 {
		return []reply{{text: c.text("unknown_place", data)}}, nil
	}
	data["place"] = strings.Join(places.Names(found), ", ")
	changed := false
	for _, p := range found {
		var did bool
		var err error
		if on {
			did, err = c.st.Subscribe(ctx, store.ZaloSubscription{OAID: s.o.OAID, UserID: user, Topic: t.key, Place: p.ID, Label: p.Name, CreatedAt: at})
		} else {
			did, err = c.st.Unsubscribe(ctx, s.o.OAID, user, t.key, p.ID)
		}
		if err != nil {
			return nil, err
		}
		changed = changed || did
	}
	switch {
	case on:
		// Subscribing is asking for these notices: it lifts an earlier HUY TIN.
		if err := c.st.StopZaloFollower(ctx, s.o.OAID, user, false, at); err != nil {
			return nil, err
		}
		return []reply{{text: c.text("subscribed", data)}}, nil
	case changed:
		return []reply{{text: c.text("unsubscribed", data)}}, nil
	default:
		return []reply{{text: c.text("not_subscribed", data)}}, nil
	}
}

// rate handles DG <1-5> [mã hồ sơ]: the citizen's latest returned dossier, or the
// one named, among those of the linked phone.
func (s *Sink) rate(ctx context.Context, arg, user string, at time.Time) ([]reply, error) {
	c := s.cit
	r := c.cfg.Rating
	fields := strings.Fields(arg)
	if len(fields) == 0 {
		return []reply{{text: c.cfg.Texts.BadRating}}, nil
	}
	score, err := strconv.Atoi(fields[0])
	if err != nil || score < 1 || score > 5 {
		return []reply{{text: c.cfg.Texts.BadRating}}, nil
	}
	code := ""
	if len(fields) > 1 {
		code = transform.Fold(strings.Join(fields[1:], " "))
	}
	phone, err := s.linkedPhone(ctx, user)
	if err != nil {
		return nil, err
	}
	if phone == "" {
		return s.askPhone(c.cfg.Texts.NeedPhone), nil
	}
	hits, err := c.st.LookupRecords(ctx, r.Entity, c.rating.index, phone, 500)
	if err != nil {
		return nil, err
	}
	var best *store.LookupHit
	var bestAt time.Time
	for i := range hits {
		f := hits[i].Fields
		if p, err := transform.PhoneVN(textOf(f[r.Owner])); err != nil || p != phone {
			continue
		}
		if !contains(r.Returned, textOf(f[r.Status])) || (code != "" && transform.Fold(textOf(f[r.Code])) != code) {
			continue
		}
		fin, _ := asTime(f[r.Finished])
		if best == nil || fin.After(bestAt) {
			best, bestAt = &hits[i], fin
		}
	}
	if best == nil {
		return []reply{{text: c.cfg.Texts.NothingToRate}}, nil
	}
	agency := ""
	if r.AgencyField != "" {
		agency = textOf(best.Fields[r.AgencyField])
	}
	if err := c.st.Rate(ctx, store.Rating{Source: best.Source, Dossier: best.Key, OAID: s.o.OAID, UserID: user,
		Agency: agency, Score: score, RatedAt: at}); err != nil {
		return nil, err
	}
	return []reply{{text: c.text("rating", map[string]any{"code": textOf(best.Fields[r.Code]), "score": score})}}, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		if contains(want, h) {
			return true
		}
	}
	return false
}
