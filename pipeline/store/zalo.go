package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// ZaloToken is the token pair of one Zalo Official Account, as the zalo sink keeps
// it. The refresh token is single-use: every refresh returns a new pair, which is
// stored (SaveZaloToken) before the access token is used.
type ZaloToken struct {
	OAID         string
	AccessToken  string    // "" until the first refresh (or after `zalo token set`)
	RefreshToken string    // the one to use next
	ExpiresAt    time.Time // when AccessToken stops working; zero when there is none
	RefreshedAt  time.Time // when this pair was stored
	Generation   int64     // grows by one with every stored pair
	// Refused is Zalo's reason for refusing RefreshToken ("" while it is usable).
	Refused   string
	RefusedAt time.Time
}

// ZaloFollower is a follower of an OA and the phone linked to it.
type ZaloFollower struct {
	OAID          string
	UserID        string
	Phone         string // 84xxxxxxxxx; "" when none is linked
	Followed      bool   // false after an unfollow
	ConsentAt     time.Time
	InteractionAt time.Time // the citizen's last message or action, zero if unknown
	UpdatedAt     time.Time
	// StoppedAt is when the citizen asked for no proactive message (HUY TIN);
	// zero while they accept them.
	StoppedAt time.Time
}

// Routes a Zalo notice can take (ZaloSend.Route).
const (
	ZaloRouteOA            = "oa"            // a message to a follower
	ZaloRouteZNS           = "zns"           // a ZNS template message by phone
	ZaloRouteUndeliverable = "undeliverable" // no route could take it; Reason says why
	ZaloRouteStale         = "stale"         // older than its rule's max_age; not sent
	ZaloRouteFanout        = "fanout"        // handed to a topic's subscribers, one notice each
)

// ZaloSend records one message the zalo sink sent (an OA text split in parts has a
// record per part) or one notice it did not send (undeliverable, stale).
type ZaloSend struct {
	Sink      string
	EventID   string
	Part      int // 0-based
	Parts     int // how many messages the notice takes on this route
	OAID      string
	Route     string
	Agency    string
	Rule      string
	Month     string // YYYY-MM in the province's zone, for accounting
	MessageID string // Zalo's message id
	QuotaType string // from Zalo's answer (reply, sub_quota, purchase_quota, ...)
	Reason    string // why a route was left or the notice not sent
	DryRun    bool
	Request   string // dry run: the request that would have been sent (JSON)
	At        time.Time
}

// ZaloUsage counts a month's notices per route and agency.
type ZaloUsage struct {
	Month    string
	Agency   string
	Route    string
	Notices  int // distinct events
	Messages int // messages (parts) sent
	DryRun   int // of Messages, how many were dry-run
}

// ErrZaloTokenMissing is returned by ZaloToken for an OA whose token was never set.
var ErrZaloTokenMissing = fmt.Errorf("no Zalo token stored: %w", ErrNotFound)

type zaloTokenRow struct {
	OAID         string `db:"oa_id"`
	AccessToken  string `db:"access_token"`
	RefreshToken string `db:"refresh_token"`
	ExpiresAt    dbTime `db:"expires_at"`
	RefreshedAt  dbTime `db:"refreshed_at"`
	Generation   int64  `db:"generation"`
	Refused      string `db:"refused"`
	RefusedAt    dbTime `db:"refused_at"`
}

// ZaloToken returns the stored pair of the OA, or ErrZaloTokenMissing.
func (s *sqlStore) ZaloToken(ctx context.Context, oaID string) (ZaloToken, error) {
	var r zaloTokenRow
	err := s.db.GetContext(ctx, &r, s.q(`SELECT oa_id, access_token, refresh_token, expires_at, refreshed_at,
		generation, refused, refused_at FROM zalo_tokens WHERE oa_id = ?`), oaID)
	if errors.Is(err, sql.ErrNoRows) {
		return ZaloToken{}, ErrZaloTokenMissing
	}
	if err != nil {
		return ZaloToken{}, fmt.Errorf("store: read the Zalo token of OA %s: %w", oaID, err)
	}
	return ZaloToken{OAID: r.OAID, AccessToken: r.AccessToken, RefreshToken: r.RefreshToken,
		ExpiresAt: r.ExpiresAt.Time, RefreshedAt: r.RefreshedAt.Time, Generation: r.Generation,
		Refused: r.Refused, RefusedAt: r.RefusedAt.Time}, nil
}

