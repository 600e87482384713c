package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"
)

// factGroups caches fact_groups (migration 0014): the (kind, agency) pairs a
// snapshot row's facts name by a small integer instead of two strings. Only pairs
// known to be committed are cached: an id a rolled-back commit drew may be drawn
// again for another pair.
type factGroups struct {
	mu    sync.RWMutex
	ids   map[[2]string]int64
	names map[int64][2]string
}

func (g *factGroups) remember(id int64, pair [2]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ids == nil {
		g.ids, g.names = map[[2]string]int64{}, map[int64][2]string{}
	}
	g.ids[pair], g.names[id] = id, pair
}

// factGroupID returns the id of the kind and agency, adding the pair to
// fact_groups in tx when it is new; added holds the pairs this transaction added
// (rememberGroups caches them once it commits).
func (s *sqlStore) factGroupID(ctx context.Context, tx *sqlx.Tx, kind, agency string, added map[[2]string]int64) (int64, error) {
	pair := [2]string{kind, agency}
	s.groups.mu.RLock()
	id, ok := s.groups.ids[pair]
	s.groups.mu.RUnlock()
	if ok {
		return id, nil
	}
	if id, ok := added[pair]; ok {
		return id, nil
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO fact_groups (kind, agency) VALUES (?, ?) ON CONFLICT (kind, agency) DO NOTHING`),
		kind, agency); err != nil {
		return 0, fmt.Errorf("add fact group %s/%s: %w", kind, agency, err)
	}
	if err := tx.GetContext(ctx, &id, s.q(`SELECT id FROM fact_groups WHERE kind = ? AND agency = ?`), kind, agency); err != nil {
		return 0, fmt.Errorf("read fact group %s/%s: %w", kind, agency, err)
	}
	added[pair] = id
	return id, nil
}

// rememberGroups caches the pairs a committed transaction added.
func (s *sqlStore) rememberGroups(added map[[2]string]int64) {
	for pair, id := range added {
		s.groups.remember(id, pair)
	}
}

// resolveGroup fills in the kind and agency of stored facts. A stored row names a
// committed group.
func (s *sqlStore) resolveGroup(ctx context.Context, q sqlx.QueryerContext, c *factColumns) error {
	if !c.has() {
		return nil
	}
	id := c.Group.Int64
	s.groups.mu.RLock()
	pair, ok := s.groups.names[id]
	s.groups.mu.RUnlock()
	if !ok {
		var row struct {
			Kind   string `db:"kind"`
			Agency string `db:"agency"`
		}
		if err := sqlx.GetContext(ctx, q, &row, s.q(`SELECT kind, agency FROM fact_groups WHERE id = ?`), id); err != nil {
			return fmt.Errorf("read fact group %d: %w", id, err)
		}
		pair = [2]string{row.Kind, row.Agency}
		s.groups.remember(id, pair)
	}
	c.Kind, c.Agency = pair[0], pair[1]
	return nil
}
