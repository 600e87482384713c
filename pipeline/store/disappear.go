package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Disappearance is what the store keeps so that a record missing from its source
// becomes a deleted event (decision 0017). A pass (a full-set poll, or an SQL
// reconcile) marks every record key it reads as seen; once the pass has read the
// whole source without a failure, the live records it did not see are counted
// missing, and a record missed by enough consecutive passes is deleted. The seen
// keys live in the store, not in memory, so a pass over any number of rows stays
// bounded. Each pass names itself with a token of its own, so a process that lost
// the source's lock mid-pass cannot touch the keys of the pass that took over.
type Disappearance interface {
	// MarkSeen records keys the pass has read. It is scratch, outside any commit:
	// a crash leaves it to be cleared by the next pass.
	MarkSeen(ctx context.Context, source, entity, pass string, keys []string) error
	// ForgetSeen empties the pass's seen keys when it ends; pass "" empties those
	// of every pass of the source (a new pass, under the source's lock, clears
	// what an interrupted one left).
	ForgetSeen(ctx context.Context, source, entity, pass string) error
	// Walk returns the next page of up to limit live records of the source (in
	// the snapshot, not deleted), after `after` in key order: for each, whether
	// the pass saw it and its miss count. A page shorter than limit is the last.
	Walk(ctx context.Context, source, entity, pass, after string, limit int) ([]KeyState, error)
}

// KeyState is what a pass knows of one live record.
type KeyState struct {
	Key    string
	Seen   bool // the pass read it
	Misses int  // consecutive complete passes that missed it before this one
	Ended  bool // missed after its end time: no longer counted
}

// MissCount is a record's new miss count, committed with the batch that counts
// it (Batch.Misses), so counts and the deleted events they lead to move together.
type MissCount struct {
	Entity string
	Key    string
	// Misses is how many consecutive complete passes missed the record; 0 removes
	// the count (the record was deleted, or is back).
	Misses int
	// Ended: the record was missed after its end time. It is over, not cancelled:
	// it is no longer counted, and never deleted for being missing.
	Ended bool
}

func (s *sqlStore) MarkSeen(ctx context.Context, source, entity, pass string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	rows := make([][]any, len(keys))
	for i, k := range keys {
		rows[i] = []any{source, entity, pass, k}
	}
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		return s.insertRows(ctx, tx, `INSERT INTO seen_keys (source, entity, pass, key) VALUES `,
			` ON CONFLICT (source, entity, pass, key) DO NOTHING`, rows, nil)
	})
	if err != nil {
		return fmt.Errorf("store: mark keys of %s/%s seen: %w", source, entity, err)
	}
	return nil
}

func (s *sqlStore) ForgetSeen(ctx context.Context, source, entity, pass string) error {
	q, args := `DELETE FROM seen_keys WHERE source = ? AND entity = ?`, []any{source, entity}
	if pass != "" {
		q, args = q+` AND pass = ?`, append(args, pass)
	}
	if _, err := s.db.ExecContext(ctx, s.q(q), args...); err != nil {
		return fmt.Errorf("store: forget seen keys of %s/%s: %w", source, entity, err)
	}
	return nil
}

// Walk reads a page of live keys, then the seen keys and miss counts within that
// page's key range, and joins them here. Each is an index range scan on a primary
// key whatever the tables' statistics: an anti-join in SQL was planned as a nested
// loop over freshly filled tables (seconds per page on PostgreSQL before ANALYZE).
// Both ranges compare in the database's own collation, so they hold exactly the
// page's keys.
func (s *sqlStore) Walk(ctx context.Context, source, entity, pass, after string, limit int) ([]KeyState, error) {
	if limit <= 0 {
		limit = 1000
	}
	var keys []string
	if err := s.db.SelectContext(ctx, &keys, s.q(`SELECT key FROM snapshot
		WHERE source = ? AND entity = ? AND key > ? AND NOT deleted ORDER BY key LIMIT ?`), source, entity, after, limit); err != nil {
		return nil, fmt.Errorf("store: live keys of %s/%s: %w", source, entity, err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	first, last := keys[0], keys[len(keys)-1]
	var seen []string
	if err := s.db.SelectContext(ctx, &seen, s.q(`SELECT key FROM seen_keys
		WHERE source = ? AND entity = ? AND pass = ? AND key >= ? AND key <= ?`), source, entity, pass, first, last); err != nil {
		return nil, fmt.Errorf("store: seen keys of %s/%s: %w", source, entity, err)
	}
	var counts []struct {
		Key    string `db:"key"`
		Misses int    `db:"misses"`
		Ended  bool   `db:"ended"`
	}
	if err := s.db.SelectContext(ctx, &counts, s.q(`SELECT key, misses, ended FROM miss_counts
		WHERE source = ? AND entity = ? AND key >= ? AND key <= ?`), source, entity, first, last); err != nil {
		return nil, fmt.Errorf("store: miss counts of %s/%s: %w", source, entity, err)
	}
	saw := make(map[string]bool, len(seen))
	for _, k := range seen {
		saw[k] = true
	}
	out := make([]KeyState, len(keys))
	at := make(map[string]int, len(keys))
	for i, k := range keys {
		out[i] = KeyState{Key: k, Seen: saw[k]}
		at[k] = i
	}
	for _, c := range counts {
		if i, ok := at[c.Key]; ok {
			out[i].Misses, out[i].Ended = c.Misses, c.Ended
		}
	}
	return out, nil
}

// storeMisses writes a batch's miss counts inside its commit.
func (s *sqlStore) storeMisses(ctx context.Context, tx *sqlx.Tx, b Batch) error {
	if len(b.Misses) == 0 {
		return nil
	}
	var keep [][]any
	var drop []MissCount
	at := s.d.timeArg(b.At)
	for _, m := range b.Misses {
		if m.Misses <= 0 && !m.Ended {
			drop = append(drop, m)
			continue
		}
		keep = append(keep, []any{b.Source, m.Entity, m.Key, m.Misses, m.Ended, at})
	}
	for _, m := range drop {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM miss_counts WHERE source = ? AND entity = ? AND key = ?`),
			b.Source, m.Entity, m.Key); err != nil {
			return err
		}
	}
	return s.insertRows(ctx, tx, `INSERT INTO miss_counts (source, entity, key, misses, ended, updated_at) VALUES `,
		` ON CONFLICT (source, entity, key) DO UPDATE SET misses = excluded.misses, ended = excluded.ended,
		updated_at = excluded.updated_at`, keep, nil)
}