// SaveZaloToken stores a new pair for the OA (clearing any refusal) with the next
// generation, which it returns. With a fence it writes nothing, and fails with
// ErrFenced, unless the lock the fence came from is still held by that acquisition.
func (s *sqlStore) SaveZaloToken(ctx context.Context, t ZaloToken, fence *Fence) (int64, error) {
	var gen int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		var expires any
		if !t.ExpiresAt.IsZero() {
			expires = s.d.timeArg(t.ExpiresAt)
		}
		return tx.GetContext(ctx, &gen, s.q(`INSERT INTO zalo_tokens
			(oa_id, access_token, refresh_token, expires_at, refreshed_at, generation, refused, refused_at)
			VALUES (?, ?, ?, ?, ?, 1, '', NULL)
			ON CONFLICT (oa_id) DO UPDATE SET access_token = excluded.access_token,
				refresh_token = excluded.refresh_token, expires_at = excluded.expires_at,
				refreshed_at = excluded.refreshed_at, generation = zalo_tokens.generation + 1,
				refused = '', refused_at = NULL
			RETURNING generation`),
			t.OAID, t.AccessToken, t.RefreshToken, expires, s.d.timeArg(t.RefreshedAt))
	})
	if err != nil {
		return 0, fmt.Errorf("store: save the Zalo token of OA %s: %w", t.OAID, err)
	}
	return gen, nil
}

// RefuseZaloToken marks the OA's stored refresh token of the given generation as
// refused by Zalo, with the reason; a pair stored since (a newer generation) is left
// alone. The access token is cleared: it is not to be used any more.
func (s *sqlStore) RefuseZaloToken(ctx context.Context, oaID string, generation int64, reason string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE zalo_tokens SET refused = ?, refused_at = ?, access_token = ''
		WHERE oa_id = ? AND generation = ?`), reason, s.d.timeArg(at), oaID, generation)
	if err != nil {
		return fmt.Errorf("store: mark the Zalo token of OA %s refused: %w", oaID, err)
	}
	return nil
}

// UpsertZaloFollowers inserts or replaces followers; a zero ConsentAt or
// InteractionAt keeps the stored one. It returns how many it wrote.
func (s *sqlStore) UpsertZaloFollowers(ctx context.Context, fs []ZaloFollower) (int, error) {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, f := range fs {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO zalo_followers
				(oa_id, user_id, phone, followed, consent_at, interaction_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (oa_id, user_id) DO UPDATE SET phone = excluded.phone, followed = excluded.followed,
					consent_at = coalesce(excluded.consent_at, zalo_followers.consent_at),
					interaction_at = coalesce(excluded.interaction_at, zalo_followers.interaction_at),
					updated_at = excluded.updated_at`),
				f.OAID, f.UserID, f.Phone, f.Followed, s.optTime(f.ConsentAt), s.optTime(f.InteractionAt),
				s.d.timeArg(f.UpdatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: write Zalo followers: %w", err)
	}
	return len(fs), nil
}

type zaloFollowerRow struct {
	OAID          string `db:"oa_id"`
	UserID        string `db:"user_id"`
	Phone         string `db:"phone"`
	Followed      bool   `db:"followed"`
	ConsentAt     dbTime `db:"consent_at"`
	InteractionAt dbTime `db:"interaction_at"`
	UpdatedAt     dbTime `db:"updated_at"`
	StoppedAt     dbTime `db:"stopped_at"`
}

const zaloFollowerColumns = `oa_id, user_id, phone, followed, consent_at, interaction_at, updated_at, stopped_at`

func (r zaloFollowerRow) follower() ZaloFollower {
	return ZaloFollower{OAID: r.OAID, UserID: r.UserID, Phone: r.Phone, Followed: r.Followed,
		ConsentAt: r.ConsentAt.Time, InteractionAt: r.InteractionAt.Time, UpdatedAt: r.UpdatedAt.Time, StoppedAt: r.StoppedAt.Time}
}

// ZaloFollowerByPhone returns the follower the phone is linked to: one still
// following, the most recently active first; else the latest one that unfollowed
// (Followed false), so the caller can tell "opted out" from "never followed";
// ErrNotFound when the phone is linked to nobody.
func (s *sqlStore) ZaloFollowerByPhone(ctx context.Context, oaID, phone string) (ZaloFollower, error) {
	var r zaloFollowerRow
	err := s.db.GetContext(ctx, &r, s.q(`SELECT `+zaloFollowerColumns+`
		FROM zalo_followers WHERE oa_id = ? AND phone = ?
		ORDER BY followed DESC, interaction_at DESC NULLS LAST, updated_at DESC LIMIT 1`), oaID, phone)
	if errors.Is(err, sql.ErrNoRows) {
		return ZaloFollower{}, ErrNotFound
	}
	if err != nil {
		return ZaloFollower{}, fmt.Errorf("store: look up a Zalo follower by phone: %w", err)
	}
	return r.follower(), nil
}

// CountZaloFollowers returns how many followers of the OA are following, and how
// many of them have a phone linked.
func (s *sqlStore) CountZaloFollowers(ctx context.Context, oaID string) (following, withPhone int, err error) {
	row := struct {
		Following int `db:"following"`
		WithPhone int `db:"with_phone"`
	}{}
	err = s.db.GetContext(ctx, &row, s.q(`SELECT COUNT(*) AS following,
		COUNT(CASE WHEN phone <> '' THEN 1 END) AS with_phone
		FROM zalo_followers WHERE oa_id = ? AND followed = ?`), oaID, true)
	if err != nil {
		return 0, 0, fmt.Errorf("store: count Zalo followers: %w", err)
	}
	return row.Following, row.WithPhone, nil
}

