package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
)

// Proactive announcements (pipeline/announce; migration 0012). The package reaches
// these methods through an interface of its own; every change of an announcement's
// state is a compare-and-set on the state, written in one transaction with its
// audit entry.

// ErrStateChanged is returned when an announcement is not in a state the change
// may start from (someone else moved it first, or the step is not allowed now).
var ErrStateChanged = errors.New("the announcement is not in a state this step starts from")

// Announcement is one announcement as stored. Content and Segment are JSON owned
// by pipeline/announce.
type Announcement struct {
	ID       int64     `json:"id"`
	Agency   string    `json:"agency"`
	OA       string    `json:"oa"` // the zalo sink (Official Account) it speaks through
	Title    string    `json:"title"`
	Content  string    `json:"content"`
	Segment  string    `json:"segment"`
	SendAt   time.Time `json:"send_at"`
	State    string    `json:"state"`
	Author   string    `json:"author"`
	Approver string    `json:"approver"`
	Sender   string    `json:"sender"`
	Reason   string    `json:"reason"` // why it was rejected, cancelled or held
	// Planned is the recipients counted at approval: it reserves the agency's caps
	// until the send ends. Recipients is how many rows the send wrote.
	Planned     int       `json:"planned"`
	Recipients  int       `json:"recipients"`
	Sent        int       `json:"sent"`
	Failed      int       `json:"failed"`
	Unreachable int       `json:"unreachable"`
	OptedOut    int       `json:"opted_out"`
	Cancelled   int       `json:"cancelled"`
	Paid        int       `json:"paid"`
	Cost        int64     `json:"cost"` // đồng
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at"`
}

// AnnouncementChange is what a step sets besides the state; empty fields are kept.
type AnnouncementChange struct {
	State    string
	Approver string
	Sender   string
	Reason   string
	Planned  *int
	SendAt   time.Time
	Finished bool // set finished_at to At
	At       time.Time
}

// AnnouncementRecipient is one citizen an announcement goes to, and how it went.
type AnnouncementRecipient struct {
	Announcement int64     `json:"announcement"`
	N            int       `json:"n"` // 1-based position in the send
	UserID       string    `json:"user_id"`
	Phone        string    `json:"phone"`
	State        string    `json:"state"` // pending, sending, sent, failed, unreachable, opted_out, cancelled
	Route        string    `json:"route"` // oa, zns, or "" when none could take it
	Code         int       `json:"code"`  // Zalo's error code when failed
	Detail       string    `json:"detail"`
	MessageID    string    `json:"message_id"`
	QuotaType    string    `json:"quota_type"`
	Cost         int64     `json:"cost"`
	AttemptAt    time.Time `json:"attempt_at"`
	DoneAt       time.Time `json:"done_at"`
	// Send, given to SettleRecipients with a message that went out, is its row
	// of zalo_sends, written in the same transaction as the settle: the OA's
	// messages of every kind are counted in one table (decision 0021). Not read
	// back.
	Send *ZaloSend `json:"-"`
}

// AnnouncementFilter selects announcements; empty fields select everything.
type AnnouncementFilter struct {
	Agencies []string // nil: every agency
	States   []string
	Limit    int
}

const announcementColumns = `id, agency, oa, title, content, segment, send_at, state, author, approver, sender, reason,
	planned, recipients, sent, failed, unreachable, opted_out, cancelled, paid, cost, created_at, updated_at, started_at, finished_at`

type announcementRow struct {
	ID          int64  `db:"id"`
	Agency      string `db:"agency"`
	OA          string `db:"oa"`
	Title       string `db:"title"`
	Content     string `db:"content"`
	Segment     string `db:"segment"`
	SendAt      dbTime `db:"send_at"`
	State       string `db:"state"`
	Author      string `db:"author"`
	Approver    string `db:"approver"`
	Sender      string `db:"sender"`
	Reason      string `db:"reason"`
	Planned     int    `db:"planned"`
	Recipients  int    `db:"recipients"`
	Sent        int    `db:"sent"`
	Failed      int    `db:"failed"`
	Unreachable int    `db:"unreachable"`
	OptedOut    int    `db:"opted_out"`
	Cancelled   int    `db:"cancelled"`
	Paid        int    `db:"paid"`
	Cost        int64  `db:"cost"`
	CreatedAt   dbTime `db:"created_at"`
	UpdatedAt   dbTime `db:"updated_at"`
	StartedAt   dbTime `db:"started_at"`
	FinishedAt  dbTime `db:"finished_at"`
}

