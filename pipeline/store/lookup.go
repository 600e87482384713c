package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// IndexFunc returns the values a record is found by in one look-up index (folded
// text, or the places its area text names); none leaves the record out. fields are
// as the snapshot stores them (JSON-decoded: numbers as json.Number, times as RFC
// 3339 text), whether the record comes from a commit or from the snapshot.
type IndexFunc func(fields map[string]any) []string

// LookupHit is a record found through a look-up index, as its snapshot holds it.
type LookupHit struct {
	Source string
	SnapshotEntry
}

// lookupIndexes are the indexes a store's commits keep, per entity.
type lookupIndexes struct {
	mu     sync.RWMutex
	byName map[string]map[string]IndexFunc // entity -> name -> values
}

func (l *lookupIndexes) of(entity string) map[string]IndexFunc {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.byName[entity]
}

// IndexLookup asks every later commit to keep the look-up index (entity, name):
// the values fn returns for each record of entity stored, replaced when the record
// changes, removed when it is deleted. Records stored before are indexed by
// FillLookupIndex. Call it before the sources run (the zalo sink does, when built).
func (s *sqlStore) IndexLookup(entity, name string, fn IndexFunc) {
	s.index.mu.Lock()
	defer s.index.mu.Unlock()
	if s.index.byName == nil {
		s.index.byName = map[string]map[string]IndexFunc{}
	}
	if s.index.byName[entity] == nil {
		s.index.byName[entity] = map[string]IndexFunc{}
	}
	s.index.byName[entity][name] = fn
}

// indexSnapshot replaces the index rows of the batch's records of indexed entities,
// inside the commit.
func (s *sqlStore) indexSnapshot(ctx context.Context, tx *sqlx.Tx, source string, snap snapshotRows) error {
	byEntity := map[string][]*pendingSnapshot{}
	for _, r := range snap.list {
		if len(s.index.of(r.Entity)) > 0 {
			byEntity[r.Entity] = append(byEntity[r.Entity], r)
		}
	}
	for entity, list := range byEntity {
		// A record's first version (change detection counts versions from 1) has
		// no rows yet, and a first sync's records are all new: only records seen
		// before have rows to replace.
		var keys []string
		for _, r := range list {
			if r.Version != 1 {
				keys = append(keys, r.Key)
			}
		}
		for name := range s.index.of(entity) {
			if err := forEachIn(s.d, "key", keys, func(cond string, in []any) error {
				_, err := tx.ExecContext(ctx, s.q(`DELETE FROM lookup_index WHERE entity = ? AND name = ? AND source = ? AND `+cond),
					append([]any{entity, name, source}, in...)...)
				return err
			}); err != nil {
				return err
			}
		}
		var rows [][]any
		for _, r := range list {
			if r.Deleted {
				continue
			}
			fields, err := s.decodeStored(ctx, tx, r.fields)
			if err != nil {
				return fmt.Errorf("%s %q: %w", entity, r.Key, err)
			}
			rows = append(rows, indexRows(s.index.of(entity), entity, source, r.Key, fields)...)
		}
		if err := s.insertRows(ctx, tx, `INSERT INTO lookup_index (entity, name, value, source, key) VALUES `,
			` ON CONFLICT DO NOTHING`, rows, nil); err != nil {
			return err
		}
	}
	return nil
}

// indexRows are one record's index rows, each value once.
func indexRows(fns map[string]IndexFunc, entity, source, key string, fields map[string]any) [][]any {
	names := make([]string, 0, len(fns))
	for n := range fns {
		names = append(names, n)
	}
	sort.Strings(names)
	var rows [][]any
	for _, name := range names {
		seen := map[string]bool{}
		for _, v := range fns[name](fields) {
			if v == "" || seen[v] {
				continue
			}
			seen[v] = true
			rows = append(rows, []any{entity, name, v, source, key})
		}
	}
	return rows
}

// fillPage is how many snapshot rows FillLookupIndex reads per statement.
const fillPage = 1000

