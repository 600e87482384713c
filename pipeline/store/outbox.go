package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

type pendingRow struct {
	Seq        int64  `db:"seq"`
	Sink       string `db:"sink"`
	Attempts   int    `db:"attempts"`
	NextAt     dbTime `db:"next_at"`
	LastErr    string `db:"last_error"`
	ReplayedAt dbTime `db:"replayed_at"`
	Payload    []byte `db:"payload"`
}

// limitClause renders a LIMIT; limit <= 0 means no limit.
func limitClause(limit int) string {
	if limit <= 0 {
		return ""
	}
	return " LIMIT " + strconv.Itoa(limit)
}

// forUpdate locks the rows a SELECT reads until the transaction ends, on
// PostgreSQL; SQLite's IMMEDIATE transactions already run one at a time.
func (d dialect) forUpdate() string {
	if d == postgresDialect {
		return " FOR UPDATE"
	}
	return ""
}

// Pending returns the sink's due outbox rows in seq order; limit <= 0 means all.
//
// A row is returned only when no earlier row of the same record (source, entity,
// key) is still waiting for the sink, due or not, and no earlier event of the
// record is a holding dead letter of the sink: events of one record are delivered
// in commit order, an event never overtakes an earlier one of its record that
// failed, and that holds across restarts because it is the store, not the
// dispatcher, that remembers. Different records do not wait for each other. Both
// checks are look-ups in (sink, record, seq) indexes.
func (s *sqlStore) Pending(ctx context.Context, sink string, now time.Time, limit int) ([]Pending, error) {
	var rows []pendingRow
	at := s.d.timeArg(now)
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT o.seq, o.sink, o.attempts, o.next_at, o.last_error, o.replayed_at, e.payload
		FROM outbox o JOIN events e ON e.seq = o.seq
		WHERE o.sink = ? AND o.next_at <= ?
		  AND NOT EXISTS (SELECT 1 FROM outbox h WHERE h.sink = o.sink AND h.record = o.record AND h.seq < o.seq)
		  AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.sink = o.sink AND d.record = o.record AND d.seq < o.seq
		                  AND d.state = '`+string(DeadHolding)+`')
		ORDER BY o.seq`+limitClause(limit)), sink, at)
	if err != nil {
		return nil, fmt.Errorf("store: read outbox of sink %q: %w", sink, err)
	}
	out := make([]Pending, len(rows))
	var lazy []*pipeline.Event
	for i, r := range rows {
		out[i] = Pending{Seq: r.Seq, Sink: r.Sink, Attempts: r.Attempts, NextAt: r.NextAt.Time, LastErr: r.LastErr, ReplayedAt: r.ReplayedAt.Time}
		isLazy, err := decodeEvent(r.Payload, &out[i].Event)
		if err != nil {
			return nil, fmt.Errorf("store: read outbox of sink %q: decode event seq %d: %w", sink, r.Seq, err)
		}
		if isLazy {
			lazy = append(lazy, &out[i].Event)
		}
	}
	if err := s.fillLazy(ctx, s.db, lazy); err != nil {
		return nil, fmt.Errorf("store: read outbox of sink %q: %w", sink, err)
	}
	return out, nil
}

// Delivered removes the outbox row and records the delivery; ErrNotFound when the
// row is not in the outbox (for example another worker delivered it already).
//
// The record's older dead letters of the sink are marked superseded first, then
// any older outbox row of the record is moved to dead letters as superseded: only
// a replay racing this delivery can have put one there, and sending it now would
// give the consumer an older version after a newer one. Dead letters are locked
// before outbox rows, in the same order Replay takes them, so the two cannot
// deadlock on PostgreSQL.
func (s *sqlStore) Delivered(ctx context.Context, sink string, seq int64, attempts int, at time.Time) error {
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var record string
		err := tx.GetContext(ctx, &record, s.q(`SELECT record FROM outbox WHERE sink = ? AND seq = ?`), sink, seq)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := s.supersedeDead(ctx, tx, sink, record, seq, at); err != nil {
			return err
		}
		id, _, err := s.takeOutboxRow(ctx, tx, sink, seq)
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.q(`INSERT INTO deliveries (sink, event_id, seq, attempts, delivered_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (sink, event_id) DO NOTHING`),
			sink, id, seq, attempts, s.d.timeArg(at)); err != nil {
			return err
		}
		return s.supersedeOutbox(ctx, tx, sink, record, seq, at)
	})
	if err != nil {
		return fmt.Errorf("store: record delivery of seq %d to sink %q: %w", seq, sink, err)
	}
	return nil
}

// supersedeDead marks the record's replayable dead letters older than seq
// superseded: seq reached the sink, so they must never be sent.
func (s *sqlStore) supersedeDead(ctx context.Context, tx *sqlx.Tx, sink, record string, seq int64, at time.Time) error {
	if record == "" {
		return nil // a row from before records were kept: nothing to match on
	}
	_, err := tx.ExecContext(ctx, s.q(`UPDATE dead_letters SET state = ?, state_at = ?
		WHERE sink = ? AND record = ? AND seq < ? AND state IN (?, ?)`),
		string(DeadSuperseded), s.d.timeArg(at), sink, record, seq, string(DeadHolding), string(DeadOpen))
	return err
}

// supersedeOutbox moves the record's outbox rows older than seq to dead letters
// as superseded.
func (s *sqlStore) supersedeOutbox(ctx context.Context, tx *sqlx.Tx, sink, record string, seq int64, at time.Time) error {
	if record == "" {
		return nil
	}
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO dead_letters (sink, seq, event_id, attempts, reason, at, record, state, state_at)
		SELECT o.sink, o.seq, e.id, o.attempts, ?, ?, o.record, ?, ?
		FROM outbox o JOIN events e ON e.seq = o.seq
		WHERE o.sink = ? AND o.record = ? AND o.seq < ?`),
		fmt.Sprintf("superseded: a newer event of the record (seq %d) reached the sink first", seq),
		s.d.timeArg(at), string(DeadSuperseded), s.d.timeArg(at), sink, record, seq)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(`DELETE FROM outbox WHERE sink = ? AND record = ? AND seq < ?`), sink, record, seq)
	return err
}

