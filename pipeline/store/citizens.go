package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
)

// What citizens who write to the OA leave in the store (connectors/zalo's webhook
// and commands; migration 0009). The connector reaches these methods through
// small interfaces of its own; the steering page reads feedback and ratings.

// ZaloInbound is one webhook event Zalo delivered, kept until it is handled.
type ZaloInbound struct {
	ID         int64
	OAID       string
	EventKey   string // Zalo's message id, or the event's identity: dedupes redeliveries
	EventName  string
	UserID     string
	Payload    []byte // the raw body Zalo signed
	ReceivedAt time.Time
	Attempts   int
	LastError  string
}

// AddZaloInbound stores an event unless one with its key is already there; added
// is false for a repeated delivery.
func (s *sqlStore) AddZaloInbound(ctx context.Context, e ZaloInbound) (added bool, err error) {
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO zalo_inbox (oa_id, event_key, event_name, user_id, payload, received_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (oa_id, event_key) DO NOTHING`),
		e.OAID, e.EventKey, e.EventName, e.UserID, pgtext.Text(string(e.Payload)), s.d.timeArg(e.ReceivedAt))
	if err != nil {
		return false, fmt.Errorf("store: keep a Zalo webhook event: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: keep a Zalo webhook event: %w", err)
	}
	return n > 0, nil
}

// WaitingZaloInbound returns up to limit events of the OA not handled yet, oldest
// first.
func (s *sqlStore) WaitingZaloInbound(ctx context.Context, oaID string, limit int) ([]ZaloInbound, error) {
	var rows []struct {
		ID         int64  `db:"id"`
		OAID       string `db:"oa_id"`
		EventKey   string `db:"event_key"`
		EventName  string `db:"event_name"`
		UserID     string `db:"user_id"`
		Payload    string `db:"payload"`
		ReceivedAt dbTime `db:"received_at"`
		Attempts   int    `db:"attempts"`
		LastError  string `db:"last_error"`
	}
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT id, oa_id, event_key, event_name, user_id, payload, received_at,
		attempts, last_error FROM zalo_inbox WHERE oa_id = ? AND handled_at IS NULL ORDER BY id LIMIT ?`), oaID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: read waiting Zalo webhook events: %w", err)
	}
	out := make([]ZaloInbound, len(rows))
	for i, r := range rows {
		out[i] = ZaloInbound{ID: r.ID, OAID: r.OAID, EventKey: r.EventKey, EventName: r.EventName, UserID: r.UserID,
			Payload: []byte(r.Payload), ReceivedAt: r.ReceivedAt.Time, Attempts: r.Attempts, LastError: r.LastError}
	}
	return out, nil
}

// FinishZaloInbound records an attempt at handling an event: done marks it handled
// (with errMsg, if it was given up); otherwise it stays waiting with errMsg.
func (s *sqlStore) FinishZaloInbound(ctx context.Context, id int64, at time.Time, errMsg string, done bool) error {
	var handled any
	if done {
		handled = s.d.timeArg(at)
	}
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE zalo_inbox SET handled_at = ?, attempts = attempts + 1, last_error = ?
		WHERE id = ?`), handled, pgtext.Text(errMsg), id)
	if err != nil {
		return fmt.Errorf("store: record the handling of Zalo webhook event %d: %w", id, err)
	}
	return nil
}

// ZaloFollower returns the OA's follower row of the user, or ErrNotFound.
func (s *sqlStore) ZaloFollower(ctx context.Context, oaID, userID string) (ZaloFollower, error) {
	var r zaloFollowerRow
	err := s.db.GetContext(ctx, &r, s.q(`SELECT `+zaloFollowerColumns+` FROM zalo_followers WHERE oa_id = ? AND user_id = ?`), oaID, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return ZaloFollower{}, ErrNotFound
	}
	if err != nil {
		return ZaloFollower{}, fmt.Errorf("store: read a Zalo follower: %w", err)
	}
	return r.follower(), nil
}

// SetZaloFollowing records a follow or an unfollow, keeping the user's phone.
func (s *sqlStore) SetZaloFollowing(ctx context.Context, oaID, userID string, following bool, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO zalo_followers (oa_id, user_id, followed, interaction_at, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (oa_id, user_id) DO UPDATE SET followed = excluded.followed,
		interaction_at = excluded.interaction_at, updated_at = excluded.updated_at`),
		oaID, userID, following, s.d.timeArg(at), s.d.timeArg(at))
	if err != nil {
		return fmt.Errorf("store: record a Zalo follow: %w", err)
	}
	return nil
}

