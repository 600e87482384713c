package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

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

// pendingQuery reads up to a limit of a sink's due heads (sink, now, limit),
// oldest due first. Each head's event is read by a correlated look-up rather than
// a join, so the events table is never scanned, whatever the planner guesses
// about how many heads are due: a poll touches the rows it returns.
const pendingQuery = `SELECT o.seq, o.sink, o.record, o.attempts, o.next_at, o.last_error, o.replayed_at,
		(SELECT e.payload FROM events e WHERE e.seq = o.seq) AS payload
		FROM outbox o
		WHERE o.sink = ? AND o.head AND o.next_at <= ?` + skipMark + `
		ORDER BY o.next_at, o.seq LIMIT ?`

// skipMark is where pendingQuery takes the condition that leaves rows out.
const skipMark = "/* skip */"

// skipCond is the condition leaving out rows by seq, with its one argument.
func (d dialect) skipCond(skip []int64) (string, any) {
	if d == postgresDialect {
		return ` AND NOT (o.seq = ANY(?))`, pq.Array(skip)
	}
	b, _ := json.Marshal(skip) // []int64 always encodes
	return ` AND o.seq NOT IN (SELECT value FROM json_each(?))`, string(b)
}

// pendingQueryFor is pendingQuery with, when skip, the condition leaving rows
// out (one more argument).
func pendingQueryFor(d dialect, skip bool) string {
	cond := ""
	if skip {
		cond, _ = d.skipCond(nil) // the text does not depend on the values
	}
	return strings.Replace(pendingQuery, skipMark, cond, 1)
}

// Pending returns the sink's due heads, oldest due first; limit <= 0 means all.
//
// Only a record's head is a candidate: its oldest row still waiting for the sink,
// unless an earlier event of the record is a holding dead letter of the sink (see
// heads.go). Events of one record are thus delivered in commit order, an event
// never overtakes an earlier one of its record that failed, and that holds across
// restarts because it is the store, not the dispatcher, that remembers. Different
// records do not wait for each other. The query reads the partial index
// outbox_heads (sink, next_at, seq) WHERE head, so it touches the due heads it
// returns and nothing else, however many rows wait behind them.
func (s *sqlStore) Pending(ctx context.Context, sink string, now time.Time, limit int, skip ...int64) ([]Pending, error) {
	return s.pending(ctx, sink, now, limit, skip, true)
}

// PendingJSON is Pending for a sink that reads records only as JSON
// (pipeline.FieldsJSON): a first sync's event comes with Event.AfterJSON and
// After nil, unless its stored row needs decoding to be written as JSON.
func (s *sqlStore) PendingJSON(ctx context.Context, sink string, now time.Time, limit int, skip ...int64) ([]Pending, error) {
	return s.pending(ctx, sink, now, limit, skip, false)
}

func (s *sqlStore) pending(ctx context.Context, sink string, now time.Time, limit int, skip []int64, withMap bool) ([]Pending, error) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	query, args := pendingQueryFor(s.d, len(skip) > 0), []any{sink, s.d.timeArg(now)}
	if len(skip) > 0 {
		_, arg := s.d.skipCond(skip)
		args = append(args, arg)
	}
	// The feed first: a commit between the two reads moves a feed event into the
	// outbox, where the second read finds it, rather than out of both.
	feed, err := s.pendingFeed(ctx, sink, now, limit, skip, withMap)
	if err != nil {
		return nil, fmt.Errorf("store: read snapshot feed of sink %q: %w", sink, err)
	}
	out, err := s.readPending(ctx, query, append(args, limit))
	if errors.Is(err, errLazyMoved) {
		out, err = s.readPending(ctx, query, append(args, limit))
	}
	if err != nil {
		return nil, fmt.Errorf("store: read outbox of sink %q: %w", sink, err)
	}
	return mergePending(out, feed, limit), nil
}

