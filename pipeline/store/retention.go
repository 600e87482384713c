package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
)

// Retention says how long what the store keeps after it has served may stay. Zero
// durations keep things for ever.
type Retention struct {
	// Events: an event delivered to every sink it was routed to (none waiting, no
	// dead letter), with its delivery records, is purged this long after it was
	// detected. Citizens' data in it goes with it.
	Events time.Duration
	// DeadLetters: a dead letter that can no longer be replayed (superseded, or
	// dismissed by an operator) is purged this long after it was made. Replayable
	// dead letters stay until an operator acts: nothing is lost silently.
	DeadLetters time.Duration
	// Quarantine: an entry not seen again for this long is purged.
	Quarantine time.Duration
}

// PurgeResult counts what a purge removed.
type PurgeResult struct {
	Events, Deliveries, DeadLetters, Quarantine int
	// Inbox counts handled Zalo webhook events purged (kept as long as events).
	Inbox int
}

// purgeChunk bounds one purge statement, so a purge never holds the store's writer
// for long.
const purgeChunk = 2000

// Purge removes what r allows, measured from now, in bounded transactions.
func (s *sqlStore) Purge(ctx context.Context, r Retention, now time.Time) (PurgeResult, error) {
	var res PurgeResult
	if r.Events > 0 {
		if err := s.purgeEvents(ctx, now.Add(-r.Events), &res); err != nil {
			return res, fmt.Errorf("store: purge events: %w", err)
		}
		if err := s.purgeFeedBlocks(ctx, now.Add(-r.Events)); err != nil {
			return res, fmt.Errorf("store: purge snapshot feeds: %w", err)
		}
	}
	if r.DeadLetters > 0 {
		n, err := s.execCount(ctx, `DELETE FROM dead_letters WHERE at < ? AND state IN (?, ?)`,
			s.d.timeArg(now.Add(-r.DeadLetters)), string(DeadSuperseded), string(DeadDismissed))
		if err != nil {
			return res, fmt.Errorf("store: purge dead letters: %w", err)
		}
		res.DeadLetters = n
	}
	if r.Quarantine > 0 {
		n, err := s.execCount(ctx, `DELETE FROM quarantine WHERE last_at < ?`, s.d.timeArg(now.Add(-r.Quarantine)))
		if err != nil {
			return res, fmt.Errorf("store: purge quarantine: %w", err)
		}
		res.Quarantine = n
	}
	if r.Events > 0 {
		n, err := s.execCount(ctx, `DELETE FROM zalo_inbox WHERE handled_at IS NOT NULL AND handled_at < ?`, s.d.timeArg(now.Add(-r.Events)))
		if err != nil {
			return res, fmt.Errorf("store: purge handled Zalo webhook events: %w", err)
		}
		res.Inbox = n
	}
	return res, nil
}

// purgeEvents walks the events in seq order from where the last pass stopped,
// purging those old enough that nothing waits for any more. Events still waiting are
// stepped over, so one stuck record never stops the purge; the walk starts again
// from the beginning once it reaches events too young.
func (s *sqlStore) purgeEvents(ctx context.Context, cutoff time.Time, res *PurgeResult) error {
	from, err := s.purgeSeq(ctx)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		var seqs []int64
		if err := s.db.SelectContext(ctx, &seqs, s.q(`SELECT seq FROM events WHERE seq > ? AND created_at < ? ORDER BY seq`+limitClause(purgeChunk)),
			from, s.d.timeArg(cutoff)); err != nil {
			return err
		}
		if len(seqs) == 0 {
			return s.setPurgeSeq(ctx, 0) // caught up: the next pass looks at what was stepped over
		}
		err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
			waiting := map[int64]bool{}
			for _, table := range []string{"outbox", "dead_letters"} {
				if err := forEachIn(s.d, "seq", seqs, func(cond string, args []any) error {
					return queryEach(ctx, tx, s.q(`SELECT seq FROM `+table+` WHERE `+cond), args, func(r *sqlx.Rows) error {
						var seq int64
						if err := r.Scan(&seq); err != nil {
							return err
						}
						waiting[seq] = true
						return nil
					})
				}); err != nil {
					return err
				}
			}
			done := make([]int64, 0, len(seqs))
			for _, seq := range seqs {
				if !waiting[seq] {
					done = append(done, seq)
				}
			}
			return forEachIn(s.d, "seq", done, func(cond string, args []any) error {
				n, err := execCountTx(ctx, tx, s.q(`DELETE FROM deliveries WHERE `+cond), args...)
				res.Deliveries += n
				if err != nil {
					return err
				}
				n, err = execCountTx(ctx, tx, s.q(`DELETE FROM events WHERE `+cond), args...)
				res.Events += n
				return err
			})
		})
		if err != nil {
			return err
		}
		from = seqs[len(seqs)-1]
		if err := s.setPurgeSeq(ctx, from); err != nil {
			return err
		}
		if len(seqs) < purgeChunk {
			return s.setPurgeSeq(ctx, 0)
		}
	}
	return ctx.Err()
}

func (s *sqlStore) purgeSeq(ctx context.Context) (int64, error) {
	var v string
	err := s.db.GetContext(ctx, &v, `SELECT value FROM store_meta WHERE key = 'purge_seq'`)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

func (s *sqlStore) setPurgeSeq(ctx context.Context, seq int64) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO store_meta (key, value) VALUES ('purge_seq', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`), strconv.FormatInt(seq, 10))
	return err
}

func (s *sqlStore) execCount(ctx context.Context, query string, args ...any) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func execCountTx(ctx context.Context, tx *sqlx.Tx, query string, args ...any) (int, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