// Retry records a failed attempt; ErrNotFound when the row is not in the outbox.
func (s *sqlStore) Retry(ctx context.Context, sink string, seq int64, attempts int, nextAt time.Time, errMsg string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE sink = ? AND seq = ?`),
		attempts, s.d.timeArg(nextAt), pgtext.Text(errMsg), sink, seq)
	if err == nil {
		err = oneRow(res)
	}
	if err != nil {
		return fmt.Errorf("store: record retry of seq %d for sink %q: %w", seq, sink, err)
	}
	return nil
}

// Dead moves the outbox row to dead letters; ErrNotFound when it is not in the
// outbox.
func (s *sqlStore) Dead(ctx context.Context, sink string, seq int64, attempts int, reason string, at time.Time, onDead OnDead) error {
	state := DeadHolding
	switch onDead {
	case OnDeadHold, "":
	case OnDeadSkip:
		state = DeadOpen
	default:
		return fmt.Errorf("store: move seq %d of sink %q to dead letters: unknown on_dead %q", seq, sink, onDead)
	}
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		id, record, err := s.takeOutboxRow(ctx, tx, sink, seq)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO dead_letters (sink, seq, event_id, attempts, reason, at, record, state)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), sink, seq, id, attempts, pgtext.Text(reason), s.d.timeArg(at), record, string(state))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: move seq %d of sink %q to dead letters: %w", seq, sink, err)
	}
	return nil
}

// takeOutboxRow deletes one outbox row and returns its event's id and its record.
func (s *sqlStore) takeOutboxRow(ctx context.Context, tx *sqlx.Tx, sink string, seq int64) (id, record string, err error) {
	err = tx.GetContext(ctx, &record, s.q(`DELETE FROM outbox WHERE sink = ? AND seq = ? RETURNING record`), sink, seq)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	if err != nil {
		return "", "", err
	}
	if err := tx.GetContext(ctx, &id, s.q(`SELECT id FROM events WHERE seq = ?`), seq); err != nil {
		return "", "", fmt.Errorf("event of seq %d: %w", seq, err)
	}
	return id, record, nil
}

type deadRow struct {
	ID       int64     `db:"id"`
	Sink     string    `db:"sink"`
	Seq      int64     `db:"seq"`
	Attempts int       `db:"attempts"`
	Reason   string    `db:"reason"`
	At       dbTime    `db:"at"`
	State    DeadState `db:"state"`
	StateAt  dbTime    `db:"state_at"`
	Held     int       `db:"held"`
	Payload  []byte    `db:"payload"`
}

// DeadLetters returns the newest limit dead letters (all when limit <= 0) of the
// sink ("" for every sink), oldest first, each holding one with the number of its
// record's events waiting behind it.
func (s *sqlStore) DeadLetters(ctx context.Context, sink string, limit int) ([]DeadLetter, error) {
	where, args := "", []any{}
	if sink != "" {
		where, args = " WHERE d.sink = ?", append(args, sink)
	}
	var rows []deadRow
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT d.id, d.sink, d.seq, d.attempts, d.reason, d.at, d.state, d.state_at,
		CASE WHEN d.state = '`+string(DeadHolding)+`'
		     THEN (SELECT COUNT(*) FROM outbox o WHERE o.sink = d.sink AND o.record = d.record AND o.seq > d.seq)
		     ELSE 0 END AS held,
		e.payload
		FROM dead_letters d JOIN events e ON e.seq = d.seq`+where+` ORDER BY d.id DESC`+limitClause(limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list dead letters: %w", err)
	}
	out := make([]DeadLetter, len(rows))
	var lazy []*pipeline.Event
	for i, r := range rows {
		dl := &out[len(rows)-1-i]
		*dl = DeadLetter{ID: r.ID, Sink: r.Sink, Seq: r.Seq, Attempts: r.Attempts, Reason: r.Reason, At: r.At.Time,
			State: r.State, StateAt: r.StateAt.Time, Held: r.Held}
		isLazy, err := decodeEvent(r.Payload, &dl.Event)
		if err != nil {
			return nil, fmt.Errorf("store: list dead letters: decode event of dead letter %d: %w", r.ID, err)
		}
		if isLazy {
			lazy = append(lazy, &dl.Event)
		}
	}
	if err := s.fillLazy(ctx, s.db, lazy); err != nil {
		return nil, fmt.Errorf("store: list dead letters: %w", err)
	}
	return out, nil
}

