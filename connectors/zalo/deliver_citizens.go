package zalo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/places"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// deliverCitizens handles the events of the citizens' side: answers, topic
// notices to fan out, and the citizen's wish for no proactive message. done is
// false when the notice takes the ordinary routes.
func (s *Sink) deliverCitizens(ctx context.Context, n *notice) (done bool, err error) {
	ev := n.ev
	if ev.Entity == replyEntity && ev.Source == s.name {
		return true, s.deliverReply(ctx, n)
	}
	if ev.Entity != noticeEntity && ev.Rule != "" {
		if ts := s.cit.topicsFor(ev.Rule); len(ts) > 0 {
			return true, s.fanout(ctx, n, ts)
		}
	}
	stopped, err := s.stopped(ctx, ev.Message)
	if err != nil {
		return true, err
	}
	if stopped {
		return true, s.unsent(ctx, n, store.ZaloRouteUndeliverable, "stopped_by_citizen",
			"the citizen asked for no proactive message (HUY TIN)")
	}
	if ev.Entity == noticeEntity {
		// A subscription's notice is proactive: it waits for the end of quiet hours.
		if end, in := s.quiet.until(n.now); in {
			return true, s.deferred(end.Sub(n.now), end)
		}
	}
	return false, nil
}

// stopped reports whether the notice's citizen sent HUY TIN (by user id, or by
// the follower the phone is linked to).
func (s *Sink) stopped(ctx context.Context, msg *pipeline.Message) (bool, error) {
	var f store.ZaloFollower
	var err error
	switch {
	case msg.UserID != "":
		f, err = s.cit.st.ZaloFollower(ctx, s.o.OAID, msg.UserID)
	case msg.Phone != "":
		phone, _ := phoneOf(msg.Phone)
		if phone == "" {
			return false, nil
		}
		f, err = s.st.ZaloFollowerByPhone(ctx, s.o.OAID, phone)
	default:
		return false, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("zalo sink %q: %w", s.name, err)
	}
	return !f.StoppedAt.IsZero(), nil
}

// deliverReply sends an answer as a reply to the citizen's message (recipient
// message_id: Zalo's free reply allowance), or to the citizen when there is no
// message to reply to.
func (s *Sink) deliverReply(ctx context.Context, n *notice) error {
	ev := n.ev
	replyTo, _ := ev.After["reply_to"].(string)
	kind, _ := ev.After["kind"].(string)
	recipient := map[string]string{"user_id": ev.Message.UserID}
	if replyTo != "" {
		recipient = map[string]string{"message_id": replyTo}
	}
	var bodies []any
	if kind == "request_info" {
		ri := s.cit.cfg.RequestInfo
		el := map[string]string{"title": ri.Title, "subtitle": ri.Subtitle}
		if ri.ImageURL != "" {
			el["image_url"] = ri.ImageURL
		}
		bodies = []any{map[string]any{"recipient": recipient, "message": map[string]any{"attachment": map[string]any{
			"type": "template", "payload": map[string]any{"template_type": "request_user_info", "elements": []any{el}}}}}}
	} else {
		for _, p := range splitText(strings.TrimSpace(ev.Message.Text), MaxText) {
			bodies = append(bodies, map[string]any{"recipient": recipient, "message": map[string]string{"text": p}})
		}
	}
	if len(bodies) == 0 {
		return s.unsent(ctx, n, store.ZaloRouteUndeliverable, "empty_text", "the answer is empty")
	}
	done := n.sentOA()
	for i, body := range bodies {
		if done[i] {
			continue
		}
		res, err := s.send(ctx, s.o.OAURL, pathText, body)
		var ae *APIError
		if replyTo != "" && errors.As(err, &ae) && (ae.Class == ClassBadInput || ae.Class == ClassRecipient) {
			// Zalo took no reply to that message (too old, over the allowance, or
			// the form not allowed as a reply): the answer goes to the citizen.
			s.log.Info("zalo: a reply was refused; answering the citizen directly", "code", ae.Code, "event", ev.ID)
			m := body.(map[string]any)
			m["recipient"] = map[string]string{"user_id": ev.Message.UserID}
			res, err = s.send(ctx, s.o.OAURL, pathText, m)
		}
		if why, ok := recipientError(err); ok {
			return s.unsent(ctx, n, store.ZaloRouteUndeliverable, "recipient_refused", why)
		}
		if err != nil {
			return s.failure(n, err)
		}
		if err := s.record(ctx, n, store.ZaloRouteOA, i, len(bodies), res, body); err != nil {
			return err
		}
	}
	return nil
}

// fanout hands a topic's notice to every follower subscribed to a commune or ward
// its area names (current or former name, folded, on word boundaries): one notice
// per subscriber, queued for this sink, each then delivered, retried, recorded and
// held to quiet hours and HUY TIN on its own. Notice ids derive from the event and
// the subscriber, so a redelivered event queues nobody twice.
func (s *Sink) fanout(ctx context.Context, n *notice, ts []*topic) error {
	ev := n.ev
	seen := map[string]bool{}
	var evs []store.OutboxEvent
	var named []string
	for _, t := range ts {
		text := ev.Message.Audience
		if len(t.Area) > 0 {
			text = areaText(ev.After, t.Area)
		}
		found := s.cit.places.Find(text)
		named = append(named, places.Names(found)...)
		if len(found) == 0 {
			continue
		}
		subs, err := s.cit.st.Subscribers(ctx, s.o.OAID, t.key, places.IDs(found))
		if err != nil {
			return fmt.Errorf("zalo sink %q: %w", s.name, err)
		}
		for _, sub := range subs {
			if seen[sub.UserID] {
				continue
			}
			seen[sub.UserID] = true
			child := *ev
			child.ID = pipeline.EventID(s.name, noticeEntity, sub.UserID, ev.Version, ev.Rule, ev.ID)
			child.Source, child.Entity, child.Key = s.name, noticeEntity, sub.UserID
			msg := *ev.Message
			msg.UserID, msg.Phone, msg.Audience = sub.UserID, "", ""
			child.Message = &msg
			evs = append(evs, store.OutboxEvent{Event: &child, Sinks: []string{s.name}})
		}
	}
	if err := s.cit.st.Enqueue(ctx, s.name, evs, n.now); err != nil {
		return fmt.Errorf("zalo sink %q: %w", s.name, err)
	}
	s.wake()
	r := s.sendRecord(n, store.ZaloRouteFanout)
	r.Parts, r.Reason = 1, fmt.Sprintf("%d subscribers of %s", len(evs), strings.Join(named, ", "))
	if len(named) == 0 {
		r.Reason = "no commune or ward of the crosswalk is named in the area"
	}
	if err := s.st.RecordZaloSend(context.WithoutCancel(ctx), r); err != nil {
		return fmt.Errorf("zalo sink %q: %w", s.name, err)
	}
	s.log.Info("zalo topic notice handed to subscribers", "event", ev.ID, "rule", ev.Rule, "subscribers", len(evs))
	return nil
}
