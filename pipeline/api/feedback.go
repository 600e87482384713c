package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Feedback is one item of citizens' feedback as the inbox shows it.
type Feedback struct {
	Ref        string    `json:"ref"`
	Agency     string    `json:"agency"`
	UserID     string    `json:"user_id"`
	Text       string    `json:"text"`
	CreatedAt  time.Time `json:"created_at"`
	Answer     string    `json:"answer,omitempty"`
	AnsweredBy string    `json:"answered_by,omitempty"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
}

// ErrFeedbackNotFound is what an inbox returns for an unknown reference.
var ErrFeedbackNotFound = errors.New("no such feedback")

// FeedbackInbox is where citizens' feedback is kept and answered. Answer stores
// the answer and queues the reply to the citizen through the Zalo sink, in one
// transaction.
type FeedbackInbox interface {
	// List returns the newest items first; agencies nil means every agency.
	List(ctx context.Context, agencies []string, limit int) ([]Feedback, error)
	Get(ctx context.Context, ref string) (Feedback, error)
	Answer(ctx context.Context, ref, text, by string) (Feedback, error)
}

// phoneInText finds what looks like a Vietnamese phone number in free text.
var phoneInText = regexp.MustCompile(`(?:\+?84|0)(?:[\s.]?\d){9}`)

func (s *Server) showFeedback(p access.Principal, f Feedback) Feedback {
	if !p.Unmasked() {
		f.Text = phoneInText.ReplaceAllStringFunc(f.Text, transform.MaskPhone)
		f.UserID = transform.MaskID(f.UserID)
	}
	return f
}

func (s *Server) feedbackList(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := principal(r)
	agencies := s.scope(p, r.URL.Query().Get("agency"))
	var items []Feedback
	if agencies == nil || len(agencies) > 0 {
		if items, err = s.opts.Feedback.List(r.Context(), agencies, int(limit)); err != nil {
			s.internalError(w, r, err)
			return
		}
	}
	open := r.URL.Query().Get("status")
	out := struct {
		Feedback []Feedback `json:"feedback"`
		Open     int        `json:"open"`
	}{Feedback: []Feedback{}}
	for _, f := range items {
		if f.Answer == "" {
			out.Open++
		}
		if (open == "open" && f.Answer != "") || (open == "answered" && f.Answer == "") {
			continue
		}
		out.Feedback = append(out.Feedback, s.showFeedback(p, f))
	}
	access.WriteJSON(w, http.StatusOK, out)
}

// feedbackAnswer stores an answer and sends it to the citizen (the Zalo sink
// delivers it as a reply to their message).
func (s *Server) feedbackAnswer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Text string `json:"text"`
	}
	if err := decodeBody(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	body.Text = strings.TrimSpace(body.Text)
	if body.Text == "" || len([]rune(body.Text)) > 2000 {
		s.fail(w, r, badf("text: write the answer, at most 2,000 characters (one Zalo message)"))
		return
	}
	ref := r.PathValue("ref")
	p := principal(r)
	f, err := s.opts.Feedback.Get(r.Context(), ref)
	if errors.Is(err, ErrFeedbackNotFound) || (err == nil && !s.sees(p, f.Agency)) {
		access.WriteError(w, http.StatusNotFound, "no feedback "+ref)
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	f, err = s.opts.Feedback.Answer(r.Context(), ref, body.Text, p.Actor())
	if errors.Is(err, ErrAnswersOff) {
		access.WriteError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if err := s.auditAs(r, "feedback answer", "feedback "+ref); err != nil {
		s.internalError(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, s.showFeedback(p, f))
}

// ErrAnswersOff is what an inbox returns when answers cannot be sent: no Zalo
// sink takes citizens' messages (its citizens block).
var ErrAnswersOff = errors.New("answers cannot be sent: no zalo sink has a citizens block")

// FeedbackStore is what the inbox reads of the state store (both backends).
type FeedbackStore interface {
	ListFeedback(ctx context.Context, agency string, limit int) ([]store.Feedback, error)
	FeedbackByRef(ctx context.Context, ref string) (store.Feedback, error)
}

// FeedbackAnswerer stores an answer and queues it to the citizen (the zalo sink).
type FeedbackAnswerer interface {
	AnswerFeedback(ctx context.Context, ref, answer, by string) (store.Feedback, error)
}

// StoreInbox is the feedback inbox of the state store; answers go through
// Answerer (nil: ErrAnswersOff).
type StoreInbox struct {
	Store    FeedbackStore
	Answerer FeedbackAnswerer
}

func fromStore(f store.Feedback) Feedback {
	return Feedback{Ref: f.Ref, Agency: f.Agency, UserID: f.UserID, Text: f.Text, CreatedAt: f.CreatedAt,
		Answer: f.Answer, AnsweredBy: f.AnsweredBy, AnsweredAt: f.AnsweredAt}
}

// List reads each agency's newest items and merges them, newest first.
func (s *StoreInbox) List(ctx context.Context, agencies []string, limit int) ([]Feedback, error) {
	if agencies == nil {
		agencies = []string{""}
	}
	var all []store.Feedback
	for _, a := range agencies {
		list, err := s.Store.ListFeedback(ctx, a, limit)
		if err != nil {
			return nil, err
		}
		all = append(all, list...)
	}
	slices.SortStableFunc(all, func(a, b store.Feedback) int { return b.CreatedAt.Compare(a.CreatedAt) })
	out := make([]Feedback, 0, min(len(all), limit))
	for _, f := range all[:min(len(all), limit)] {
		out = append(out, fromStore(f))
	}
	return out, nil
}

// Get returns one item, or ErrFeedbackNotFound.
func (s *StoreInbox) Get(ctx context.Context, ref string) (Feedback, error) {
	f, err := s.Store.FeedbackByRef(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return Feedback{}, ErrFeedbackNotFound
	}
	if err != nil {
		return Feedback{}, err
	}
	return fromStore(f), nil
}

// Answer stores the answer and queues it to the citizen.
func (s *StoreInbox) Answer(ctx context.Context, ref, text, by string) (Feedback, error) {
	if s.Answerer == nil {
		return Feedback{}, ErrAnswersOff
	}
	f, err := s.Answerer.AnswerFeedback(ctx, ref, text, by)
	if errors.Is(err, store.ErrNotFound) {
		return Feedback{}, ErrFeedbackNotFound
	}
	if err != nil {
		return Feedback{}, err
	}
	return fromStore(f), nil
}
