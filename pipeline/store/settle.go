package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"

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

// settled is an outcome whose row was found, with its record.
type settled struct {
	Outcome
	i      int // index in the caller's outcomes
	record string
	id     string // the event's id, for delivered and dead outcomes
}

func (s *sqlStore) settle(ctx context.Context, tx *sqlx.Tx, sink string, outcomes []Outcome, valid []int, errs []error) error {
	if err := s.d.shareEvents(ctx, tx); err != nil {
		return err
	}
	found, err := s.outboxRecords(ctx, tx, sink, outcomes, valid)
	if err != nil {
		return err
	}
	var rows []settled
	for _, i := range valid {
		rec, ok := found[outcomes[i].Seq]
		if !ok {
			errs[i] = ErrNotFound
			continue
		}
		delete(found, outcomes[i].Seq) // the same seq twice: the second is not found
		rows = append(rows, settled{Outcome: outcomes[i], i: i, record: rec})
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

// outboxRecords returns the record of each outcome's row that is in the outbox.
func (s *sqlStore) outboxRecords(ctx context.Context, tx *sqlx.Tx, sink string, outcomes []Outcome, valid []int) (map[int64]string, error) {
	seqs := make([]int64, len(valid))
	for j, i := range valid {
		seqs[j] = outcomes[i].Seq
	}
	out := make(map[int64]string, len(seqs))
	err := forEachIn(s.d, "seq", seqs, func(cond string, in []any) error {
		return queryEach(ctx, tx, s.q(`SELECT seq, record FROM outbox WHERE sink = ? AND `+cond),
			append([]any{sink}, in...), func(r *sqlx.Rows) error {
				var seq int64
				var rec string
				if err := r.Scan(&seq, &rec); err != nil {
					return err
				}
				out[seq] = rec
				return nil
			})
	})
	return out, err
}

// settlePass records outcomes of distinct records.
func (s *sqlStore) settlePass(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled, errs []error) error {
	var retry, taken []settled
	for _, r := range rows {
		if r.Kind == OutcomeRetry {
			retry = append(retry, r)
		} else {
			taken = append(taken, r)
		}
	}
	if err := s.settleRetries(ctx, tx, sink, retry, errs); err != nil {
		return fmt.Errorf("retries: %w", err)
	}
	if len(taken) == 0 {
		return nil
	}
	if err := s.takeRows(ctx, tx, sink, taken); err != nil {
		return err
	}
	var delivered, dead []settled
	var release []string // records whose next row may become head
	for _, r := range taken {
		if r.Kind == OutcomeDelivered {
			delivered = append(delivered, r)
			release = append(release, r.record)
			continue
		}
		dead = append(dead, r)
		if r.OnDead == OnDeadSkip {
			release = append(release, r.record)
		}
	}
	if err := s.settleDelivered(ctx, tx, sink, delivered); err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	if err := s.settleDead(ctx, tx, sink, dead); err != nil {
		return fmt.Errorf("dead letters: %w", err)
	}
	if err := s.promoteNext(ctx, tx, sink, release); err != nil {
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

// takeRows deletes the rows of delivered and dead outcomes from the outbox and
// reads their events' ids.
func (s *sqlStore) takeRows(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled) error {
	seqs := make([]int64, len(rows))
	for i, r := range rows {
		seqs[i] = r.Seq
	}
	ids := make(map[int64]string, len(rows))
	err := forEachIn(s.d, "seq", seqs, func(cond string, in []any) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM outbox WHERE sink = ? AND `+cond), append([]any{sink}, in...)...); err != nil {
			return err
		}
		return queryEach(ctx, tx, s.q(`SELECT seq, id FROM events WHERE `+cond), in, func(r *sqlx.Rows) error {
			var seq int64
			var id string
			if err := r.Scan(&seq, &id); err != nil {
				return err
			}
			ids[seq] = id
			return nil
		})
	})
	if err != nil {
		return err
	}
	for i := range rows {
		id, ok := ids[rows[i].Seq]
		if !ok {
			return fmt.Errorf("no event of seq %d", rows[i].Seq)
		}
		rows[i].id = id
	}
	return nil
}

// settleDelivered records deliveries. The records' older dead letters of the sink
// become superseded first; then any older row of the record still waiting (only
// a replay racing the delivery can have put one there) goes to dead letters as
// superseded, since sending it now would give the consumer an older version
// after a newer one.
func (s *sqlStore) settleDelivered(ctx context.Context, tx *sqlx.Tx, sink string, rows []settled) error {
	if len(rows) == 0 {
		return nil
	}
	if err := s.supersedeDeadOf(ctx, tx, sink, rows); err != nil {
		return err
	}
	values := make([][]any, len(rows))
	records := make([]string, len(rows))
	for i, r := range rows {
		values[i] = []any{sink, r.id, r.Seq, r.Attempts, s.d.timeArg(r.At)}
		records[i] = r.record
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO deliveries (sink, event_id, seq, attempts, delivered_at) VALUES `,
		` ON CONFLICT (sink, event_id) DO NOTHING`, values, nil); err != nil {
		return err
	}
	next, err := s.nextRows(ctx, tx, sink, records)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if seq, ok := next[r.record]; ok && seq < r.Seq && r.record != "" {
			if err := s.supersedeOutbox(ctx, tx, sink, r.record, r.Seq, r.At); err != nil {
				return err
			}
		}
	}
	return nil
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
	type dead struct {
		id  int64
		rec string
		seq int64
	}
	var older []dead
	err := forEachIn(s.d, "record", records, func(cond string, in []any) error {
		return queryEach(ctx, tx, s.q(`SELECT id, record, seq FROM dead_letters WHERE sink = ? AND state IN (?, ?) AND `+cond),
			append([]any{sink, string(DeadHolding), string(DeadOpen)}, in...), func(r *sqlx.Rows) error {
				var d dead
				if err := r.Scan(&d.id, &d.rec, &d.seq); err != nil {
					return err
				}
				if d.seq < by[d.rec].Seq {
					older = append(older, d)
				}
				return nil
			})
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