// RecordZaloSend records a send or an unsent notice. Recording the same (sink,
// event, part) again keeps the first record and is not an error: a redelivery
// that raced the first attempt records nothing new.
func (s *sqlStore) RecordZaloSend(ctx context.Context, r ZaloSend) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO zalo_sends
		(sink, event_id, part, parts, oa_id, route, agency, rule, month, message_id, quota_type, reason, dry_run, request, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (sink, event_id, part) DO NOTHING`),
		r.Sink, r.EventID, r.Part, r.Parts, r.OAID, r.Route, r.Agency, r.Rule, r.Month, r.MessageID, r.QuotaType,
		r.Reason, r.DryRun, r.Request, s.d.timeArg(r.At))
	if err != nil {
		return fmt.Errorf("store: record a Zalo send of event %s: %w", r.EventID, err)
	}
	return nil
}

type zaloSendRow struct {
	Sink      string `db:"sink"`
	EventID   string `db:"event_id"`
	Part      int    `db:"part"`
	Parts     int    `db:"parts"`
	OAID      string `db:"oa_id"`
	Route     string `db:"route"`
	Agency    string `db:"agency"`
	Rule      string `db:"rule"`
	Month     string `db:"month"`
	MessageID string `db:"message_id"`
	QuotaType string `db:"quota_type"`
	Reason    string `db:"reason"`
	DryRun    bool   `db:"dry_run"`
	Request   string `db:"request"`
	At        dbTime `db:"at"`
}

const zaloSendColumns = `sink, event_id, part, parts, oa_id, route, agency, rule, month, message_id, quota_type, reason, dry_run, request, at`

// ZaloSends returns the records of one event for the sink, by part; with eventID ""
// every record of the sink, oldest first, up to limit (0: no limit).
func (s *sqlStore) ZaloSends(ctx context.Context, sink, eventID string, limit int) ([]ZaloSend, error) {
	q := `SELECT ` + zaloSendColumns + ` FROM zalo_sends WHERE sink = ?`
	args := []any{sink}
	if eventID != "" {
		q += ` AND event_id = ? ORDER BY part`
		args = append(args, eventID)
	} else {
		q += ` ORDER BY at, event_id, part`
	}
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	var rows []zaloSendRow
	if err := s.db.SelectContext(ctx, &rows, s.q(q), args...); err != nil {
		return nil, fmt.Errorf("store: read Zalo sends: %w", err)
	}
	out := make([]ZaloSend, len(rows))
	for i, r := range rows {
		out[i] = ZaloSend{Sink: r.Sink, EventID: r.EventID, Part: r.Part, Parts: r.Parts, OAID: r.OAID, Route: r.Route,
			Agency: r.Agency, Rule: r.Rule, Month: r.Month, MessageID: r.MessageID, QuotaType: r.QuotaType,
			Reason: r.Reason, DryRun: r.DryRun, Request: r.Request, At: r.At.Time}
	}
	return out, nil
}

// ZaloUsage counts the month's notices and messages per agency and route, over
// every sink ("" ) or one; month "" means every month.
func (s *sqlStore) ZaloUsage(ctx context.Context, sink, month string) ([]ZaloUsage, error) {
	q := `SELECT month, agency, route, COUNT(DISTINCT sink || '/' || event_id) AS notices, COUNT(*) AS messages,
		COUNT(CASE WHEN dry_run = ? THEN 1 END) AS dry FROM zalo_sends WHERE 1 = 1`
	args := []any{true}
	if sink != "" {
		q += ` AND sink = ?`
		args = append(args, sink)
	}
	if month != "" {
		q += ` AND month = ?`
		args = append(args, month)
	}
	q += ` GROUP BY month, agency, route ORDER BY month, agency, route`
	var rows []struct {
		Month    string `db:"month"`
		Agency   string `db:"agency"`
		Route    string `db:"route"`
		Notices  int    `db:"notices"`
		Messages int    `db:"messages"`
		Dry      int    `db:"dry"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.q(q), args...); err != nil {
		return nil, fmt.Errorf("store: count Zalo sends: %w", err)
	}
	out := make([]ZaloUsage, len(rows))
	for i, r := range rows {
		out[i] = ZaloUsage{Month: r.Month, Agency: r.Agency, Route: r.Route, Notices: r.Notices, Messages: r.Messages, DryRun: r.Dry}
	}
	return out, nil
}

// optTime binds a zero time as NULL.
func (s *sqlStore) optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.timeArg(t)
}

// inTx runs fn in a transaction of the store, committing when it returns nil.
func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return inTx(ctx, s.db, fn)
}