func (r announcementRow) announcement() Announcement {
	return Announcement{ID: r.ID, Agency: r.Agency, OA: r.OA, Title: r.Title, Content: r.Content, Segment: r.Segment,
		SendAt: r.SendAt.Time, State: r.State, Author: r.Author, Approver: r.Approver, Sender: r.Sender, Reason: r.Reason,
		Planned: r.Planned, Recipients: r.Recipients, Sent: r.Sent, Failed: r.Failed, Unreachable: r.Unreachable,
		OptedOut: r.OptedOut, Cancelled: r.Cancelled, Paid: r.Paid, Cost: r.Cost, CreatedAt: r.CreatedAt.Time,
		UpdatedAt: r.UpdatedAt.Time, StartedAt: r.StartedAt.Time, FinishedAt: r.FinishedAt.Time}
}

func (s *sqlStore) auditTx(ctx context.Context, tx *sqlx.Tx, e AuditEntry) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)`),
		s.d.timeArg(e.At), pgtext.Text(e.Actor), pgtext.Text(e.Action), pgtext.Text(e.Detail))
	return err
}

// CreateAnnouncement stores a new announcement and its audit entry, whose Detail
// is prefixed with the new id; it returns the id.
func (s *sqlStore) CreateAnnouncement(ctx context.Context, a Announcement, audit AuditEntry) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &id, s.q(`INSERT INTO announcements (agency, oa, title, content, segment, send_at, state,
			author, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			a.Agency, a.OA, pgtext.Text(a.Title), pgtext.Text(a.Content), a.Segment, s.d.timeArg(a.SendAt), a.State,
			a.Author, s.d.timeArg(a.CreatedAt), s.d.timeArg(a.CreatedAt)); err != nil {
			return err
		}
		audit.Detail = fmt.Sprintf("announcement %d: %s", id, audit.Detail)
		return s.auditTx(ctx, tx, audit)
	})
	if err != nil {
		return 0, fmt.Errorf("store: create an announcement: %w", err)
	}
	return id, nil
}

// EditAnnouncement replaces the words, segment, send time and OA of an
// announcement in one of the states from, with its audit entry; the state becomes
// state.
func (s *sqlStore) EditAnnouncement(ctx context.Context, a Announcement, from []string, audit AuditEntry) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		args := []any{pgtext.Text(a.Title), pgtext.Text(a.Content), a.Segment, s.d.timeArg(a.SendAt), a.OA, a.State,
			s.d.timeArg(a.UpdatedAt), a.ID}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE announcements SET title = ?, content = ?, segment = ?, send_at = ?, oa = ?,
			state = ?, reason = '', updated_at = ? WHERE id = ? AND state IN (`+placeholders(len(from))+`)`), append(args, anys(from)...)...)
		if err != nil {
			return err
		}
		if err := s.changed(ctx, tx, res, a.ID); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("store: edit announcement %d: %w", a.ID, err)
	}
	return nil
}

// changed turns an update that matched no row into ErrNotFound or ErrStateChanged.
func (s *sqlStore) changed(ctx context.Context, tx *sqlx.Tx, res sql.Result, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	var one int
	if err := tx.GetContext(ctx, &one, s.q(`SELECT 1 FROM announcements WHERE id = ?`), id); errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	return ErrStateChanged
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, v := range ss {
		out[i] = v
	}
	return out
}

// MoveAnnouncement changes an announcement's state, if it is in one of the
// states from, with what ch sets and the audit entry, in one transaction.
// ErrStateChanged when it is in another state, ErrNotFound when there is none.
func (s *sqlStore) MoveAnnouncement(ctx context.Context, id int64, from []string, ch AnnouncementChange, audit AuditEntry) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		return s.moveTx(ctx, tx, id, from, ch, audit)
	})
	if err != nil {
		return fmt.Errorf("store: announcement %d: %w", id, err)
	}
	return nil
}

func (s *sqlStore) moveTx(ctx context.Context, tx *sqlx.Tx, id int64, from []string, ch AnnouncementChange, audit AuditEntry) error {
	set := []string{"state = ?", "updated_at = ?"}
	args := []any{ch.State, s.d.timeArg(ch.At)}
	add := func(col string, v any) {
		set = append(set, col+" = ?")
		args = append(args, v)
	}
	if ch.Approver != "" {
		add("approver", ch.Approver)
	}
	if ch.Sender != "" {
		add("sender", ch.Sender)
	}
	if ch.Reason != "" {
		add("reason", pgtext.Text(ch.Reason))
	}
	if ch.Planned != nil {
		add("planned", *ch.Planned)
	}
	if !ch.SendAt.IsZero() {
		add("send_at", s.d.timeArg(ch.SendAt))
	}
	if ch.Finished {
		add("finished_at", s.d.timeArg(ch.At))
	}
	args = append(args, id)
	res, err := tx.ExecContext(ctx, s.q(`UPDATE announcements SET `+strings.Join(set, ", ")+
		` WHERE id = ? AND state IN (`+placeholders(len(from))+`)`), append(args, anys(from)...)...)
	if err != nil {
		return err
	}
	if err := s.changed(ctx, tx, res, id); err != nil {
		return err
	}
	return s.auditTx(ctx, tx, audit)
}

// Announcement returns one announcement, or ErrNotFound.
func (s *sqlStore) Announcement(ctx context.Context, id int64) (Announcement, error) {
	var r announcementRow
	err := s.db.GetContext(ctx, &r, s.q(`SELECT `+announcementColumns+` FROM announcements WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Announcement{}, ErrNotFound
	}
	if err != nil {
		return Announcement{}, fmt.Errorf("store: read announcement %d: %w", id, err)
	}
	return r.announcement(), nil
}