// TouchZaloFollower records that the user wrote to the OA at at (it decides which
// kind of message may reach them); a user not known yet is added as following.
func (s *sqlStore) TouchZaloFollower(ctx context.Context, oaID, userID string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO zalo_followers (oa_id, user_id, followed, interaction_at, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (oa_id, user_id) DO UPDATE SET
		interaction_at = CASE WHEN zalo_followers.interaction_at IS NULL OR zalo_followers.interaction_at < excluded.interaction_at
			THEN excluded.interaction_at ELSE zalo_followers.interaction_at END,
		updated_at = excluded.updated_at`),
		oaID, userID, true, s.d.timeArg(at), s.d.timeArg(at))
	if err != nil {
		return fmt.Errorf("store: record a Zalo user's interaction: %w", err)
	}
	return nil
}

// LinkZaloPhone links the phone (84xxxxxxxxx) the user shared through Zalo's
// request-info form to the user, with the time of consent.
func (s *sqlStore) LinkZaloPhone(ctx context.Context, oaID, userID, phone string, consentAt time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO zalo_followers (oa_id, user_id, phone, followed, consent_at, interaction_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (oa_id, user_id) DO UPDATE SET phone = excluded.phone,
		consent_at = excluded.consent_at, interaction_at = excluded.interaction_at, updated_at = excluded.updated_at`),
		oaID, userID, phone, true, s.d.timeArg(consentAt), s.d.timeArg(consentAt), s.d.timeArg(consentAt))
	if err != nil {
		return fmt.Errorf("store: link a phone to a Zalo follower: %w", err)
	}
	return nil
}

