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
func (s *sqlStore) Settle(ctx context.Context, sink string, outcomes []Outcome) ([]error, error) {
	errs := make([]error, len(outcomes))
	if len(outcomes) == 0 {
		return errs, nil
	}
	valid := make([]int, 0, len(outcomes))
	for i, o := range outcomes {
		if err := o.check(); err != nil {
			errs[i] = fmt.Errorf("store: outcome of seq %d for sink %q: %w", o.Seq, sink, err)
			continue
		}
		valid = append(valid, i)
	}
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		for _, i := range valid {
			errs[i] = nil
		}
		return s.settle(ctx, tx, sink, outcomes, valid, errs)
	})
	if err != nil {
		return nil, fmt.Errorf("store: record %d delivery outcomes for sink %q: %w", len(outcomes), sink, err)
	}
	return errs, nil
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

// settled is an outcome whose row was found, with its record and event id.
type settled struct {
	Outcome
	i      int // index in the caller's outcomes
	record string
	id     string
}

func (s *sqlStore) settle(ctx context.Context, tx *sqlx.Tx, sink string, outcomes []Outcome, valid []int, errs []error) error {
	if err := s.d.shareEvents(ctx, tx); err != nil {
		return err
	}
	found, err := s.outboxRows(ctx, tx, sink, outcomes, valid)
	if err != nil {
		return err
	}
	var rows []settled
	for _, i := range valid {
		r, ok := found[outcomes[i].Seq]
		if !ok {
			errs[i] = ErrNotFound
			continue
		}
		delete(found, outcomes[i].Seq) // the same seq twice: the second is not found
		r.Outcome, r.i = outcomes[i], i
		rows = append(rows, r)
	}
	for _, pass := range passes(rows) {
		if err := s.settlePass(ctx, tx, sink, pass, errs); err != nil {
			return err
		}
	}
	return nil
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

// outboxRows finds the outcomes' rows in the outbox, with their records and
// their events' ids, in one statement.
func (s *sqlStore) outboxRows(ctx context.Context, tx *sqlx.Tx, sink string, outcomes []Outcome, valid []int) (map[int64]settled, error) {
	seqs := make([]int64, len(valid))
	for j, i := range valid {
		seqs[j] = outcomes[i].Seq
	}
	out := make(map[int64]settled, len(seqs))
	// Correlated look-ups rather than joins: each is one index seek, whatever
	// the planner guesses about the size of the list.
	from, arg := listFrom(s.d, "seq", seqs)
	err := queryEach(ctx, tx, s.q(`SELECT x.seq, (SELECT o.record FROM outbox o WHERE o.sink = ? AND o.seq = x.seq),
		(SELECT e.id FROM events e WHERE e.seq = x.seq) FROM `+from), []any{sink, arg}, func(r *sqlx.Rows) error {
		var seq int64
		var rec, id sql.NullString
		if err := r.Scan(&seq, &rec, &id); err != nil {
			return err
		}
		if rec.Valid && id.Valid {
			out[seq] = settled{record: rec.String, id: id.String}
		}
		return nil
	})
	return out, err
}

// settlePass records outcomes of distinct records.
func (s *sqlStore) settlePass(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled, errs []error) error {
	var retry, delivered, dead []settled
	var taken []int64
	left := map[string]settled{} // records whose head left the queue
	for _, r := range rows {
		switch {
		case r.Kind == OutcomeRetry:
			retry = append(retry, r)
			continue
		case r.Kind == OutcomeDelivered:
			delivered = append(delivered, r)
			left[r.record] = r
		default:
			dead = append(dead, r)
			if r.OnDead == OnDeadSkip {
				left[r.record] = r
			}
		}
		taken = append(taken, r.Seq)
	}
	if err := s.settleRetries(ctx, tx, sink, retry, errs); err != nil {
		return fmt.Errorf("retries: %w", err)
	}
	if len(taken) > 0 {
		cond, arg := in(s.d, "seq", taken)
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM outbox WHERE sink = ? AND `+cond), sink, arg); err != nil {
			return err
		}
	}
	if err := s.settleDelivered(ctx, tx, sink, delivered); err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	if err := s.settleDead(ctx, tx, sink, dead); err != nil {
		return fmt.Errorf("dead letters: %w", err)
	}
	if err := s.promoteNext(ctx, tx, sink, left); err != nil {
		return fmt.Errorf("next heads: %w", err)
	}
	return nil
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
// older dead letters of the sink: they must never be sent now.
func (s *sqlStore) settleDelivered(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled) error {
	if len(rows) == 0 {
		return nil
	}
	if err := s.supersedeDeadOf(ctx, tx, sink, rows); err != nil {
		return err
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

// supersedeDeadOf marks superseded the replayable dead letters of the sink that
// are older than a delivered event of their record.
func (s *sqlStore) supersedeDeadOf(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled) error {
	by := make(map[string]settled, len(rows))
	records := make([]string, 0, len(rows))
	for _, r := range rows {
		if r.record == "" {
			continue // a row from before records were kept: nothing to match on
		}
		by[r.record] = r
		records = append(records, r.record)
	}
	if len(records) == 0 {
		return nil
	}
	type dead struct {
		id  int64
		rec string
		seq int64
	}
	var older []dead
	cond, arg := in(s.d, "record", records)
	err := queryEach(ctx, tx, s.q(`SELECT id, record, seq FROM dead_letters WHERE sink = ? AND state IN (?, ?) AND `+cond),
		[]any{sink, string(DeadHolding), string(DeadOpen), arg}, func(r *sqlx.Rows) error {
			var d dead
			if err := r.Scan(&d.id, &d.rec, &d.seq); err != nil {
				return err
			}
			if d.seq < by[d.rec].Seq {
				older = append(older, d)
			}
			return nil
		})
	if err != nil || len(older) == 0 {
		return err
	}
	stmt, err := tx.PreparexContext(ctx, s.q(`UPDATE dead_letters SET state = ?, state_at = ? WHERE id = ?`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, d := range older {
		if _, err := stmt.ExecContext(ctx, string(DeadSuperseded), s.d.timeArg(by[d.rec].At), d.id); err != nil {
			return err
		}
	}
	return nil
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