// Announcements lists announcements, newest first.
func (s *sqlStore) Announcements(ctx context.Context, f AnnouncementFilter) ([]Announcement, error) {
	q, args := `SELECT `+announcementColumns+` FROM announcements WHERE 1 = 1`, []any{}
	if f.Agencies != nil {
		if len(f.Agencies) == 0 {
			return nil, nil
		}
		q += ` AND agency IN (` + placeholders(len(f.Agencies)) + `)`
		args = append(args, anys(f.Agencies)...)
	}
	if len(f.States) > 0 {
		q += ` AND state IN (` + placeholders(len(f.States)) + `)`
		args = append(args, anys(f.States)...)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	var rows []announcementRow
	if err := s.db.SelectContext(ctx, &rows, s.q(q), args...); err != nil {
		return nil, fmt.Errorf("store: list announcements: %w", err)
	}
	out := make([]Announcement, len(rows))
	for i, r := range rows {
		out[i] = r.announcement()
	}
	return out, nil
}

// AnnouncementUsage counts the messages an agency's announcements take within
// [from, to) by send time, leaving out announcement except: what was sent for
// those that ended, what was planned for those approved and not ended.
func (s *sqlStore) AnnouncementUsage(ctx context.Context, agency string, from, to time.Time, except int64) (int, error) {
	var n sql.NullInt64
	err := s.db.GetContext(ctx, &n, s.q(`SELECT SUM(CASE WHEN state IN ('sent', 'cancelled') THEN sent ELSE planned END)
		FROM announcements WHERE agency = ? AND send_at >= ? AND send_at < ? AND id <> ?
		AND state IN ('approved', 'scheduled', 'sending', 'sent', 'cancelled')`),
		agency, s.d.timeArg(from), s.d.timeArg(to), except)
	if err != nil {
		return 0, fmt.Errorf("store: count an agency's announcement messages: %w", err)
	}
	return int(n.Int64), nil
}

// StartAnnouncement moves a scheduled announcement to sending and writes its
// recipients (numbered from 1, pending), with the audit entry, in one
// transaction; ErrStateChanged when it was not scheduled (already started).
func (s *sqlStore) StartAnnouncement(ctx context.Context, id int64, rs []AnnouncementRecipient, at time.Time, audit AuditEntry) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE announcements SET state = 'sending', started_at = ?, updated_at = ?,
			recipients = ? WHERE id = ? AND state = 'scheduled'`), s.d.timeArg(at), s.d.timeArg(at), len(rs), id)
		if err != nil {
			return err
		}
		if err := s.changed(ctx, tx, res, id); err != nil {
			return err
		}
		const per = 500
		for lo := 0; lo < len(rs); lo += per {
			hi := min(lo+per, len(rs))
			var b strings.Builder
			args := make([]any, 0, 4*(hi-lo))
			b.WriteString(`INSERT INTO announcement_recipients (announcement, n, user_id, phone, state) VALUES `)
			for i := lo; i < hi; i++ {
				if i > lo {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, ?, ?, 'pending')")
				args = append(args, id, i+1, rs[i].UserID, rs[i].Phone)
			}
			if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
				return err
			}
		}
		return s.auditTx(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("store: start announcement %d: %w", id, err)
	}
	return nil
}

const recipientColumns = `announcement, n, user_id, phone, state, route, code, detail, message_id, quota_type, cost, attempt_at, done_at`

type recipientRow struct {
	Announcement int64  `db:"announcement"`
	N            int    `db:"n"`
	UserID       string `db:"user_id"`
	Phone        string `db:"phone"`
	State        string `db:"state"`
	Route        string `db:"route"`
	Code         int    `db:"code"`
	Detail       string `db:"detail"`
	MessageID    string `db:"message_id"`
	QuotaType    string `db:"quota_type"`
	Cost         int64  `db:"cost"`
	AttemptAt    dbTime `db:"attempt_at"`
	DoneAt       dbTime `db:"done_at"`
}

func (r recipientRow) recipient() AnnouncementRecipient {
	return AnnouncementRecipient{Announcement: r.Announcement, N: r.N, UserID: r.UserID, Phone: r.Phone, State: r.State,
		Route: r.Route, Code: r.Code, Detail: r.Detail, MessageID: r.MessageID, QuotaType: r.QuotaType, Cost: r.Cost,
		AttemptAt: r.AttemptAt.Time, DoneAt: r.DoneAt.Time}
}

// AnnouncementRecipients lists an announcement's recipients in order, after the
// position after, up to limit (0: all); state "" means any.
func (s *sqlStore) AnnouncementRecipients(ctx context.Context, id int64, state string, after, limit int) ([]AnnouncementRecipient, error) {
	q, args := `SELECT `+recipientColumns+` FROM announcement_recipients WHERE announcement = ? AND n > ?`, []any{id, after}
	if state != "" {
		q += ` AND state = ?`
		args = append(args, state)
	}
	q += ` ORDER BY n`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	var rows []recipientRow
	if err := s.db.SelectContext(ctx, &rows, s.q(q), args...); err != nil {
		return nil, fmt.Errorf("store: read recipients of announcement %d: %w", id, err)
	}
	out := make([]AnnouncementRecipient, len(rows))
	for i, r := range rows {
		out[i] = r.recipient()
	}
	return out, nil
}

// ClaimRecipients marks up to limit pending recipients of the announcement as
// sending, with the attempt time, and returns them; the claim is committed before
// any of them is sent.
func (s *sqlStore) ClaimRecipients(ctx context.Context, id int64, limit int, at time.Time) ([]AnnouncementRecipient, error) {
	var out []AnnouncementRecipient
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var rows []recipientRow
		if err := tx.SelectContext(ctx, &rows, s.q(`SELECT `+recipientColumns+` FROM announcement_recipients
			WHERE announcement = ? AND state = 'pending' ORDER BY n LIMIT ?`), id, limit); err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		lo, hi := rows[0].N, rows[len(rows)-1].N
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE announcement_recipients SET state = 'sending', attempt_at = ?
			WHERE announcement = ? AND state = 'pending' AND n >= ? AND n <= ?`), s.d.timeArg(at), id, lo, hi); err != nil {
			return err
		}
		out = make([]AnnouncementRecipient, len(rows))
		for i, r := range rows {
			out[i] = r.recipient()
			out[i].State, out[i].AttemptAt = "sending", at
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim recipients of announcement %d: %w", id, err)
	}
	return out, nil
}

