package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Each record's queue for a sink has at most one head: its oldest waiting row,
// unless a holding dead letter of an earlier event of the record holds it. Pending
// reads heads only (index outbox_heads). The functions here keep the flag right
// when rows leave the queue or come back to it.

// shareEvents takes the events lock (see lockEvents) shared, on PostgreSQL, for
// the rest of the transaction: settling deliveries moves heads, so it must not
// interleave with a commit deciding whether a new row is a head, nor with a
// replay or a dismissal rearranging a record's queue, which take the lock
// exclusively. Settles of different deliveries run side by side. SQLite runs one
// writer at a time and needs nothing.
func (d dialect) shareEvents(ctx context.Context, tx *sqlx.Tx) error {
	if d != postgresDialect {
		return nil
	}
	_, err := tx.ExecContext(ctx,
		`SELECT pg_advisory_xact_lock_shared(hashtext('egov-bridge/events/' || coalesce(current_schema(), '')))`)
	if err != nil {
		return fmt.Errorf("take events lock (shared): %w", err)
	}
	return nil
}

// recordsFrom is a FROM item listing the given records as r(record), with its one
// bind argument: an array on PostgreSQL, a JSON array read by json_each on SQLite.
// One argument, whatever the number of records.
func (d dialect) recordsFrom(records []string) (string, any, error) {
	if d == postgresDialect {
		return `unnest(CAST(? AS text[])) AS r(record)`, pq.Array(records), nil
	}
	b, err := json.Marshal(records)
	if err != nil {
		return "", nil, err
	}
	return `(SELECT value AS record FROM json_each(?)) AS r`, string(b), nil
}

// nextRows returns each record's oldest row still waiting for sink; records
// with none are absent. Each look-up is one index seek (sink, record, seq).
func (s *sqlStore) nextRows(ctx context.Context, tx *sqlx.Tx, sink string, records []string) (map[string]int64, error) {
	out := make(map[string]int64, len(records))
	if len(records) == 0 {
		return out, nil
	}
	from, arg, err := s.d.recordsFrom(records)
	if err != nil {
		return nil, err
	}
	err = queryEach(ctx, tx, s.q(`SELECT r.record, (SELECT MIN(o.seq) FROM outbox o WHERE o.sink = ? AND o.record = r.record)
		FROM `+from), []any{sink, arg}, func(r *sqlx.Rows) error {
		var rec string
		var seq sql.NullInt64
		if err := r.Scan(&rec, &seq); err != nil {
			return err
		}
		if seq.Valid {
			out[rec] = seq.Int64
		}
		return nil
	})
	return out, err
}

// oldestHolding returns, per record, the seq of its oldest holding dead letter of
// sink; records with none are absent.
func (s *sqlStore) oldestHolding(ctx context.Context, tx *sqlx.Tx, sink string, records []string) (map[string]int64, error) {
	out := map[string]int64{}
	err := forEachIn(s.d, "record", records, func(cond string, in []any) error {
		return queryEach(ctx, tx, s.q(`SELECT record, MIN(seq) FROM dead_letters WHERE sink = ? AND state = ? AND `+cond+
			` GROUP BY record`), append([]any{sink, string(DeadHolding)}, in...), func(r *sqlx.Rows) error {
			var rec string
			var seq int64
			if err := r.Scan(&rec, &seq); err != nil {
				return err
			}
			out[rec] = seq
			return nil
		})
	})
	return out, err
}

// promoteNext makes the next waiting row of each record its head, unless a
// holding dead letter of an earlier event holds the record: the records' heads
// have just left the queue (delivered, or dead letters that hold nothing).
func (s *sqlStore) promoteNext(ctx context.Context, tx *sqlx.Tx, sink string, records []string) error {
	if len(records) == 0 {
		return nil
	}
	next, err := s.nextRows(ctx, tx, sink, records)
	if err != nil || len(next) == 0 {
		return err
	}
	waiting := make([]string, 0, len(next))
	for rec := range next {
		waiting = append(waiting, rec)
	}
	held, err := s.oldestHolding(ctx, tx, sink, waiting)
	if err != nil {
		return err
	}
	heads := make([]int64, 0, len(next))
	for rec, seq := range next {
		if h, ok := held[rec]; ok && h < seq {
			continue
		}
		heads = append(heads, seq)
	}
	return forEachIn(s.d, "seq", heads, func(cond string, in []any) error {
		_, err := tx.ExecContext(ctx, s.q(`UPDATE outbox SET head = TRUE WHERE sink = ? AND NOT head AND `+cond),
			append([]any{sink}, in...)...)
		return err
	})
}

// fixHeads sets the head of one record's queue for a sink from scratch: its
// oldest waiting row, unless an earlier holding dead letter holds it, and no other
// row. Replay and Dismiss use it after putting rows back or releasing them.
func (s *sqlStore) fixHeads(ctx context.Context, tx *sqlx.Tx, k sinkRecord) error {
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE outbox SET head = FALSE
		WHERE sink = ? AND record = ? AND head
		  AND seq > (SELECT MIN(o.seq) FROM outbox o WHERE o.sink = ? AND o.record = ?)`),
		k.sink, k.record, k.sink, k.record); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, s.q(`UPDATE outbox SET head = NOT EXISTS (
			SELECT 1 FROM dead_letters d WHERE d.sink = outbox.sink AND d.record = outbox.record
			AND d.seq < outbox.seq AND d.state = ?)
		WHERE sink = ? AND record = ?
		  AND seq = (SELECT MIN(o.seq) FROM outbox o WHERE o.sink = ? AND o.record = ?)`),
		string(DeadHolding), k.sink, k.record, k.sink, k.record)
	return err
}
