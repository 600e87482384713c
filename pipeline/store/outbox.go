package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
)

type pendingRow struct {
	Seq      int64  `db:"seq"`
	Sink     string `db:"sink"`
	Attempts int    `db:"attempts"`
	NextAt   dbTime `db:"next_at"`
	LastErr  string `db:"last_error"`
	Payload  []byte `db:"payload"`
}

// limitClause renders a LIMIT; limit <= 0 means no limit.
func limitClause(limit int) string {
	if limit <= 0 {
		return ""
	}
	return " LIMIT " + strconv.Itoa(limit)
}

// Pending returns the sink's due outbox rows in seq order; limit <= 0 means all.
//
// A row is returned only when no earlier row of the same record (source, entity,
// key) is still waiting for the sink, due or not: events of one record are delivered
// in commit order, an event never overtakes an earlier one of its record that failed,
// and that holds across restarts because it is the store, not the dispatcher, that
// remembers. Different records do not wait for each other.
func (s *sqlStore) Pending(ctx context.Context, sink string, now time.Time, limit int) ([]Pending, error) {
	var rows []pendingRow
	at := s.d.timeArg(now)
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT o.seq, o.sink, o.attempts, o.next_at, o.last_error, e.payload
		FROM outbox o JOIN events e ON e.seq = o.seq
		WHERE o.sink = ? AND o.next_at <= ?
		  AND NOT EXISTS (SELECT 1 FROM outbox h WHERE h.sink = o.sink AND h.record = o.record AND h.seq < o.seq)
		ORDER BY o.seq`+limitClause(limit)), sink, at)
	if err != nil {
		return nil, fmt.Errorf("store: read outbox of sink %q: %w", sink, err)
	}
	out := make([]Pending, len(rows))
	for i, r := range rows {
		p := Pending{Seq: r.Seq, Sink: r.Sink, Attempts: r.Attempts, NextAt: r.NextAt.Time, LastErr: r.LastErr}
		if err := decodeJSON(r.Payload, &p.Event); err != nil {
			return nil, fmt.Errorf("store: read outbox of sink %q: decode event seq %d: %w", sink, r.Seq, err)
		}
		out[i] = p
	}
	return out, nil
}

// Delivered removes the outbox row and records the delivery; ErrNotFound when the
// row is not in the outbox (for example another worker delivered it already).
func (s *sqlStore) Delivered(ctx context.Context, sink string, seq int64, attempts int, at time.Time) error {
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		id, err := s.takeOutboxRow(ctx, tx, sink, seq)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO deliveries (sink, event_id, seq, attempts, delivered_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (sink, event_id) DO NOTHING`),
			sink, id, seq, attempts, s.d.timeArg(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: record delivery of seq %d to sink %q: %w", seq, sink, err)
	}
	return nil
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

// Dead moves the outbox row to dead letters; ErrNotFound when it is not in the outbox.
func (s *sqlStore) Dead(ctx context.Context, sink string, seq int64, attempts int, reason string, at time.Time) error {
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		id, err := s.takeOutboxRow(ctx, tx, sink, seq)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO dead_letters (sink, seq, event_id, attempts, reason, at)
			VALUES (?, ?, ?, ?, ?, ?)`), sink, seq, id, attempts, pgtext.Text(reason), s.d.timeArg(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: move seq %d of sink %q to dead letters: %w", seq, sink, err)
	}
	return nil
}

// takeOutboxRow deletes one outbox row and returns its event's id.
func (s *sqlStore) takeOutboxRow(ctx context.Context, tx *sqlx.Tx, sink string, seq int64) (string, error) {
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM outbox WHERE sink = ? AND seq = ?`), sink, seq)
	if err == nil {
		err = oneRow(res)
	}
	if err != nil {
		return "", err
	}
	var id string
	if err := tx.GetContext(ctx, &id, s.q(`SELECT id FROM events WHERE seq = ?`), seq); err != nil {
		return "", fmt.Errorf("event of seq %d: %w", seq, err)
	}
	return id, nil
}

type deadRow struct {
	ID       int64  `db:"id"`
	Sink     string `db:"sink"`
	Seq      int64  `db:"seq"`
	Attempts int    `db:"attempts"`
	Reason   string `db:"reason"`
	At       dbTime `db:"at"`
	Payload  []byte `db:"payload"`
}

// DeadLetters returns the newest limit dead letters (all when limit <= 0) of the
// sink ("" for every sink), oldest first.
func (s *sqlStore) DeadLetters(ctx context.Context, sink string, limit int) ([]DeadLetter, error) {
	where, args := "", []any{}
	if sink != "" {
		where, args = " WHERE d.sink = ?", append(args, sink)
	}
	var rows []deadRow
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT d.id, d.sink, d.seq, d.attempts, d.reason, d.at, e.payload
		FROM dead_letters d JOIN events e ON e.seq = d.seq`+where+` ORDER BY d.id DESC`+limitClause(limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list dead letters: %w", err)
	}
	out := make([]DeadLetter, len(rows))
	for i, r := range rows {
		dl := DeadLetter{ID: r.ID, Sink: r.Sink, Seq: r.Seq, Attempts: r.Attempts, Reason: r.Reason, At: r.At.Time}
		if err := decodeJSON(r.Payload, &dl.Event); err != nil {
			return nil, fmt.Errorf("store: list dead letters: decode event of dead letter %d: %w", r.ID, err)
		}
		out[len(rows)-1-i] = dl
	}
	return out, nil
}

// deadRef is what Replay needs of a dead letter.
type deadRef struct {
	ID   int64  `db:"id"`
	Sink string `db:"sink"`
	Seq  int64  `db:"seq"`
}

// Replay puts the dead letters with the given ids back into the outbox, due at at
// with zero attempts, and removes them from dead letters. Ids that do not exist are
// ignored; the count says how many were replayed.
func (s *sqlStore) Replay(ctx context.Context, ids []int64, at time.Time) (int, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var n int
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		n = 0
		var dead []deadRef
		if err := forEachIn(s.d, "id", ids, func(cond string, args []any) error {
			var chunk []deadRef
			if err := tx.SelectContext(ctx, &chunk, s.q(`SELECT id, sink, seq FROM dead_letters WHERE `+cond), args...); err != nil {
				return err
			}
			dead = append(dead, chunk...)
			return nil
		}); err != nil {
			return err
		}
		insert, err := tx.PreparexContext(ctx, s.q(`INSERT INTO outbox (sink, seq, attempts, next_at, last_error, record)
			SELECT ?, e.seq, 0, ?, '', e.source || '/' || e.entity || '/' || e.key FROM events e WHERE e.seq = ?
			ON CONFLICT (sink, seq) DO NOTHING`))
		if err != nil {
			return err
		}
		defer insert.Close()
		found := make([]int64, 0, len(dead))
		for _, d := range dead {
			if _, err := insert.ExecContext(ctx, d.Sink, s.d.timeArg(at), d.Seq); err != nil {
				return err
			}
			found = append(found, d.ID)
		}
		n = len(found)
		return forEachIn(s.d, "id", found, func(cond string, args []any) error {
			_, err := tx.ExecContext(ctx, s.q(`DELETE FROM dead_letters WHERE `+cond), args...)
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("store: replay %d dead letters: %w", len(ids), err)
	}
	return n, nil
}
