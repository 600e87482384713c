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
	mu     sync.RWMutex
	ids    map[[2]string]int64
	names  map[int64][2]string
	loaded bool // the table was read whole once (loadGroups)
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
	if id, ok := added[pair]; ok {
		return id, nil
	}
	id, ok, err := s.cachedGroup(ctx, tx, pair, added)
	if err != nil || ok {
		return id, err
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

// resolveGroup fills in the kind and agency of stored facts, read before the
// caller's transaction wrote any: a stored row names a committed group. added is
// as for factGroupID.
func (s *sqlStore) resolveGroup(ctx context.Context, q sqlx.QueryerContext, c *factColumns, added map[[2]string]int64) error {
	if !c.has() {
		return nil
	}
	id := c.Group.Int64
	s.groups.mu.RLock()
	pair, ok := s.groups.names[id]
	loaded := s.groups.loaded
	s.groups.mu.RUnlock()
	if !ok && !loaded {
		if err := s.loadGroups(ctx, q, added); err != nil {
			return err
		}
		s.groups.mu.RLock()
		pair, ok = s.groups.names[id]
		s.groups.mu.RUnlock()
	}
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

// cachedGroup looks the pair up in the cache, reading the whole table into it
// first when this process has not (a province has a few hundred agencies: one
// read instead of one per agency in its first commits).
func (s *sqlStore) cachedGroup(ctx context.Context, q sqlx.QueryerContext, pair [2]string, added map[[2]string]int64) (int64, bool, error) {
	s.groups.mu.RLock()
	id, ok := s.groups.ids[pair]
	loaded := s.groups.loaded
	s.groups.mu.RUnlock()
	if ok || loaded {
		return id, ok, nil
	}
	if err := s.loadGroups(ctx, q, added); err != nil {
		return 0, false, err
	}
	s.groups.mu.RLock()
	id, ok = s.groups.ids[pair]
	s.groups.mu.RUnlock()
	return id, ok, nil
}

// loadGroups caches every stored group but those the caller's transaction added
// (not committed yet).
func (s *sqlStore) loadGroups(ctx context.Context, q sqlx.QueryerContext, added map[[2]string]int64) error {
	err := queryEach(ctx, q, `SELECT id, kind, agency FROM fact_groups`, nil, func(r *sqlx.Rows) error {
		var id int64
		var pair [2]string
		if err := r.Scan(&id, &pair[0], &pair[1]); err != nil {
			return err
		}
		if _, mine := added[pair]; !mine {
			s.groups.remember(id, pair)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read fact groups: %w", err)
	}
	s.groups.mu.Lock()
	s.groups.loaded = true
	s.groups.mu.Unlock()
	return nil
}
