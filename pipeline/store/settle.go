package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
)

// Settle records a batch of delivery outcomes in one transaction (one fsync on
// SQLite), with a fixed number of statements per batch rather than per outcome,
// apart from retries (one indexed UPDATE each) and the rare supersession of a row
// a replay put back.
func (s *sqlStore) Settle(ctx context.Context, sink string, fence *Fence, outcomes []Outcome) (Settled, error) {
	errs := make([]error, len(outcomes))
	if len(outcomes) == 0 {
		return Settled{Errs: errs}, nil
	}
	valid := make([]int, 0, len(outcomes))
	for i, o := range outcomes {
		if err := o.check(); err != nil {
			errs[i] = fmt.Errorf("store: outcome of seq %d for sink %q: %w", o.Seq, sink, err)
			continue
		}
		valid = append(valid, i)
	}
	heads := 0
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		for _, i := range valid {
			errs[i] = nil
		}
		var err error
		heads, err = s.settle(ctx, tx, sink, outcomes, valid, errs)
		return err
	})
	if err != nil {
		return Settled{}, fmt.Errorf("store: record %d delivery outcomes for sink %q: %w", len(outcomes), sink, err)
	}
	return Settled{Errs: errs, Heads: heads}, nil
}

func (o Outcome) check() error {
	switch o.Kind {
	case OutcomeDelivered, OutcomeRetry:
		return nil
	case OutcomeDead:
		switch o.OnDead {
		case OnDeadHold, OnDeadSkip, "":
			return nil
		}
		return fmt.Errorf("unknown on_dead %q", o.OnDead)
	}
	return fmt.Errorf("unknown outcome kind %d", o.Kind)
}

// settled is an outcome whose row was found, with what recording it needs to
// know of its record, all read by one statement before anything changes.
type settled struct {
	Outcome
	i      int // index in the caller's outcomes
	record string
	id     string // the event's id
	// next is the record's oldest other row waiting for the sink (0: none): its
	// head once this one leaves.
	next int64
	// older: an earlier event of the record is a replayable dead letter of the
	// sink, which a delivery of this one supersedes.
	older bool
	// holding and holdingAfter are the seqs of the record's oldest holding dead
	// letter of the sink, of any event and of a later one (0: none).
	holding, holdingAfter int64
}

func (s *sqlStore) settle(ctx context.Context, tx *sqlx.Tx, sink string, outcomes []Outcome, valid []int, errs []error) (int, error) {
	if err := s.d.shareEvents(ctx, tx); err != nil {
		return 0, err
	}
	// A feed event is not in the outbox. Outcomes of rows read from a feed are
	// looked for there first and skip the outbox look-up, which would find none
	// of them; the others are looked for in the outbox first, and those not
	// found there in the feed, so settling ordinary events reads no feed.
	var ff *feedState
	var err error
	var feed, other []int
	for _, i := range valid {
		if outcomes[i].Feed {
			if ff, err = s.feedFor(ctx, tx, sink, outcomes, valid); err != nil {
				return 0, fmt.Errorf("snapshot feed: %w", err)
			}
			break
		}
	}
	for _, i := range valid {
		if ff != nil && ff.waiting(outcomes[i].Seq) {
			feed = append(feed, i)
			errs[i] = ErrNotFound // until settleFeed records it
		} else {
			other = append(other, i)
		}
	}
	var rows []settled
	var missing []int
	if len(other) > 0 {
		seqs := make([]int64, len(other))
		for j, i := range other {
			seqs[j] = outcomes[i].Seq
		}
		found, err := s.lookUp(ctx, tx, sink, seqs)
		if err != nil {
			return 0, err
		}
		for _, i := range other {
			r, ok := found[outcomes[i].Seq]
			if !ok {
				errs[i] = ErrNotFound
				missing = append(missing, i)
				continue
			}
			delete(found, outcomes[i].Seq) // the same seq twice: the second is not found
			r.Outcome, r.i = outcomes[i], i
			rows = append(rows, r)
		}
	}
	if len(missing) > 0 && ff == nil {
		if ff, err = s.feedFor(ctx, tx, sink, outcomes, missing); err != nil {
			return 0, fmt.Errorf("snapshot feed: %w", err)
		}
		for _, i := range missing {
			if ff.waiting(outcomes[i].Seq) {
				feed = append(feed, i)
			}
		}
	}
	heads := 0
	for k, pass := range passes(rows) {
		if k > 0 { // a record's later outcome: what the earlier one changed counts
			if pass, err = s.refresh(ctx, tx, sink, pass, errs); err != nil {
				return 0, err
			}
		}
		n, err := s.settlePass(ctx, tx, sink, pass, errs)
		if err != nil {
			return 0, err
		}
		heads += n
	}
	if err := s.settleFeed(ctx, tx, sink, ff, outcomes, feed, errs); err != nil {
		return 0, fmt.Errorf("snapshot feed: %w", err)
	}
	return heads, nil
}

