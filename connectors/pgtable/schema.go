package pgtable

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// quote quotes a PostgreSQL identifier. The names reaching it are already checked
// to be plain lower-case names; quoting anyway keeps a keyword-like name (an entity
// called "order") from breaking the statement.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// eventsDDL creates the append-only events table and its indexes. seq records
// arrival order exactly (delivered_at is the transaction's start time, which ties
// and may commit out of order); it is what a feed reader orders and pages by.
func eventsDDL(schema, table string) []string {
	t := quote(schema) + "." + quote(table)
	idx := func(suffix, cols string) string {
		return `CREATE INDEX IF NOT EXISTS ` + quote(table+suffix) + ` ON ` + t + ` ` + cols
	}
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + t + ` (
	seq          bigint GENERATED ALWAYS AS IDENTITY,
	event_id     text PRIMARY KEY,
	type         text NOT NULL,
	rule         text,
	source       text NOT NULL,
	entity       text NOT NULL,
	key          text NOT NULL,
	agency       text,
	version      bigint NOT NULL,
	epoch        bigint NOT NULL DEFAULT 0,
	snapshot     boolean NOT NULL DEFAULT false,
	changed      text[],
	before       jsonb,
	after        jsonb,
	message      jsonb,
	detected_at  timestamptz NOT NULL,
	delivered_at timestamptz NOT NULL DEFAULT now()
)`,
		idx("_seq_idx", "(seq)"),
		idx("_entity_key_idx", "(entity, key, version)"),
		idx("_detected_idx", "(detected_at)"),
		idx("_agency_idx", "(agency, detected_at)"),
	}
}

// stateDDL creates one entity's current-state table. The primary key is (key,
// source), not key alone: versions grow per source, so two sources that happen to
// share a key must not overwrite each other's rows through one version guard. key
// comes first so a look-up by key alone still uses the index.
func stateDDL(schema, table string) []string {
	return []string{`CREATE TABLE IF NOT EXISTS ` + quote(schema) + "." + quote(table) + ` (
	key        text NOT NULL,
	source     text NOT NULL,
	agency     text,
	version    bigint NOT NULL,
	epoch      bigint NOT NULL DEFAULT 0,
	fields     jsonb NOT NULL,
	updated_at timestamptz NOT NULL,
	deleted    boolean NOT NULL DEFAULT false,
	deleted_at timestamptz,
	PRIMARY KEY (key, source)
)`}
}

// ddlLockKey is the advisory-lock key under which every replica runs the sink's DDL
// for one schema. Without it, two replicas starting together can both pass CREATE
// TABLE IF NOT EXISTS and one fails on a duplicate catalog row (23505 in pg_type).
func ddlLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("egov-bridge/pgtable/" + schema))
	return int64(h.Sum64())
}

// ensure runs ddl for table once per process: under the advisory lock, and only when
// the table does not exist yet. Checking first, rather than relying on IF NOT EXISTS
// alone, lets a DBA pre-create the schema and tables and grant the sink's user only
// INSERT, UPDATE and SELECT: PostgreSQL checks CREATE rights before IF NOT EXISTS.
//
// DDL failures are never permanent: a missing privilege or a full disk is the
// environment's fault, not the event's, so the event is retried, not dead-lettered.
func (s *Sink) ensure(ctx context.Context, table string, ddl []string) error {
	if _, ok := s.ready.Load(table); ok {
		return nil
	}
	s.ddlMu.Lock()
	defer s.ddlMu.Unlock()
	if _, ok := s.ready.Load(table); ok {
		return nil // another goroutine created it while we waited
	}
	created, err := s.runDDL(ctx, table, ddl)
	if err != nil {
		return s.errorf("create table %s.%s: %w", s.opts.Schema, table, s.red.Err(err))
	}
	if created {
		s.log.Info("pgtable: created table", "sink", s.name, "schema", s.opts.Schema, "table", table)
	}
	s.ready.Store(table, struct{}{})
	return nil
}

func (s *Sink) runDDL(ctx context.Context, table string, ddl []string) (created bool, err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, s.lockKey); err != nil {
		return false, fmt.Errorf("take DDL lock: %w", err)
	}
	var exists bool
	err = tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, quote(s.opts.Schema)+"."+quote(table)).Scan(&exists)
	if err != nil {
		return false, err
	}
	if exists {
		if err := s.upgrade(ctx, tx, table); err != nil {
			return false, err
		}
		return false, tx.Commit()
	}
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, s.opts.Schema).Scan(&exists); err != nil {
		return false, err
	}
	if !exists {
		if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+quote(s.opts.Schema)); err != nil {
			return false, err
		}
	}
	for _, stmt := range ddl {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// addedColumns are the columns later builds added to a table, with their
// definitions: a table made by an earlier build gains them when the sink starts.
// epoch: the version guard compares (epoch, version); deleted_at: when a state row
// was marked deleted.
var addedColumns = map[string][][2]string{
	"state":  {{"epoch", "bigint NOT NULL DEFAULT 0"}, {"deleted_at", "timestamptz"}},
	"events": {{"epoch", "bigint NOT NULL DEFAULT 0"}},
}

// upgrade adds to an existing table the columns its kind gained since it was made.
// Each is checked first: ALTER TABLE needs ownership, which a DBA-made table's
// INSERT-only user lacks, and an up-to-date table must not need it.
func (s *Sink) upgrade(ctx context.Context, tx *sqlx.Tx, table string) error {
	kind := "state"
	if table == s.opts.EventsTable {
		kind = "events"
	}
	for _, c := range addedColumns[kind] {
		var has bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
			WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)`, s.opts.Schema, table, c[0]).Scan(&has); err != nil {
			return err
		}
		if !has {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+s.qualified(table)+` ADD COLUMN IF NOT EXISTS `+quote(c[0])+` `+c[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// forget drops what the sink believes exists, after the server said a table or the
// schema is missing (someone dropped it), so the next delivery creates it again.
func (s *Sink) forget() {
	s.ready.Range(func(k, _ any) bool {
		s.ready.Delete(k)
		return true
	})
}
