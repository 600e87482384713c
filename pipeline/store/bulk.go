package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// A fresh first sync inserts up to millions of snapshot rows whose keys, and
// fact times, arrive in the source's cursor order: random for every index but
// lazy_seq's. Kept up to date commit by commit, each such index takes a few
// thousand random inserts per commit: on SQLite every commit rewrote most of its
// pages into the WAL (about 4 GB of page writes for a million records, half the
// first sync's CPU); on PostgreSQL the server spent twice as long on them as on
// the rows themselves. Built once at the end, an index is one sort and one
// sequential write. See docs/decisions/0026-bulk-load-first-sync.md and
// 0032-postgres-bulk-load.md.
//
// While a bulk load is on (a row in snapshot_bulk), the indexes below are absent.
// Commits whose snapshot rows are all new (SnapshotEntry.New) and whose facts
// ride on those rows need none of them; anything else builds them first: a
// commit of a known record, in its own transaction (whichever process makes it),
// and a look-up through Snapshot. Other reads stay correct, only slower, until
// the load ends.

// bulkIndex is one index a bulk load leaves out: how to drop it, and the
// statements that build it as the migrations made it.
type bulkIndex struct {
	name   string
	drop   string
	create []string
}

var bulkIndexes = []bulkIndex{
	{"snapshot_key", `DROP INDEX IF EXISTS snapshot_key`, []string{`CREATE UNIQUE INDEX IF NOT EXISTS snapshot_key ON snapshot (source, entity, key)`}},
	factBulkIndex("snapshot_fact_received", `CREATE INDEX IF NOT EXISTS snapshot_fact_received ON snapshot (fact_received_at) WHERE fact_received_at IS NOT NULL`),
	factBulkIndex("snapshot_fact_finished", `CREATE INDEX IF NOT EXISTS snapshot_fact_finished ON snapshot (fact_finished_at) WHERE fact_finished_at IS NOT NULL`),
	factBulkIndex("snapshot_fact_supplement", `CREATE INDEX IF NOT EXISTS snapshot_fact_supplement ON snapshot (fact_supplement_at) WHERE fact_supplement_at IS NOT NULL`),
	factBulkIndex("snapshot_fact_due", `CREATE INDEX IF NOT EXISTS snapshot_fact_due ON snapshot (fact_due_at) WHERE fact_state = 1`),
}

// pgBulkIndexes are PostgreSQL's: its key index is the primary key, built as a
// unique index (readers go on meanwhile; only writers wait) and then made the
// constraint again.
var pgBulkIndexes = append([]bulkIndex{{"snapshot_pkey", `ALTER TABLE snapshot DROP CONSTRAINT IF EXISTS snapshot_pkey`, []string{
	`CREATE UNIQUE INDEX IF NOT EXISTS snapshot_pkey ON snapshot (source, entity, key)`,
	`DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'snapshot_pkey' AND conrelid = 'snapshot'::regclass) THEN
			ALTER TABLE snapshot ADD CONSTRAINT snapshot_pkey PRIMARY KEY USING INDEX snapshot_pkey;
		END IF;
	END $$`,
}}}, bulkIndexes[1:]...)

func factBulkIndex(name, create string) bulkIndex {
	return bulkIndex{name, `DROP INDEX IF EXISTS ` + name, []string{create}}
}

// leftOut is the dialect's list of the indexes a bulk load leaves out.
func (s *sqlStore) leftOut() []bulkIndex {
	if s.d == postgresDialect {
		return pgBulkIndexes
	}
	return bulkIndexes
}

// bulkState is what this process knows of a bulk load: on means one may be on (this
// process began it, or found its row when it opened the store), so a look-up
// checks before it reads.
type bulkState struct {
	on atomic.Bool
}

