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

// listFrom is a FROM item x(col) listing values, with its one bind argument: an
// array on PostgreSQL, a JSON array read by json_each on SQLite. One argument
// and one short statement, whatever the number of values.
func listFrom[T int64 | string](d dialect, col string, values []T) (string, any) {
	if d == postgresDialect {
		typ := "bigint[]"
		if _, text := any(values).([]string); text {
			typ = "text[]"
		}
		return `unnest(CAST(? AS ` + typ + `)) AS x(` + col + `)`, pq.Array(values)
	}
	b, _ := json.Marshal(values) // numbers and strings always encode
	return `(SELECT value AS ` + col + ` FROM json_each(?)) AS x`, string(b)
}

// in renders the condition "col is one of values" with its one bind argument:
// col = ANY(array) on PostgreSQL, col IN (json_each) on SQLite. The statement's
// text is the same whatever the number of values, so a batch costs one short
// statement instead of chunks of placeholders to parse.
func in[T int64 | string](d dialect, col string, values []T) (string, any) {
	if d == postgresDialect {
		return col + ` = ANY(?)`, pq.Array(values)
	}
	b, _ := json.Marshal(values) // numbers and strings always encode
	return col + ` IN (SELECT value FROM json_each(?))`, string(b)
}

// nextRows returns each record's oldest row still waiting for sink; records
// with none are absent. Each look-up is one index seek (sink, record, seq).
func (s *sqlStore) nextRows(ctx context.Context, tx *sqlx.Tx, sink string, records []string) (map[string]int64, error) {
	out := make(map[string]int64, len(records))
	if len(records) == 0 {
		return out, nil
	}
	from, arg := listFrom(s.d, "record", records)
	err := queryEach(ctx, tx, s.q(`SELECT x.record, (SELECT MIN(o.seq) FROM outbox o WHERE o.sink = ? AND o.record = x.record)
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

// promoteNext makes the next waiting row of each given record its head, unless
// a holding dead letter of an earlier event holds the record: the records' heads
// have just left the queue (delivered, or dead letters that hold nothing). It
// returns how many rows became heads.
//
// A row older than a delivered one can only be waiting because a replay put it
// back while the delivery was in flight; it goes to dead letters as superseded
// (see supersedeOutbox) rather than becoming the head.
func (s *sqlStore) promoteNext(ctx context.Context, tx *sqlx.Tx, sink string, left []settled) (int, error) {
	heads := make([]int64, 0, len(left))
	for _, r := range left {
		next, hold := r.next, r.holding
		if r.Kind == OutcomeDelivered {
			hold = r.holdingAfter // the older ones are superseded by this delivery
			if next != 0 && next < r.Seq && r.record != "" {
				var err error
				if next, err = s.supersedeOlder(ctx, tx, sink, r); err != nil {
					return 0, err
				}
			}
		}
		if next == 0 || (hold != 0 && hold < next) {
			continue
		}
		heads = append(heads, next)
	}
	if len(heads) == 0 {
		return 0, nil
	}
	cond, arg := in(s.d, "seq", heads)
	res, err := tx.ExecContext(ctx, s.q(`UPDATE outbox SET head = TRUE WHERE sink = ? AND NOT head AND `+cond), sink, arg)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// supersedeOlder moves the record's rows older than the delivered one to dead
// letters as superseded and returns the record's next row after it (0: none).
func (s *sqlStore) supersedeOlder(ctx context.Context, tx *sqlx.Tx, sink string, r settled) (int64, error) {
	if err := s.supersedeOutbox(ctx, tx, sink, r.record, r.Seq, r.At); err != nil {
		return 0, err
	}
	next, err := s.nextRows(ctx, tx, sink, []string{r.record})
	return next[r.record], err
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