// StopZaloFollower records the user's wish to receive no proactive message (stop)
// or withdraws it.
func (s *sqlStore) StopZaloFollower(ctx context.Context, oaID, userID string, stop bool, at time.Time) error {
	var stopped any
	if stop {
		stopped = s.d.timeArg(at)
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO zalo_followers (oa_id, user_id, followed, stopped_at, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (oa_id, user_id) DO UPDATE SET stopped_at = excluded.stopped_at,
		updated_at = excluded.updated_at`), oaID, userID, true, stopped, s.d.timeArg(at))
	if err != nil {
		return fmt.Errorf("store: record a Zalo user's stop: %w", err)
	}
	return nil
}

// ZaloSubscription is a follower's subscription to a topic for a place.
type ZaloSubscription struct {
	OAID      string
	UserID    string
	Topic     string // e.g. cupdien
	Place     string // the current unit's id in the crosswalk
	Label     string // the place as shown to the citizen
	CreatedAt time.Time
}

// Subscribe adds a subscription; added is false when it was there already.
func (s *sqlStore) Subscribe(ctx context.Context, sub ZaloSubscription) (added bool, err error) {
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO zalo_subscriptions (oa_id, user_id, topic, place, label, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (oa_id, user_id, topic, place) DO NOTHING`),
		sub.OAID, sub.UserID, sub.Topic, sub.Place, sub.Label, s.d.timeArg(sub.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("store: subscribe: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Unsubscribe removes a subscription; removed is false when there was none.
func (s *sqlStore) Unsubscribe(ctx context.Context, oaID, userID, topic, place string) (removed bool, err error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM zalo_subscriptions WHERE oa_id = ? AND user_id = ? AND topic = ? AND place = ?`),
		oaID, userID, topic, place)
	if err != nil {
		return false, fmt.Errorf("store: unsubscribe: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Subscribers returns the subscriptions of the OA's topic to any of places, by user
// (a user subscribed to two of them appears twice: the caller sends once).
func (s *sqlStore) Subscribers(ctx context.Context, oaID, topic string, places []string) ([]ZaloSubscription, error) {
	var out []ZaloSubscription
	err := forEachIn(s.d, "place", places, func(cond string, in []any) error {
		var rows []struct {
			UserID    string `db:"user_id"`
			Place     string `db:"place"`
			Label     string `db:"label"`
			CreatedAt dbTime `db:"created_at"`
		}
		if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT user_id, place, label, created_at FROM zalo_subscriptions
			WHERE oa_id = ? AND topic = ? AND `+cond+` ORDER BY user_id, place`), append([]any{oaID, topic}, in...)...); err != nil {
			return err
		}
		for _, r := range rows {
			out = append(out, ZaloSubscription{OAID: oaID, UserID: r.UserID, Topic: topic, Place: r.Place, Label: r.Label, CreatedAt: r.CreatedAt.Time})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read subscribers of %s: %w", topic, err)
	}
	return out, nil
}

// Feedback is a citizen's GOPY message, with its reference number.
type Feedback struct {
	ID         int64
	Ref        string // GY-2026-000123
	Origin     string // the webhook event it came from
	OAID       string
	UserID     string
	ReplyTo    string // the citizen's message id (an answer replies to it)
	Agency     string
	Text       string
	CreatedAt  time.Time
	Answer     string
	AnsweredBy string
	AnsweredAt time.Time
}

// FeedbackRef is the reference number of a year's nth feedback.
func FeedbackRef(year, n int) string { return fmt.Sprintf("GY-%d-%06d", year, n) }

// EmitFunc builds the events to queue, in the same transaction, for a feedback
// item just stored or answered.
type EmitFunc func(f Feedback) []OutboxEvent

const feedbackColumns = `id, ref, origin, oa_id, user_id, reply_to, agency, text, created_at, answer, answered_by, answered_at`

type feedbackRow struct {
	ID         int64  `db:"id"`
	Ref        string `db:"ref"`
	Origin     string `db:"origin"`
	OAID       string `db:"oa_id"`
	UserID     string `db:"user_id"`
	ReplyTo    string `db:"reply_to"`
	Agency     string `db:"agency"`
	Text       string `db:"text"`
	CreatedAt  dbTime `db:"created_at"`
	Answer     string `db:"answer"`
	AnsweredBy string `db:"answered_by"`
	AnsweredAt dbTime `db:"answered_at"`
}

func (r feedbackRow) feedback() Feedback {
	return Feedback{ID: r.ID, Ref: r.Ref, Origin: r.Origin, OAID: r.OAID, UserID: r.UserID, ReplyTo: r.ReplyTo,
		Agency: r.Agency, Text: r.Text, CreatedAt: r.CreatedAt.Time, Answer: r.Answer, AnsweredBy: r.AnsweredBy,
		AnsweredAt: r.AnsweredAt.Time}
}

// AddFeedback stores a feedback item with the next reference number of its year
// (in the province's calendar: year) and queues the events emit builds, in one
// transaction, from source. A feedback item whose origin is stored already is
// returned as it is (added false) and queues nothing.
func (s *sqlStore) AddFeedback(ctx context.Context, f Feedback, year int, source string, emit EmitFunc) (out Feedback, added bool, err error) {
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var prior feedbackRow
		err := tx.GetContext(ctx, &prior, s.q(`SELECT `+feedbackColumns+` FROM feedback WHERE origin = ?`), f.Origin)
		if err == nil {
			out = prior.feedback()
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var n int
		if err := tx.GetContext(ctx, &n, s.q(`INSERT INTO feedback_numbers (year, last) VALUES (?, 1)
			ON CONFLICT (year) DO UPDATE SET last = feedback_numbers.last + 1 RETURNING last`), year); err != nil {
			return fmt.Errorf("number: %w", err)
		}
		f.Ref = FeedbackRef(year, n)
		if err := tx.GetContext(ctx, &f.ID, s.q(`INSERT INTO feedback (ref, origin, oa_id, user_id, reply_to, agency, text, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), f.Ref, f.Origin, f.OAID, f.UserID, f.ReplyTo, f.Agency,
			pgtext.Text(f.Text), s.d.timeArg(f.CreatedAt)); err != nil {
			return err
		}
		out, added = f, true
		return s.queue(ctx, tx, source, emit(f), f.CreatedAt)
	})
	if err != nil {
		return Feedback{}, false, fmt.Errorf("store: keep feedback: %w", err)
	}
	return out, added, nil
}

// FeedbackByRef returns a feedback item, or ErrNotFound.
func (s *sqlStore) FeedbackByRef(ctx context.Context, ref string) (Feedback, error) {
	var r feedbackRow
	err := s.db.GetContext(ctx, &r, s.q(`SELECT `+feedbackColumns+` FROM feedback WHERE ref = ?`), ref)
	if errors.Is(err, sql.ErrNoRows) {
		return Feedback{}, ErrNotFound
	}
	if err != nil {
		return Feedback{}, fmt.Errorf("store: read feedback %s: %w", ref, err)
	}
	return r.feedback(), nil
}

// ListFeedback returns feedback items, newest first, of one agency ("" for all),
// up to limit.
func (s *sqlStore) ListFeedback(ctx context.Context, agency string, limit int) ([]Feedback, error) {
	q, args := `SELECT `+feedbackColumns+` FROM feedback`, []any{}
	if agency != "" {
		q += ` WHERE agency = ?`
		args = append(args, agency)
	}
	q += ` ORDER BY created_at DESC, id DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	var rows []feedbackRow
	if err := s.db.SelectContext(ctx, &rows, s.q(q), args...); err != nil {
		return nil, fmt.Errorf("store: list feedback: %w", err)
	}
	out := make([]Feedback, len(rows))
	for i, r := range rows {
		out[i] = r.feedback()
	}
	return out, nil
}

// AnswerFeedback stores an answer to a feedback item and queues the events emit
// builds (the reply to the citizen), in one transaction. Answering again replaces
// the answer and queues the new reply.
func (s *sqlStore) AnswerFeedback(ctx context.Context, ref, answer, by string, at time.Time, source string, emit EmitFunc) (Feedback, error) {
	var out Feedback
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE feedback SET answer = ?, answered_by = ?, answered_at = ? WHERE ref = ?`),
			pgtext.Text(answer), by, s.d.timeArg(at), ref)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return ErrNotFound
		}
		var r feedbackRow
		if err := tx.GetContext(ctx, &r, s.q(`SELECT `+feedbackColumns+` FROM feedback WHERE ref = ?`), ref); err != nil {
			return err
		}
		out = r.feedback()
		return s.queue(ctx, tx, source, emit(out), at)
	})
	if err != nil {
		return Feedback{}, fmt.Errorf("store: answer feedback %s: %w", ref, err)
	}
	return out, nil
}

// Enqueue puts events into the outbox for the sinks named with each, in one
// transaction, on behalf of source (not a sync source: no cursor moves). An event
// whose id is stored already is skipped, so a retried caller queues nothing twice.
func (s *sqlStore) Enqueue(ctx context.Context, source string, evs []OutboxEvent, at time.Time) error {
	if err := s.inTx(ctx, func(tx *sqlx.Tx) error { return s.queue(ctx, tx, source, evs, at) }); err != nil {
		return fmt.Errorf("store: queue events of %s: %w", source, err)
	}
	return nil
}

func (s *sqlStore) queue(ctx context.Context, tx *sqlx.Tx, source string, evs []OutboxEvent, at time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	b := Batch{Source: source, Events: evs, At: at}
	rows, _, err := s.eventRows(b, snapshotRows{}) // no snapshot rows: no feed events
	if err != nil {
		return err
	}
	_, err = s.insertEvents(ctx, tx, b, rows)
	return err
}

// Rating is a citizen's satisfaction score (1-5) for a returned dossier.
type Rating struct {
	Source  string
	Dossier string // the dossier record's key
	OAID    string
	UserID  string
	Agency  string
	Score   int
	RatedAt time.Time
}

// Rate stores a rating; the citizen's earlier rating of the dossier is replaced.
func (s *sqlStore) Rate(ctx context.Context, r Rating) error {
	if r.Score < 1 || r.Score > 5 {
		return fmt.Errorf("store: a rating is 1 to 5, not %d", r.Score)
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO ratings (source, dossier, oa_id, user_id, agency, score, rated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, dossier, oa_id, user_id) DO UPDATE SET
		agency = excluded.agency, score = excluded.score, rated_at = excluded.rated_at`),
		r.Source, r.Dossier, r.OAID, r.UserID, r.Agency, r.Score, s.d.timeArg(r.RatedAt))
	if err != nil {
		return fmt.Errorf("store: keep a rating: %w", err)
	}
	return nil
}

// RatingFilter narrows ListRatings and RatingsByAgency; zero fields do not filter.
type RatingFilter struct {
	Agency string
	Since  time.Time // rated at or after
	Until  time.Time // rated before
	Limit  int       // ListRatings only
}

func (s *sqlStore) ratingWhere(f RatingFilter) (string, []any) {
	q, args := ` WHERE 1 = 1`, []any{}
	if f.Agency != "" {
		q += ` AND agency = ?`
		args = append(args, f.Agency)
	}
	if !f.Since.IsZero() {
		q += ` AND rated_at >= ?`
		args = append(args, s.d.timeArg(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND rated_at < ?`
		args = append(args, s.d.timeArg(f.Until))
	}
	return q, args
}

// ListRatings returns ratings, newest first.
func (s *sqlStore) ListRatings(ctx context.Context, f RatingFilter) ([]Rating, error) {
	where, args := s.ratingWhere(f)
	q := `SELECT source, dossier, oa_id, user_id, agency, score, rated_at FROM ratings` + where + ` ORDER BY rated_at DESC, dossier`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	var rows []struct {
		Source  string `db:"source"`
		Dossier string `db:"dossier"`
		OAID    string `db:"oa_id"`
		UserID  string `db:"user_id"`
		Agency  string `db:"agency"`
		Score   int    `db:"score"`
		RatedAt dbTime `db:"rated_at"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.q(q), args...); err != nil {
		return nil, fmt.Errorf("store: list ratings: %w", err)
	}
	out := make([]Rating, len(rows))
	for i, r := range rows {
		out[i] = Rating{Source: r.Source, Dossier: r.Dossier, OAID: r.OAID, UserID: r.UserID, Agency: r.Agency, Score: r.Score, RatedAt: r.RatedAt.Time}
	}
	return out, nil
}

// AgencyRatings sums up an agency's ratings for the steering page.
type AgencyRatings struct {
	Agency  string
	Count   int
	Average float64
	Scores  [5]int // how many ratings gave 1, 2, 3, 4, 5
}

// RatingsByAgency sums ratings up per agency, by agency name.
func (s *sqlStore) RatingsByAgency(ctx context.Context, f RatingFilter) ([]AgencyRatings, error) {
	where, args := s.ratingWhere(f)
	var rows []struct {
		Agency string `db:"agency"`
		Score  int    `db:"score"`
		N      int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT agency, score, COUNT(*) AS n FROM ratings`+where+
		` GROUP BY agency, score ORDER BY agency, score`), args...); err != nil {
		return nil, fmt.Errorf("store: sum ratings up: %w", err)
	}
	var out []AgencyRatings
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].Agency != r.Agency {
			out = append(out, AgencyRatings{Agency: r.Agency})
		}
		a := &out[len(out)-1]
		a.Scores[r.Score-1] += r.N
		a.Count += r.N
	}
	for i := range out {
		sum := 0
		for sc, n := range out[i].Scores {
			sum += (sc + 1) * n
		}
		out[i].Average = float64(sum) / float64(out[i].Count)
	}
	return out, nil
}

// CitizenCounts sums up the citizens' side of an OA for `egov-bridge zalo status`.
type CitizenCounts struct {
	Waiting       int // webhook events not handled yet
	GivenUp       int // webhook events given up after repeated failures (kept with their error)
	Subscriptions int
	Feedback      int
	Unanswered    int // feedback without an answer
	Ratings       int
}

// CountCitizens counts the OA's webhook events, subscriptions, feedback and ratings.
func (s *sqlStore) CountCitizens(ctx context.Context, oaID string) (CitizenCounts, error) {
	var c CitizenCounts
	for _, q := range []struct {
		dst *int
		sql string
	}{
		{&c.Waiting, `SELECT COUNT(*) FROM zalo_inbox WHERE oa_id = ? AND handled_at IS NULL`},
		{&c.GivenUp, `SELECT COUNT(*) FROM zalo_inbox WHERE oa_id = ? AND handled_at IS NOT NULL AND last_error <> ''`},
		{&c.Subscriptions, `SELECT COUNT(*) FROM zalo_subscriptions WHERE oa_id = ?`},
		{&c.Feedback, `SELECT COUNT(*) FROM feedback WHERE oa_id = ?`},
		{&c.Unanswered, `SELECT COUNT(*) FROM feedback WHERE oa_id = ? AND answered_at IS NULL`},
		{&c.Ratings, `SELECT COUNT(*) FROM ratings WHERE oa_id = ?`},
	} {
		if err := s.db.GetContext(ctx, q.dst, s.q(q.sql), oaID); err != nil {
			return CitizenCounts{}, fmt.Errorf("store: count citizens' data: %w", err)
		}
	}
	return c, nil
}
