package zalo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/announce"
)

// The sink carries the province's (or an agency's) proactive announcements
// (pipeline/announce): a promotion message to each follower, or the
// announcement's ZNS template by phone, through the sink's token, rate limit and
// quiet hours.

const (
	pathPromotion    = "/v3.0/oa/message/promotion"
	pathConversation = "/v2.0/oa/conversation"
)

var _ announce.Channel = (*Sink)(nil)

// OAID is the Official Account's id.
func (s *Sink) OAID() string { return s.o.OAID }

// promotionBody is the request of a promotion message to a follower.
func promotionBody(m announce.Message, userID string) map[string]any {
	payload := map[string]any{"template_type": "promotion", "language": "VI", "elements": m.Elements()}
	if b := m.Buttons(); b != nil {
		payload["buttons"] = b
	}
	return map[string]any{"recipient": map[string]string{"user_id": userID},
		"message": map[string]any{"attachment": map[string]any{"type": "template", "payload": payload}}}
}

// Announce sends an announcement to one recipient: a promotion message to a
// follower; to a citizen who cannot be reached so, the message's ZNS template by
// phone when it has one (never in quiet hours). Zalo's refusals are results; an
// error means try again later.
func (s *Sink) Announce(ctx context.Context, m announce.Message, to announce.Recipient) (announce.Result, error) {
	var left []string
	if to.UserID != "" {
		res, err := s.send(ctx, s.o.OAURL, pathPromotion, promotionBody(m, to.UserID))
		if r, done, err := s.announceOutcome(announce.RouteOA, res, err); done || err != nil {
			return r, err
		} else {
			left = append(left, r.Detail)
		}
	}
	if to.Phone != "" && m.ZNSTemplateID != "" {
		now := s.clock()
		if end, in := s.quiet.until(now); in {
			return announce.Result{}, pipeline.RetryAfter(fmt.Errorf("ZNS waits for the end of quiet hours at %s", end.In(s.zone).Format("15:04")), end.Sub(now))
		}
		tracking := m.ID + "-" + to.Phone
		body := map[string]any{"phone": to.Phone, "template_id": m.ZNSTemplateID, "template_data": m.TemplateData,
			"tracking_id": trackingID(tracking)}
		res, err := s.send(ctx, s.o.ZNSURL, pathZNS, body)
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == CodeNight {
			return announce.Result{}, pipeline.RetryAfter(err, time.Hour)
		}
		r, done, err := s.announceOutcome(announce.RouteZNS, res, err)
		if done || err != nil {
			return r, err
		}
		left = append(left, r.Detail)
	} else if to.Phone != "" && to.UserID == "" {
		left = append(left, "not a follower and the announcement has no ZNS template")
	}
	if len(left) == 0 {
		left = append(left, "no user id or phone")
	}
	return announce.Result{State: announce.RecipientUnreachable, Detail: strings.Join(left, "; ")}, nil
}

// announceOutcome reads one route's answer: done with a result (sent, or failed
// for good), not done with the reason the route cannot reach the citizen, or an
// error to try again later.
func (s *Sink) announceOutcome(route string, res sendResult, err error) (announce.Result, bool, error) {
	if err == nil {
		r := announce.Result{State: announce.RecipientSent, Route: route, MessageID: res.MessageID, QuotaType: res.QuotaType}
		if s.o.DryRun {
			r.Detail, r.DryRun = "dry run: not sent", true
		}
		s.metrics.message(route, res.QuotaType)
		return r, true, nil
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return announce.Result{}, false, err
	}
	switch ae.Class {
	case ClassRecipient:
		return announce.Result{State: announce.RecipientUnreachable, Route: route, Code: ae.Code,
			Detail: fmt.Sprintf("%s: zalo error %d", route, ae.Code)}, false, nil
	case ClassBadInput:
		return announce.Result{State: announce.RecipientFailed, Route: route, Code: ae.Code,
			Detail: fmt.Sprintf("%s: zalo error %d: %s", route, ae.Code, ae.Message)}, true, nil
	case ClassRate:
		return announce.Result{}, false, pipeline.RetryAfter(err, rateWait(ae.Code))
	}
	return announce.Result{}, false, err
}

// Received asks Zalo for the recent conversation with the follower and reports
// whether it holds a message from the OA with the announcement's title, sent at
// or after since. ZNS by phone keeps no conversation the daemon can read:
// announce.ErrCannotTell.
func (s *Sink) Received(ctx context.Context, m announce.Message, to announce.Recipient, since time.Time) (bool, error) {
	if to.UserID == "" {
		return false, announce.ErrCannotTell
	}
	if s.o.DryRun {
		return false, nil
	}
	msgs, err := s.conversation(ctx, to.UserID)
	if err != nil {
		return false, err
	}
	for _, c := range msgs {
		if c.Src == 0 && c.Time >= since.UnixMilli() && strings.Contains(c.Message, m.Title) {
			return true, nil
		}
	}
	return false, nil
}

// conversationMessage is one message of Zalo's conversation answer.
type conversationMessage struct {
	MsgID   string `json:"msg_id"`
	Src     int    `json:"src"` // 0: from the OA, 1: from the user
	Time    int64  `json:"time"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

// conversationDepth is how many recent messages are read: a claimed batch is
// checked right after a restart, so the announcement is among the last few.
const conversationDepth = 10

func (s *Sink) conversation(ctx context.Context, userID string) ([]conversationMessage, error) {
	get := func(token string) ([]conversationMessage, error) {
		if err := s.api.limit.Wait(ctx); err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, s.api.timeout)
		defer cancel()
		q, _ := json.Marshal(map[string]any{"user_id": userID, "offset": 0, "count": conversationDepth})
		resp, err := s.api.client.R().SetContext(cctx).SetHeader("access_token", token).
			SetQueryParam("data", string(q)).Get(s.api.oaURL + pathConversation)
		if err != nil {
			return nil, requestError(pathConversation, err)
		}
		if resp.StatusCode() != http.StatusOK {
			return nil, fmt.Errorf("zalo %s: HTTP %d", pathConversation, resp.StatusCode())
		}
		var ans struct {
			Error   int                   `json:"error"`
			Message string                `json:"message"`
			Data    []conversationMessage `json:"data"`
		}
		if err := json.Unmarshal(resp.Body(), &ans); err != nil {
			return nil, fmt.Errorf("zalo %s: unreadable answer: %w", pathConversation, err)
		}
		if ans.Error != 0 {
			return nil, &APIError{Code: ans.Error, Message: ans.Message, Class: ClassOf(ans.Error), Path: pathConversation}
		}
		return ans.Data, nil
	}
	t, err := s.tokens.access(ctx)
	if err != nil {
		return nil, err
	}
	msgs, err := get(t.AccessToken)
	var ae *APIError
	if errors.As(err, &ae) && ae.Class == ClassToken {
		if t, err = s.tokens.rejected(ctx, t.AccessToken); err != nil {
			return nil, err
		}
		msgs, err = get(t.AccessToken)
	}
	return msgs, err
}