// SettleRecipients records how each claimed recipient's send ended and adds them
// to the announcement's counters, in one transaction. A recipient that is no
// longer sending (settled already) is left as it is and not counted again.
func (s *sqlStore) SettleRecipients(ctx context.Context, id int64, rs []AnnouncementRecipient) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		count := map[string]int{}
		paid, cost := 0, int64(0)
		for _, r := range rs {
			res, err := tx.ExecContext(ctx, s.q(`UPDATE announcement_recipients SET state = ?, route = ?, code = ?, detail = ?,
				message_id = ?, quota_type = ?, cost = ?, done_at = ? WHERE announcement = ? AND n = ? AND state = 'sending'`),
				r.State, r.Route, r.Code, pgtext.Text(r.Detail), r.MessageID, r.QuotaType, r.Cost, s.d.timeArg(r.DoneAt), id, r.N)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				continue
			}
			if r.Send != nil {
				z := r.Send
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO zalo_sends
					(sink, event_id, part, parts, oa_id, route, agency, rule, month, message_id, quota_type, reason, dry_run, request, at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (sink, event_id, part) DO NOTHING`),
					z.Sink, z.EventID, z.Part, z.Parts, z.OAID, z.Route, z.Agency, z.Rule, z.Month, z.MessageID, z.QuotaType,
					z.Reason, z.DryRun, z.Request, s.d.timeArg(z.At)); err != nil {
					return err
				}
			}
			count[r.State]++
			if r.Cost > 0 {
				paid++
				cost += r.Cost
			}
		}
		_, err := tx.ExecContext(ctx, s.q(`UPDATE announcements SET sent = sent + ?, failed = failed + ?,
			unreachable = unreachable + ?, opted_out = opted_out + ?, cancelled = cancelled + ?, paid = paid + ?, cost = cost + ?
			WHERE id = ?`), count["sent"], count["failed"], count["unreachable"], count["opted_out"], count["cancelled"], paid, cost, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: settle recipients of announcement %d: %w", id, err)
	}
	return nil
}

// CancelRecipients marks the announcement's pending recipients cancelled and
// returns how many.
func (s *sqlStore) CancelRecipients(ctx context.Context, id int64, at time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE announcement_recipients SET state = 'cancelled', done_at = ?
			WHERE announcement = ? AND state = 'pending'`), s.d.timeArg(at), id)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE announcements SET cancelled = cancelled + ? WHERE id = ?`), n, id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: cancel recipients of announcement %d: %w", id, err)
	}
	return int(n), nil
}

// RecipientStates counts an announcement's recipients by state.
func (s *sqlStore) RecipientStates(ctx context.Context, id int64) (map[string]int, error) {
	var rows []struct {
		State string `db:"state"`
		N     int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT state, COUNT(*) AS n FROM announcement_recipients
		WHERE announcement = ? GROUP BY state`), id); err != nil {
		return nil, fmt.Errorf("store: count recipients of announcement %d: %w", id, err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}

// Followers lists the OA's followers who still follow, in user order, after the
// user id after, up to limit; stopped ones (HUY TIN) included, with StoppedAt.
func (s *sqlStore) Followers(ctx context.Context, oaID, after string, limit int) ([]ZaloFollower, error) {
	var rows []zaloFollowerRow
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+zaloFollowerColumns+` FROM zalo_followers
		WHERE oa_id = ? AND followed = ? AND user_id > ? ORDER BY user_id LIMIT ?`), oaID, true, after, limit); err != nil {
		return nil, fmt.Errorf("store: list followers: %w", err)
	}
	out := make([]ZaloFollower, len(rows))
	for i, r := range rows {
		out[i] = r.follower()
	}
	return out, nil
}