// passes splits outcomes so that each pass holds at most one per record, in seq
// order: a record's outcomes apply one after the other, as its events were tried.
func passes(rows []settled) [][]settled {
	slices.SortFunc(rows, func(a, b settled) int { return cmp.Compare(a.Seq, b.Seq) })
	var out [][]settled
	n := map[string]int{}
	for _, r := range rows {
		p := n[r.record]
		n[r.record]++
		if p == len(out) {
			out = append(out, nil)
		}
		out[p] = append(out[p], r)
	}
	return out
}

// refresh reads again what lookUp read for a pass's rows.
func (s *sqlStore) refresh(ctx context.Context, tx *sqlx.Tx, sink string, pass []settled, errs []error) ([]settled, error) {
	seqs := make([]int64, len(pass))
	for i, r := range pass {
		seqs[i] = r.Seq
	}
	found, err := s.lookUp(ctx, tx, sink, seqs)
	if err != nil {
		return nil, err
	}
	out := pass[:0]
	for _, r := range pass {
		f, ok := found[r.Seq]
		if !ok {
			errs[r.i] = ErrNotFound
			continue
		}
		f.Outcome, f.i = r.Outcome, r.i
		out = append(out, f)
	}
	return out, nil
}

// lookUp finds the rows of seqs in the sink's outbox with everything recording
// their outcomes needs: record, event id, the record's next row and its dead
// letters. Every value is a correlated look-up, one index seek each, whatever
// the planner guesses about the size of the list; rows not in the outbox are
// absent.
func (s *sqlStore) lookUp(ctx context.Context, tx *sqlx.Tx, sink string, seqs []int64) (map[int64]settled, error) {
	out := make(map[int64]settled, len(seqs))
	_, arg := listFrom(s.d, "seq", seqs)
	holding, open := string(DeadHolding), string(DeadOpen)
	args := []any{sink, arg, sink, sink, holding, open, sink, holding, sink, holding}
	err := s.each(ctx, tx, lookUpQuery(s.d), args, func(r *sqlx.Rows) error {
		var row settled
		var next, held, heldAfter sql.NullInt64
		if err := r.Scan(&row.Seq, &row.record, &row.id, &next, &row.older, &held, &heldAfter); err != nil {
			return err
		}
		row.next, row.holding, row.holdingAfter = next.Int64, held.Int64, heldAfter.Int64
		row.older = row.older && row.record != "" // rows from before records were kept match nothing
		out[row.Seq] = row
		return nil
	})
	return out, err
}

// lookUpQuery is lookUp's statement; its one list argument is the seqs.
func lookUpQuery(d dialect) string {
	from, _ := listFrom(d, "seq", []int64(nil)) // the text does not depend on the values
	return `WITH y AS MATERIALIZED (
		SELECT x.seq, (SELECT o.record FROM outbox o WHERE o.sink = ? AND o.seq = x.seq) AS record,
		       (SELECT e.id FROM events e WHERE e.seq = x.seq) AS id
		FROM ` + from + `)
	SELECT y.seq, y.record, y.id,
		(SELECT n.seq FROM outbox n WHERE n.sink = ? AND n.record = y.record AND n.seq <> y.seq ORDER BY n.seq LIMIT 1),
		EXISTS (SELECT 1 FROM dead_letters d WHERE d.sink = ? AND d.record = y.record AND d.seq < y.seq AND d.state IN (?, ?)),
		(SELECT d.seq FROM dead_letters d WHERE d.sink = ? AND d.record = y.record AND d.state = ? ORDER BY d.seq LIMIT 1),
		(SELECT d.seq FROM dead_letters d WHERE d.sink = ? AND d.record = y.record AND d.state = ? AND d.seq > y.seq ORDER BY d.seq LIMIT 1)
	FROM y WHERE y.record IS NOT NULL`
}

