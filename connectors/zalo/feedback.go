package zalo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// replyWindow is how long after a citizen's message an answer may still be sent as
// a free reply to it; later it goes to the citizen as an ordinary message.
const replyWindow = 48 * time.Hour

// feedback handles GOPY <nội dung>: stored with the next reference number and
// queued, in the same transaction, as an event routed like any other (to the
// agency's dashboard sinks).
func (s *Sink) feedback(ctx context.Context, in inbound, arg, user string) ([]reply, error) {
	c := s.cit
	text := strings.TrimSpace(arg)
	if text == "" {
		return []reply{{text: c.cfg.Texts.EmptyFeedback}}, nil
	}
	at := in.at
	if at.IsZero() {
		at = s.clock()
	}
	f, _, err := c.st.AddFeedback(ctx, store.Feedback{Origin: in.EventKey, OAID: s.o.OAID, UserID: user,
		ReplyTo: in.env.Message.MsgID, Agency: c.cfg.Feedback.Agency, Text: text, CreatedAt: at},
		at.In(s.zone).Year(), s.name, s.feedbackEvents)
	if err != nil {
		return nil, err
	}
	return []reply{{text: c.text("feedback", map[string]any{"ref": f.Ref})}}, nil
}

// feedbackEvents is the feedback's event for the dashboards, routed by the
// config's routes (entity feedback, type created). The citizen is not named: an
// answer goes back through AnswerFeedback by reference number.
func (s *Sink) feedbackEvents(f store.Feedback) []store.OutboxEvent {
	ev := &pipeline.Event{
		ID:   pipeline.EventID(s.name, FeedbackEntity, f.Ref, 1, pipeline.EventCreated, f.Origin),
		Type: pipeline.EventCreated, Source: s.name, Entity: FeedbackEntity, Key: f.Ref, Agency: f.Agency, Version: 1,
		After:      map[string]any{"ref": f.Ref, "text": f.Text, "agency": f.Agency, "received_at": f.CreatedAt.UTC()},
		DetectedAt: f.CreatedAt.UTC(),
	}
	var sinks []string
	if s.route != nil {
		sinks = s.route(ev)
	}
	if len(sinks) == 0 {
		s.log.Warn("zalo: a citizen's feedback is routed to no sink; add a route for entity feedback", "ref", f.Ref)
	}
	return []store.OutboxEvent{{Event: ev, Sinks: sinks}}
}

// FeedbackAnswerer answers a citizen's feedback through the OA; the zalo sink
// implements it, for the steering API.
type FeedbackAnswerer interface {
	AnswerFeedback(ctx context.Context, ref, answer, by string) (store.Feedback, error)
}

var _ FeedbackAnswerer = (*Sink)(nil)

// ErrNoCitizens is returned when the sink has no citizens block.
var ErrNoCitizens = errors.New("the zalo sink has no citizens block")

// AnswerFeedback stores an agency's answer to the feedback with reference ref
// (by: who answered, for the record) and queues the answer to the citizen through
// the outbox, in one transaction: as a reply to the citizen's message while Zalo
// still takes one (48 hours), else as a message to the citizen. Retries, dead
// letters and the send record work as for every delivery. store.ErrNotFound when
// no feedback has that reference.
func (s *Sink) AnswerFeedback(ctx context.Context, ref, answer, by string) (store.Feedback, error) {
	if s.cit == nil {
		return store.Feedback{}, ErrNoCitizens
	}
	answer = strings.TrimSpace(answer)
	if answer == "" {
		return store.Feedback{}, pipeline.Permanentf("the answer to %s is empty", ref)
	}
	now := s.clock()
	f, err := s.cit.st.AnswerFeedback(ctx, ref, answer, by, now, s.name, func(f store.Feedback) []store.OutboxEvent {
		replyTo := f.ReplyTo
		if now.Sub(f.CreatedAt) > replyWindow {
			replyTo = ""
		}
		text := s.cit.text("feedback_answer", map[string]any{"ref": f.Ref, "answer": f.Answer})
		// Answering again sends the new answer: the id covers the answer's time.
		origin := fmt.Sprintf("answer:%s:%d", f.Ref, now.UnixNano())
		return []store.OutboxEvent{{Event: s.replyEvent(origin, 0, f.UserID, replyTo, reply{text: text}, now), Sinks: []string{s.name}}}
	})
	if err != nil {
		return store.Feedback{}, fmt.Errorf("zalo sink %q: %w", s.name, err)
	}
	s.wake()
	return f, nil
}