// readPending runs a pendingQuery and decodes each row's event straight from the
// driver's buffer: a poll reads up to thousands of rows, so it scans them by hand
// rather than through reflection and copies of the payload.
func (s *sqlStore) readPending(ctx context.Context, query string, args []any) ([]Pending, error) {
	rows, err := s.query(ctx, s.reader(), query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Pending
	var lazy []int
	for rows.Next() {
		var p Pending
		var nextAt, replayedAt dbTime
		var payload sql.RawBytes
		if err := rows.Scan(&p.Seq, &p.Sink, &p.Record, &p.Attempts, &nextAt, &p.LastErr, &replayedAt, &payload); err != nil {
			return nil, err
		}
		p.NextAt, p.ReplayedAt = nextAt.Time, replayedAt.Time
		isLazy, err := decodeEvent(payload, &p.Event)
		if err != nil {
			return nil, fmt.Errorf("decode event seq %d: %w", p.Seq, err)
		}
		if isLazy {
			lazy = append(lazy, len(out))
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close() // free the connection (SQLite has one) for the look-up of lazy fields
	evs := make([]*pipeline.Event, len(lazy))
	for i, j := range lazy {
		evs[i] = &out[j].Event
	}
	if err := s.fillLazy(ctx, s.reader(), evs); err != nil {
		return nil, err
	}
	return out, nil
}

// settleOne records one outcome through Settle.
func (s *sqlStore) settleOne(ctx context.Context, sink string, o Outcome) error {
	res, err := s.Settle(ctx, sink, nil, []Outcome{o})
	if err != nil {
		return err
	}
	return res.Errs[0]
}

// Delivered records one delivery; ErrNotFound when the row is not in the outbox
// (for example another worker delivered it already). See Settle.
func (s *sqlStore) Delivered(ctx context.Context, sink string, seq int64, attempts int, at time.Time) error {
	err := s.settleOne(ctx, sink, Outcome{Seq: seq, Kind: OutcomeDelivered, Attempts: attempts, At: at})
	if err != nil {
		return fmt.Errorf("store: record delivery of seq %d to sink %q: %w", seq, sink, err)
	}
	return nil
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
	err := s.settleOne(ctx, sink, Outcome{Seq: seq, Kind: OutcomeRetry, Attempts: attempts, NextAt: nextAt, Err: errMsg})
	if err != nil {
		return fmt.Errorf("store: record retry of seq %d for sink %q: %w", seq, sink, err)
	}
	return nil
}

// Dead moves the outbox row to dead letters; ErrNotFound when it is not in the
// outbox.
func (s *sqlStore) Dead(ctx context.Context, sink string, seq int64, attempts int, reason string, at time.Time, onDead OnDead) error {
	err := s.settleOne(ctx, sink, Outcome{Seq: seq, Kind: OutcomeDead, Attempts: attempts, At: at, Err: reason, OnDead: onDead})
	if err != nil {
		return fmt.Errorf("store: move seq %d of sink %q to dead letters: %w", seq, sink, err)
	}
	return nil
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
// transaction, in id order.
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
// from dead letters; each replayed event becomes its record's head, the rows of
// the record waiting behind it. Superseded and dismissed ones are left alone and
// counted; ids that do not exist are ignored.
//
// It takes the events lock exclusively (PostgreSQL), so no delivery is settled,
// and no commit queues a row, while it rearranges queues: a delivery it races
// either settled before (and superseded the dead letter, which is then not
// resent) or settles after, finding the replayed row older than its own and
// moving it to dead letters as superseded.
func (s *sqlStore) Replay(ctx context.Context, ids []int64, at time.Time) (ReplayResult, error) {
	var res ReplayResult
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		res = ReplayResult{}
		if err := s.d.lockEvents(ctx, tx); err != nil {
			return err
		}
		dead, err := s.lockDead(ctx, tx, ids)
		if err != nil {
			return err
		}
		insert := s.q(`INSERT INTO outbox (sink, seq, attempts, next_at, last_error, record, replayed_at)
			SELECT ?, e.seq, 0, ?, '', e.source || '/' || e.entity || '/' || e.key, ? FROM events e WHERE e.seq = ?
			ON CONFLICT (sink, seq) DO NOTHING RETURNING record`)
		replayed := make([]int64, 0, len(dead))
		var queues []sinkRecord
		for _, d := range dead {
			switch {
			case d.State == DeadSuperseded:
				res.Superseded++
				continue
			case d.State == DeadDismissed:
				res.Dismissed++
				continue
			}
			err := queryEach(ctx, tx, insert, []any{d.Sink, s.d.timeArg(at), s.d.timeArg(at), d.Seq}, func(r *sqlx.Rows) error {
				var rec string
				if err := r.Scan(&rec); err != nil {
					return err
				}
				queues = append(queues, sinkRecord{d.Sink, rec})
				return nil
			})
			if err != nil {
				return err
			}
			if err := s.restartAge(ctx, tx, d, at); err != nil {
				return err
			}
			replayed = append(replayed, d.ID)
		}
		res.Replayed = len(replayed)
		if err := forEachIn(s.d, "id", replayed, func(cond string, args []any) error {
			_, err := tx.ExecContext(ctx, s.q(`DELETE FROM dead_letters WHERE `+cond), args...)
			return err
		}); err != nil {
			return err
		}
		return s.fixAllHeads(ctx, tx, queues)
	})
	if err != nil {
		return ReplayResult{}, fmt.Errorf("store: replay %d dead letters: %w", len(ids), err)
	}
	return res, nil
}

// fixAllHeads runs fixHeads once per queue.
func (s *sqlStore) fixAllHeads(ctx context.Context, tx *sqlx.Tx, queues []sinkRecord) error {
	slices.SortFunc(queues, func(a, b sinkRecord) int {
		return cmp.Or(cmp.Compare(a.sink, b.sink), cmp.Compare(a.record, b.record))
	})
	for _, k := range slices.Compact(queues) {
		if err := s.fixHeads(ctx, tx, k); err != nil {
			return err
		}
	}
	return nil
}

// Dismiss marks the replayable dead letters with the given ids dismissed; the
// events they held go on, their age counting from at, the first of them now its
// record's head. Like Replay it takes the events lock exclusively.
func (s *sqlStore) Dismiss(ctx context.Context, ids []int64, at time.Time) (int, error) {
	var n int
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		n = 0
		if err := s.d.lockEvents(ctx, tx); err != nil {
			return err
		}
		dead, err := s.lockDead(ctx, tx, ids)
		if err != nil {
			return err
		}
		var released []sinkRecord
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
				released = append(released, sinkRecord{d.Sink, d.Record})
			}
			n++
		}
		return s.fixAllHeads(ctx, tx, released)
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