// BeginBulkLoad starts a bulk load for source's fresh first sync when the
// snapshot holds no row at all and no other load is on, and reports whether it
// did.
func (s *sqlStore) BeginBulkLoad(ctx context.Context, source string) (bool, error) {
	const busyQuery = `SELECT EXISTS (SELECT 1 FROM snapshot) OR EXISTS (SELECT 1 FROM snapshot_bulk)`
	if s.d == postgresDialect {
		// SQLite's IMMEDIATE transaction serializes the check and the drops; here
		// a lock does, taken before the transaction reads the snapshot so that two
		// processes starting on an empty one cannot both begin (nor deadlock on
		// their upgrades). It is asked for only when the snapshot looks empty,
		// which no reader waits on.
		var busy bool
		if err := s.db.GetContext(ctx, &busy, busyQuery); err != nil {
			return false, fmt.Errorf("store: begin bulk load of source %q: %w", source, err)
		}
		if busy {
			return false, nil
		}
	}
	began := false
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if s.d == postgresDialect {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE snapshot IN ACCESS EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		var busy bool
		if err := tx.GetContext(ctx, &busy, busyQuery); err != nil || busy {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO snapshot_bulk (source, began_at) VALUES (?, ?)`), source, time.Now().Unix()); err != nil {
			return err
		}
		for _, ix := range s.leftOut() {
			if _, err := tx.ExecContext(ctx, ix.drop); err != nil {
				return err
			}
		}
		began = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: begin bulk load of source %q: %w", source, err)
	}
	if began {
		s.bulk.on.Store(true)
	}
	return began, nil
}

// EndBulkLoad builds the indexes a bulk load left out, if one is on, and reports
// whether it built them.
func (s *sqlStore) EndBulkLoad(ctx context.Context) (bool, error) {
	var built bool
	err := inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		built, err = s.endBulkTx(ctx, tx)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: build the snapshot's indexes after a bulk load: %w", err)
	}
	if built && s.d == postgresDialect {
		// The planner's statistics are of an empty table (or of none): the
		// look-ups after a load need them (see pgstats.go).
		if err := s.analyzeNow(ctx); err != nil {
			return false, fmt.Errorf("store: after a bulk load: %w", err)
		}
	}
	return built, nil
}

// endBulkTx builds the left-out indexes in tx when a bulk load is on.
func (s *sqlStore) endBulkTx(ctx context.Context, tx *sqlx.Tx) (bool, error) {
	var on bool
	check := `SELECT EXISTS (SELECT 1 FROM snapshot_bulk)`
	if s.d == postgresDialect {
		// Two transactions that find the load on build one after the other: the
		// second waits for the first's rows and then finds none.
		check = `SELECT EXISTS (SELECT 1 FROM snapshot_bulk FOR UPDATE)`
	}
	if err := tx.GetContext(ctx, &on, check); err != nil {
		return false, err
	}
	if !on {
		s.bulk.on.Store(false)
		return false, nil
	}
	if s.d == sqliteDialect {
		// The sorter may use a second core for the key index: at the end of a first
		// sync the other one is mostly idle (0.5–0.9 s less of 5–6 s per million).
		if _, err := tx.ExecContext(ctx, `PRAGMA threads = 2`); err != nil {
			return false, err
		}
		defer tx.ExecContext(context.WithoutCancel(ctx), `PRAGMA threads = 0`) //nolint:errcheck // the default again; a failure only leaves helper threads allowed
	}
	for i, ix := range s.leftOut() {
		for _, stmt := range ix.create {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				if i == 0 && isUniqueViolation(err) {
					// Only a writer that broke SnapshotEntry.New's promise gets here.
					return false, fmt.Errorf("a key was stored twice while the snapshot was bulk-loaded: %w", err)
				}
				return false, fmt.Errorf("index %s: %w", ix.name, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM snapshot_bulk`); err != nil {
		return false, err
	}
	s.bulk.on.Store(false)
	return true, nil
}

// isUniqueViolation reports a unique constraint's failure on either backend.
func isUniqueViolation(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return strings.Contains(err.Error(), "UNIQUE")
}

// noteBulk, when the store opens, remembers a bulk load left on by a process
// that stopped before ending it, so the first look-up builds the indexes.
func (s *sqlStore) noteBulk(ctx context.Context) error {
	var on bool
	if err := s.db.GetContext(ctx, &on, `SELECT EXISTS (SELECT 1 FROM snapshot_bulk)`); err != nil {
		return fmt.Errorf("store: look for a bulk load: %w", err)
	}
	s.bulk.on.Store(on)
	return nil
}

// bulkEligible reports whether a commit can go in while a bulk load is on: the
// snapshot rows it stores, if any, are all new, and its facts ride on them.
func bulkEligible(b Batch, snap snapshotRows) bool {
	if !snap.allNew() {
		return false
	}
	for _, f := range b.Facts {
		if snap.byKey[[2]string{f.Entity, f.Key}] == nil {
			return false
		}
	}
	return true
}

// needKeyIndex builds, in tx, the indexes a bulk load left out, if one is on: tx
// is about to look records up by key or upsert them.
func (s *sqlStore) needKeyIndex(ctx context.Context, tx *sqlx.Tx) error {
	if _, err := s.endBulkTx(ctx, tx); err != nil {
		return fmt.Errorf("build the snapshot's indexes after a bulk load: %w", err)
	}
	return nil
}