// deadRef is what Replay and Dismiss need of a dead letter.
type deadRef struct {
	ID     int64     `db:"id"`
	Sink   string    `db:"sink"`
	Seq    int64     `db:"seq"`
	Record string    `db:"record"`
	State  DeadState `db:"state"`
}

// lockDead reads the dead letters with the given ids, locking them for the
// transaction (see Delivered), in id order.
func (s *sqlStore) lockDead(ctx context.Context, tx *sqlx.Tx, ids []int64) ([]deadRef, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var dead []deadRef
	err := forEachIn(s.d, "id", ids, func(cond string, args []any) error {
		var chunk []deadRef
		if err := tx.SelectContext(ctx, &chunk, s.q(`SELECT id, sink, seq, record, state FROM dead_letters WHERE `+cond+
			` ORDER BY id`+s.d.forUpdate()), args...); err != nil {
			return err
		}
		dead = append(dead, chunk...)
		return nil
	})
	return dead, err
}

// restartAge makes the record's outbox rows after seq count their age from at:
// they were waiting behind a dead letter that is now replayed or dismissed.
func (s *sqlStore) restartAge(ctx context.Context, tx *sqlx.Tx, d deadRef, at time.Time) error {
	if d.Record == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.q(`UPDATE outbox SET replayed_at = ? WHERE sink = ? AND record = ? AND seq > ?`),
		s.d.timeArg(at), d.Sink, d.Record, d.Seq)
	return err
}

