package store

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// outboxRow is a new outbox row: a newly committed event routed to one sink.
type outboxRow struct {
	sink   string
	seq    int64
	record string
}

// sinkRecord names one record's queue for one sink.
type sinkRecord struct{ sink, record string }

// insertOutbox queues newly committed events, due at at, and marks each row that
// is its record's head for the sink: the first row of its record in this batch,
// when the record has no row already waiting for the sink and no holding dead
// letter of the sink (a new event is newer than any of those). Whether a record
// has either is looked up once per sink for the whole batch.
//
// Head flags change only under the store's events lock (see lockEvents): commits
// and Replay and Dismiss take it exclusively, Settle shared, so no delivery can
// free or take a record's head between the look-up and the insert. The commit
// holds the lock already; taking it again is a no-op that keeps this function
// correct on its own.
func (s *sqlStore) insertOutbox(ctx context.Context, tx *sqlx.Tx, at time.Time, rows []outboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	if err := s.d.lockEvents(ctx, tx); err != nil {
		return err
	}
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b outboxRow) int { return cmp.Compare(a.seq, b.seq) })
	records := map[string][]string{} // sink -> distinct records
	first := map[sinkRecord]int64{}  // the batch's oldest row of each record per sink
	for _, r := range rows {
		k := sinkRecord{r.sink, r.record}
		if _, seen := first[k]; !seen {
			first[k] = r.seq
			records[r.sink] = append(records[r.sink], r.record)
		}
	}
	blocked := map[sinkRecord]bool{}
	for sink, recs := range records {
		if err := s.blockedRecords(ctx, tx, sink, recs, blocked); err != nil {
			return err
		}
	}
	nextAt := s.d.timeArg(at)
	values := make([][]any, len(rows))
	for i, r := range rows {
		k := sinkRecord{r.sink, r.record}
		head := first[k] == r.seq && !blocked[k]
		values[i] = []any{r.sink, r.seq, nextAt, r.record, head}
	}
	return s.insertMany(ctx, tx, `outbox`, outboxColumns, ``, values, nil)
}

// blockedRecords adds to blocked those of records that already have a row waiting
// for sink or a holding dead letter of sink: a new row of theirs waits behind it.
func (s *sqlStore) blockedRecords(ctx context.Context, tx *sqlx.Tx, sink string, records []string, blocked map[sinkRecord]bool) error {
	cond, arg := in(s.d, "record", records)
	return queryEach(ctx, tx, s.q(`SELECT record FROM outbox WHERE sink = ? AND `+cond+`
		UNION SELECT record FROM dead_letters WHERE sink = ? AND state = ? AND `+cond),
		[]any{sink, arg, sink, string(DeadHolding), arg}, func(r *sqlx.Rows) error {
			var rec string
			if err := r.Scan(&rec); err != nil {
				return err
			}
			blocked[sinkRecord{sink, rec}] = true
			return nil
		})
}
