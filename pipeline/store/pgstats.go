package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// PostgreSQL plans a commit's key look-ups (key = ANY(...) on snapshot, whose
// rows hold the figures' facts too) from the tables' statistics. A table that was never analyzed looks
// tiny to the planner, which then reads every row of the source and entity for
// each look-up: 50 ms for a thousand keys at 100,000 records, ten times that at
// a million. Autovacuum analyzes tables as they grow, but it may be off (it is
// on the project's test server) or behind a bulk load, so the store analyzes
// the look-up columns itself once the snapshot has doubled since the planner's
// statistics, as one should after any bulk load. It does so before a look-up:
// a commit of records the writer marks new (a first sync's) looks nothing up
// and does not wait for it, so a first sync whose writer does not look keys up
// either is analyzed once, by the commit that ends it. An analysis reads a
// sample of 30,000 rows: about 0.2 s at 100,000 records.

// analyzeFloor is the snapshot growth below which no analysis is worth it: a
// look-up that reads a few thousand rows is still quick.
const analyzeFloor = 10000

// analyzeTables are the columns commits look rows up by.
var analyzeTables = []string{`snapshot (source, entity, key, lazy_seq)`}

// pgStats tracks the snapshot's growth since its last analysis.
type pgStats struct {
	mu       sync.Mutex
	floor    int64   // analyzeFloor unless set (tests)
	known    bool    // base was read from the catalogue
	due      bool    // the table has rows but was never analyzed
	base     float64 // rows at the last analysis
	inserted int64   // rows inserted since, by this process
}

// analyzeIfDue analyzes the look-up columns when the snapshot has grown past
// the statistics the planner has. It runs before a look-up (Snapshot, or a
// commit's transaction), so a failure fails a call that has changed nothing.
func (s *sqlStore) analyzeIfDue(ctx context.Context) error {
	if s.d != postgresDialect {
		return nil
	}
	st := &s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.known {
		if err := s.readStats(ctx); err != nil {
			return err
		}
	}
	floor := st.floor
	if floor == 0 {
		floor = analyzeFloor
	}
	if !st.due && float64(st.inserted) < max(float64(floor), st.base) {
		return nil
	}
	return s.analyzeLocked(ctx)
}

// analyzeNow analyzes the look-up columns whatever the growth: after a bulk
// load, whose index builds leave the table's size in the catalogue but no
// statistics of its columns.
func (s *sqlStore) analyzeNow(ctx context.Context) error {
	if s.d != postgresDialect {
		return nil
	}
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	return s.analyzeLocked(ctx)
}

// analyzeLocked runs the analysis and reads its result; s.stats.mu is held.
func (s *sqlStore) analyzeLocked(ctx context.Context) error {
	st := &s.stats
	for _, t := range analyzeTables {
		if _, err := s.db.ExecContext(ctx, `ANALYZE `+t); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	st.inserted = 0
	return s.readStats(ctx)
}

// readStats reads the snapshot's row count as of its last analysis (-1: never
// analyzed); a never analyzed table with rows is due now.
func (s *sqlStore) readStats(ctx context.Context) error {
	var tuples sql.NullFloat64
	var size int64
	if err := s.db.QueryRowContext(ctx, `SELECT c.reltuples, pg_relation_size(c.oid) FROM pg_class c
		WHERE c.oid = to_regclass('snapshot')`).Scan(&tuples, &size); err != nil {
		return fmt.Errorf("read the snapshot's statistics: %w", err)
	}
	st := &s.stats
	st.known = true
	st.due = tuples.Float64 < 0 && size > 0
	st.base = max(tuples.Float64, 0)
	return nil
}

// countInserted counts snapshot rows a committed batch added.
func (s *sqlStore) countInserted(n int) {
	if s.d != postgresDialect || n == 0 {
		return
	}
	s.stats.mu.Lock()
	s.stats.inserted += int64(n)
	s.stats.mu.Unlock()
}