// OpenRecords lists the (source, key) of records whose facts are of kind and
// open at one of the agencies, in key order.
func (s *sqlStore) OpenRecords(ctx context.Context, kind string, agencies []string) ([]FactRecord, error) {
	if len(agencies) == 0 {
		return nil, nil
	}
	var rows []FactRecord
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT n.source, n.entity, n.key, g.agency FROM snapshot n
		JOIN fact_groups g ON g.id = n.fact_group WHERE g.kind = ? AND n.fact_state = 1
		AND g.agency IN (`+placeholders(len(agencies))+`) ORDER BY n.source, n.key`), append([]any{kind}, anys(agencies)...)...); err != nil {
		return nil, fmt.Errorf("store: list open records: %w", err)
	}
	return rows, nil
}

// FactRecord names a record that has facts.
type FactRecord struct {
	Source string `db:"source"`
	Entity string `db:"entity"`
	Key    string `db:"key"`
	Agency string `db:"agency"`
}

// PlaceFollowers lists the OA's users subscribed to any topic in one of the
// places (they told the OA where they live), each once, in user order.
func (s *sqlStore) PlaceFollowers(ctx context.Context, oaID string, places []string) ([]string, error) {
	if len(places) == 0 {
		return nil, nil
	}
	var out []string
	if err := s.db.SelectContext(ctx, &out, s.q(`SELECT DISTINCT user_id FROM zalo_subscriptions WHERE oa_id = ?
		AND place IN (`+placeholders(len(places))+`) ORDER BY user_id`), append([]any{oaID}, anys(places)...)...); err != nil {
		return nil, fmt.Errorf("store: list followers in places: %w", err)
	}
	return out, nil
}

// OAMessages counts the proactive messages the OA sink sent by OA route within
// [from, to) — notices and announcements alike, from zalo_sends (replies to a
// citizen's message, quota type "reply", draw on another allowance): what they
// drew on the OA's proactive quota. Dry runs count, so a rehearsal shows the
// quota as the real send would.
func (s *sqlStore) OAMessages(ctx context.Context, oa string, from, to time.Time) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM zalo_sends
		WHERE sink = ? AND route = 'oa' AND quota_type <> 'reply' AND at >= ? AND at < ?`),
		oa, s.d.timeArg(from), s.d.timeArg(to))
	if err != nil {
		return 0, fmt.Errorf("store: count an OA's proactive messages: %w", err)
	}
	return n, nil
}
