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
// bounded.
type Disappearance interface {
	// MarkSeen records keys a pass of the source has read. It is scratch, outside
	// any commit: a crash leaves it to be cleared by the next pass.
	MarkSeen(ctx context.Context, source, entity string, keys []string) error
	// ForgetSeen empties the source's seen keys, at the start and end of a pass.
	ForgetSeen(ctx context.Context, source, entity string) error
	// ResetMisses removes the miss counts of the keys seen by this pass: a record
	// that is back starts counting from zero. It returns how many it removed.
	ResetMisses(ctx context.Context, source, entity string) (int, error)
	// Unseen returns up to limit keys of the source's live records (in the
	// snapshot, not deleted, not marked ended) that this pass has not seen, after
	// `after` in key order, with their miss counts so far.
	Unseen(ctx context.Context, source, entity, after string, limit int) ([]Unseen, error)
}

// Unseen is a live record a complete pass did not read.
type Unseen struct {
	Key    string `db:"key"`
	Misses int    `db:"misses"` // consecutive complete passes that missed it before this one
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

func (s *sqlStore) MarkSeen(ctx context.Context, source, entity string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	rows := make([][]any, len(keys))
	for i, k := range keys {
		rows[i] = []any{source, entity, k}
	}
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		return s.insertRows(ctx, tx, `INSERT INTO seen_keys (source, entity, key) VALUES `,
			` ON CONFLICT (source, entity, key) DO NOTHING`, rows, nil)
	})
	if err != nil {
		return fmt.Errorf("store: mark keys of %s/%s seen: %w", source, entity, err)
	}
	return nil
}

func (s *sqlStore) ForgetSeen(ctx context.Context, source, entity string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM seen_keys WHERE source = ? AND entity = ?`), source, entity); err != nil {
		return fmt.Errorf("store: forget seen keys of %s/%s: %w", source, entity, err)
	}
	return nil
}

func (s *sqlStore) ResetMisses(ctx context.Context, source, entity string) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM miss_counts WHERE source = ? AND entity = ?
		AND key IN (SELECT key FROM seen_keys WHERE source = ? AND entity = ?)`), source, entity, source, entity)
	if err != nil {
		return 0, fmt.Errorf("store: reset miss counts of %s/%s: %w", source, entity, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (s *sqlStore) Unseen(ctx context.Context, source, entity, after string, limit int) ([]Unseen, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []Unseen
	// The snapshot's primary key (source, entity, key) gives the key order; each
	// page starts where the last one ended, so a page costs its own rows.
	err := s.db.SelectContext(ctx, &out, s.q(`SELECT s.key AS key, COALESCE(m.misses, 0) AS misses
		FROM snapshot s LEFT JOIN miss_counts m ON m.source = s.source AND m.entity = s.entity AND m.key = s.key
		WHERE s.source = ? AND s.entity = ? AND s.key > ? AND NOT s.deleted
		AND (m.ended IS NULL OR NOT m.ended)
		AND NOT EXISTS (SELECT 1 FROM seen_keys k WHERE k.source = s.source AND k.entity = s.entity AND k.key = s.key)
		ORDER BY s.key LIMIT ?`), source, entity, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: keys of %s/%s not seen: %w", source, entity, err)
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