// settlePass records outcomes of distinct records and returns how many rows
// became heads.
func (s *sqlStore) settlePass(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled, errs []error) (int, error) {
	var retry, delivered, dead, left []settled
	var taken []int64
	for _, r := range rows {
		switch {
		case r.Kind == OutcomeRetry:
			retry = append(retry, r)
			continue
		case r.Kind == OutcomeDelivered:
			delivered = append(delivered, r)
			left = append(left, r)
		default:
			dead = append(dead, r)
			if r.OnDead == OnDeadSkip {
				left = append(left, r)
			}
		}
		taken = append(taken, r.Seq)
	}
	if err := s.settleRetries(ctx, tx, sink, retry, errs); err != nil {
		return 0, fmt.Errorf("retries: %w", err)
	}
	if len(taken) > 0 {
		cond, arg := in(s.d, "seq", taken)
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM outbox WHERE sink = ? AND `+cond), sink, arg); err != nil {
			return 0, err
		}
	}
	if err := s.settleDelivered(ctx, tx, sink, delivered); err != nil {
		return 0, fmt.Errorf("deliveries: %w", err)
	}
	if err := s.settleDead(ctx, tx, sink, dead); err != nil {
		return 0, fmt.Errorf("dead letters: %w", err)
	}
	heads, err := s.promoteNext(ctx, tx, sink, left)
	if err != nil {
		return 0, fmt.Errorf("next heads: %w", err)
	}
	return heads, nil
}

// settleRetries records failed attempts; the rows stay their records' heads.
func (s *sqlStore) settleRetries(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled, errs []error) error {
	if len(rows) == 0 {
		return nil
	}
	stmt, err := tx.PreparexContext(ctx, s.q(`UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE sink = ? AND seq = ?`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range rows {
		res, err := stmt.ExecContext(ctx, r.Attempts, s.d.timeArg(r.NextAt), pgtext.Text(r.Err), sink, r.Seq)
		if err != nil {
			return err
		}
		if err := oneRow(res); errors.Is(err, ErrNotFound) {
			errs[r.i] = ErrNotFound
		} else if err != nil {
			return err
		}
	}
	return nil
}

// settleDelivered records deliveries, after marking superseded the records'
// older replayable dead letters of the sink: they must never be sent now.
func (s *sqlStore) settleDelivered(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled) error {
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows {
		if !r.older {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE dead_letters SET state = ?, state_at = ?
			WHERE sink = ? AND record = ? AND seq < ? AND state IN (?, ?)`),
			string(DeadSuperseded), s.d.timeArg(r.At), sink, r.record, r.Seq, string(DeadHolding), string(DeadOpen)); err != nil {
			return err
		}
	}
	return s.insertDeliveries(ctx, tx, sink, rows)
}

// insertDeliveries records deliveries; a delivery recorded before stays as it was.
// On PostgreSQL the rows go as one array per column, which parses and plans in a
// fraction of the time of a VALUES list of thousands of parameters.
func (s *sqlStore) insertDeliveries(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled) error {
	const conflict = ` ON CONFLICT (sink, seq) DO NOTHING`
	if s.d != postgresDialect {
		values := make([][]any, len(rows))
		for i, r := range rows {
			values[i] = []any{sink, r.id, r.Seq, r.Attempts, s.d.timeArg(r.At)}
		}
		return s.insertRows(ctx, tx, `INSERT INTO deliveries (sink, event_id, seq, attempts, delivered_at) VALUES `,
			conflict, values, nil)
	}
	ids, at := make([]string, len(rows)), make([]string, len(rows))
	seqs, attempts := make([]int64, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		ids[i], seqs[i], attempts[i], at[i] = r.id, r.Seq, int64(r.Attempts), r.At.UTC().Format(time.RFC3339Nano)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (sink, event_id, seq, attempts, delivered_at)
		SELECT $1, x.id, x.seq, x.attempts, CAST(x.at AS timestamptz)
		FROM unnest(CAST($2 AS text[]), CAST($3 AS bigint[]), CAST($4 AS integer[]), CAST($5 AS text[])) AS x(id, seq, attempts, at)`+conflict,
		sink, pq.Array(ids), pq.Array(seqs), pq.Array(attempts), pq.Array(at))
	return err
}

// settleDead moves the rows to dead letters: holding their records under
// OnDeadHold, open under OnDeadSkip.
func (s *sqlStore) settleDead(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled) error {
	values := make([][]any, len(rows))
	for i, r := range rows {
		state := DeadHolding
		if r.OnDead == OnDeadSkip {
			state = DeadOpen
		}
		values[i] = []any{sink, r.Seq, r.id, r.Attempts, pgtext.Text(r.Err), s.d.timeArg(r.At), r.record, string(state)}
	}
	return s.insertRows(ctx, tx, `INSERT INTO dead_letters (sink, seq, event_id, attempts, reason, at, record, state) VALUES `,
		``, values, nil)
}