// FillLookupIndex indexes the records stored before the index was asked for, once
// per (entity, name): it reads the entity's snapshot in pages and marks the index
// filled. A record a concurrent commit indexes keeps the commit's rows (the fill
// never overwrites). It reports whether it filled anything now.
func (s *sqlStore) FillLookupIndex(ctx context.Context, entity, name string, at time.Time) (bool, error) {
	fn := s.index.of(entity)[name]
	if fn == nil {
		return false, fmt.Errorf("store: look-up index %s/%s was never asked for", entity, name)
	}
	var n int
	if err := s.db.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM lookup_indexed WHERE entity = ? AND name = ?`), entity, name); err != nil {
		return false, fmt.Errorf("store: look-up index %s/%s: %w", entity, name, err)
	}
	if n > 0 {
		return false, nil
	}
	one := map[string]IndexFunc{name: fn}
	lastSource, lastKey := "", ""
	for {
		var page []struct {
			Source string `db:"source"`
			Key    string `db:"key"`
			Fields []byte `db:"fields"`
		}
		if err := s.db.SelectContext(ctx, &page, s.q(`SELECT source, key, fields FROM snapshot
			WHERE entity = ? AND deleted = ? AND (source > ? OR (source = ? AND key > ?))
			ORDER BY source, key LIMIT ?`), entity, false, lastSource, lastSource, lastKey, fillPage); err != nil {
			return false, fmt.Errorf("store: fill look-up index %s/%s: %w", entity, name, err)
		}
		if len(page) == 0 {
			break
		}
		var rows [][]any
		for _, r := range page {
			fields, err := s.decodeStored(ctx, s.db, r.Fields)
			if err != nil {
				return false, fmt.Errorf("store: fill look-up index %s/%s: %s %q: %w", entity, name, entity, r.Key, err)
			}
			rows = append(rows, indexRows(one, entity, r.Source, r.Key, fields)...)
		}
		if err := s.inTx(ctx, func(tx *sqlx.Tx) error {
			return s.insertRows(ctx, tx, `INSERT INTO lookup_index (entity, name, value, source, key) VALUES `,
				` ON CONFLICT DO NOTHING`, rows, nil)
		}); err != nil {
			return false, fmt.Errorf("store: fill look-up index %s/%s: %w", entity, name, err)
		}
		lastSource, lastKey = page[len(page)-1].Source, page[len(page)-1].Key
	}
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO lookup_indexed (entity, name, filled_at) VALUES (?, ?, ?)
		ON CONFLICT (entity, name) DO NOTHING`), entity, name, s.d.timeArg(at)); err != nil {
		return false, fmt.Errorf("store: mark look-up index %s/%s filled: %w", entity, name, err)
	}
	return true, nil
}

// lookupQuery reads records through the index: the index rows of one value, each
// joined to its snapshot row by primary key.
const lookupQuery = `SELECT s.source, s.key, s.hash, s.version, s.fields, s.deleted, s.updated_at
		FROM lookup_index i JOIN snapshot s ON s.source = i.source AND s.entity = i.entity AND s.key = i.key
		WHERE i.entity = ? AND i.name = ? AND i.value = ? AND s.deleted = ?
			AND (i.source > ? OR (i.source = ? AND i.key > ?))
		ORDER BY i.source, i.key LIMIT ?`

// LookupRecords returns up to limit live records of entity whose index name holds
// value, through the index (a few rows, whatever the snapshot's size), ordered by
// source and key.
func (s *sqlStore) LookupRecords(ctx context.Context, entity, name, value string, limit int) ([]LookupHit, error) {
	return s.LookupRecordsAfter(ctx, entity, name, value, "", "", limit)
}

// LookupRecordsAfter is LookupRecords from the record after (afterSource,
// afterKey): a caller reads every record of a value a page at a time.
func (s *sqlStore) LookupRecordsAfter(ctx context.Context, entity, name, value, afterSource, afterKey string, limit int) ([]LookupHit, error) {
	if limit <= 0 {
		limit = 20
	}
	var rows []struct {
		Source string `db:"source"`
		snapshotRow
	}
	err := s.db.SelectContext(ctx, &rows, s.q(lookupQuery), entity, name, value, false,
		afterSource, afterSource, afterKey, limit)
	if err != nil {
		return nil, fmt.Errorf("store: look up %s by %s: %w", entity, name, err)
	}
	out := make([]LookupHit, 0, len(rows))
	for _, r := range rows {
		fields, err := s.decodeStored(ctx, s.db, r.Fields)
		if err != nil {
			return nil, fmt.Errorf("store: look up %s by %s: key %q: %w", entity, name, r.Key, err)
		}
		out = append(out, LookupHit{Source: r.Source, SnapshotEntry: SnapshotEntry{Entity: entity, Key: r.Key, Hash: string(r.Hash),
			Version: r.Version, Fields: fields, UpdatedAt: r.UpdatedAt.Time}})
	}
	return out, nil
}