// Replay puts the replayable dead letters with the given ids back into the outbox,
// due at at with zero attempts and their age counting from at, and removes them
// from dead letters. Superseded and dismissed ones are left alone and counted; ids
// that do not exist are ignored.
func (s *sqlStore) Replay(ctx context.Context, ids []int64, at time.Time) (ReplayResult, error) {
	var res ReplayResult
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		res = ReplayResult{}
		dead, err := s.lockDead(ctx, tx, ids)
		if err != nil {
			return err
		}
		insert, err := tx.PreparexContext(ctx, s.q(`INSERT INTO outbox (sink, seq, attempts, next_at, last_error, record, replayed_at)
			SELECT ?, e.seq, 0, ?, '', e.source || '/' || e.entity || '/' || e.key, ? FROM events e WHERE e.seq = ?
			ON CONFLICT (sink, seq) DO NOTHING`))
		if err != nil {
			return err
		}
		defer insert.Close()
		replayed := make([]int64, 0, len(dead))
		for _, d := range dead {
			switch {
			case d.State == DeadSuperseded:
				res.Superseded++
				continue
			case d.State == DeadDismissed:
				res.Dismissed++
				continue
			}
			if _, err := insert.ExecContext(ctx, d.Sink, s.d.timeArg(at), s.d.timeArg(at), d.Seq); err != nil {
				return err
			}
			if err := s.restartAge(ctx, tx, d, at); err != nil {
				return err
			}
			replayed = append(replayed, d.ID)
		}
		res.Replayed = len(replayed)
		return forEachIn(s.d, "id", replayed, func(cond string, args []any) error {
			_, err := tx.ExecContext(ctx, s.q(`DELETE FROM dead_letters WHERE `+cond), args...)
			return err
		})
	})
	if err != nil {
		return ReplayResult{}, fmt.Errorf("store: replay %d dead letters: %w", len(ids), err)
	}
	return res, nil
}

// Dismiss marks the replayable dead letters with the given ids dismissed; the
// events they held go on, their age counting from at.
func (s *sqlStore) Dismiss(ctx context.Context, ids []int64, at time.Time) (int, error) {
	var n int
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		n = 0
		dead, err := s.lockDead(ctx, tx, ids)
		if err != nil {
			return err
		}
		for _, d := range dead {
			if !d.State.Replayable() {
				continue
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE dead_letters SET state = ?, state_at = ? WHERE id = ?`),
				string(DeadDismissed), s.d.timeArg(at), d.ID); err != nil {
				return err
			}
			if d.State == DeadHolding {
				if err := s.restartAge(ctx, tx, d, at); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: dismiss %d dead letters: %w", len(ids), err)
	}
	return n, nil
}

// heldCounts fills Stats.HeldRecords and Stats.HeldEvents.
func (s *sqlStore) heldCounts(ctx context.Context, st *Stats) error {
	var err error
	st.HeldRecords, err = s.countQuery(ctx, "held records", `SELECT sink, COUNT(DISTINCT record) FROM dead_letters
		WHERE state = '`+string(DeadHolding)+`' GROUP BY sink`)
	if err != nil {
		return err
	}
	st.HeldEvents, err = s.countQuery(ctx, "held events", `SELECT o.sink, COUNT(*) FROM outbox o
		WHERE EXISTS (SELECT 1 FROM dead_letters d WHERE d.sink = o.sink AND d.record = o.record AND d.seq < o.seq
		              AND d.state = '`+string(DeadHolding)+`')
		GROUP BY o.sink`)
	return err
}

// countQuery runs a constant query of (name, count) rows into a map.
func (s *sqlStore) countQuery(ctx context.Context, what, query string) (map[string]int, error) {
	out := map[string]int{}
	err := queryEach(ctx, s.db, query, nil, func(r *sqlx.Rows) error {
		var k string
		var n int
		if err := r.Scan(&k, &n); err != nil {
			return err
		}
		out[k] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: stats: %s: %w", what, err)
	}
	return out, nil
}
