package pgtable

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/internal/redact"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.AddSink("pgtable", "mirrors events and each entity's current state into PostgreSQL tables for BI tools", NewOptions,
		func(ctx context.Context, env pipeline.Env, o *Options) (pipeline.Sink, error) {
			return New(ctx, env, o)
		})
}

// setupTimeout bounds the table check at startup, so an unreachable server delays
// the daemon's start by at most this much.
const setupTimeout = 30 * time.Second

// Sink writes events to the events table and each entity's state to its state table.
// Deliver is safe for concurrent use, from one process or several replicas.
type Sink struct {
	name    string
	opts    Options
	db      *sqlx.DB
	log     *slog.Logger
	red     redact.Redactor
	lockKey int64

	insertEvent string // the events table's INSERT, built once

	ddlMu sync.Mutex // one DDL transaction at a time in this process
	ready sync.Map   // table name -> struct{}: tables known to exist
}

var _ pipeline.Sink = (*Sink)(nil)

// New validates the options, opens the pool and creates the schema and events table
// when missing. A server that cannot be reached is not fatal: the sink logs it and
// creates its tables on the first delivery, which the dispatcher retries. A server
// that answers and refuses (wrong password, no CREATE right) fails here, where the
// operator sees it.
func New(ctx context.Context, env pipeline.Env, o *Options) (*Sink, error) {
	if err := pipeline.Invalid(o); err != nil {
		return nil, pipeline.Permanentf("pgtable sink %q: invalid options: %v", env.Name, err)
	}
	s := &Sink{
		name:    env.Name,
		opts:    *o,
		log:     env.Logger,
		red:     newRedactor(o.DSN),
		lockKey: ddlLockKey(o.Schema),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.insertEvent = `INSERT INTO ` + s.qualified(o.EventsTable) + ` (event_id, type, rule, source, entity, key, agency,
	version, snapshot, changed, before, after, message, detected_at, epoch)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (event_id) DO NOTHING`

	conn, err := pq.NewConnector(o.DSN)
	if err != nil {
		return nil, pipeline.Permanent(s.errorf("dsn: %w", s.red.Err(err)))
	}
	db := sqlx.NewDb(sql.OpenDB(conn), "postgres")
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxOpenConns)
	db.SetConnMaxLifetime(5 * time.Minute) // so the pool follows a failover or a DNS change
	s.db = db

	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := s.ensureEvents(setupCtx); err != nil {
		if !connectionTrouble(err) {
			db.Close()
			return nil, err
		}
		s.log.Warn("pgtable: server unreachable at start; tables will be created on the first delivery",
			"sink", s.name, "err", err)
	}
	return s, nil
}

// ReadsFieldsAsJSON marks the sink as one that stores records only as JSON
// (pipeline.FieldsJSON): a first sync's events reach it without a map of fields.
func (*Sink) ReadsFieldsAsJSON() {}

// Deliver stores ev in one transaction: the event row, unless its id is already
// there, and the entity's state row, unless the stored version is as new or newer.
// A redelivered or stale event therefore changes nothing, and state never rolls
// back whatever order events arrive in.
func (s *Sink) Deliver(ctx context.Context, ev *pipeline.Event) error {
	if ev == nil {
		return pipeline.Permanent(s.errorf("deliver: nil event"))
	}
	if ev.ID == "" {
		return pipeline.Permanent(s.errorf("deliver: an event of entity %s (v%d) has no id", short(ev.Entity), ev.Version))
	}
	table, err := s.stateTable(ev.Entity)
	if err != nil {
		return pipeline.Permanent(s.errorf("deliver event %s: %w", ev.ID, err))
	}
	row, err := encodeEvent(ev)
	if err != nil {
		return pipeline.Permanent(s.errorf("deliver event %s: %w", ev.ID, err))
	}
	if err := s.ensureEvents(ctx); err != nil {
		return err
	}
	state := ev.Type == pipeline.EventDeleted || row.after != nil
	if state {
		if err := s.ensure(ctx, table, stateDDL(s.opts.Schema, table)); err != nil {
			return err
		}
	}
	if err := s.write(ctx, ev, row, table, state); err != nil {
		if code := sqlState(err); code == "42P01" || code == "3F000" {
			s.forget() // undefined table or schema: someone dropped it; create it again
		}
		// The record's key can be a citizen identifier: the event id names it instead.
		return classify(s.errorf("deliver event %s (%s v%d): %w", ev.ID, ev.Entity, ev.Version, s.red.Err(err)))
	}
	return nil
}

// write stores the event row and, when state is set, the entity's state row. Both
// go in one statement, the event INSERT running as a data-modifying CTE of the state
// upsert: one statement is one transaction, so both commit or neither does, and a
// delivery costs one round trip and one commit. That is nearly twice the throughput
// of BEGIN, two INSERTs and COMMIT (see BenchmarkDeliver).
//
// The state row is upserted even when the event row already existed: the version
// guard makes it a no-op then, and a state table emptied by hand fills in again
// from replayed events.
func (s *Sink) write(ctx context.Context, ev *pipeline.Event, row eventRow, table string, state bool) error {
	args := []any{row.id, row.typ, row.rule, row.source, row.entity, row.key, row.agency,
		ev.Version, ev.Snapshot, row.changed, row.before, row.after, row.message, ev.DetectedAt, ev.Epoch}
	query := s.insertEvent
	if state {
		query = s.upsertState(table)
		args = append(args, row.fields, ev.Type == pipeline.EventDeleted)
	}
	_, err := s.db.ExecContext(ctx, query, args...)
	return err
}

// upsertState is the event INSERT ($1-$15) followed by the state upsert ($16 the
// fields, $17 deleted). The state row is written only when the incoming (epoch,
// version) is newer than the stored one (a rebuilt state store restarts versions
// with a later epoch): the WHERE of ON CONFLICT DO UPDATE is evaluated on the
// locked, latest row, so concurrent deliveries of one key end at the greatest
// version whatever their order. An event without fields (a delete that carries
// none) keeps the last known fields.
func (s *Sink) upsertState(table string) string {
	return `WITH event AS (` + s.insertEvent + `)
INSERT INTO ` + s.qualified(table) + ` AS cur (key, source, agency, version, epoch, fields, updated_at, deleted, deleted_at)
VALUES ($6, $4, $7, $8, $15, COALESCE($16::jsonb, '{}'::jsonb), $14, $17, CASE WHEN $17 THEN $14::timestamptz END)
ON CONFLICT (key, source) DO UPDATE SET
	agency = EXCLUDED.agency,
	version = EXCLUDED.version,
	epoch = EXCLUDED.epoch,
	fields = CASE WHEN $16::jsonb IS NULL THEN cur.fields ELSE EXCLUDED.fields END,
	updated_at = EXCLUDED.updated_at,
	deleted = EXCLUDED.deleted,
	deleted_at = EXCLUDED.deleted_at
WHERE (cur.epoch, cur.version) < (EXCLUDED.epoch, EXCLUDED.version)`
}

// stateTable returns the state table's name for entity, or an error naming the
// entity when it cannot be one.
func (s *Sink) stateTable(entity string) (string, error) {
	if !entityRE.MatchString(entity) {
		return "", fmt.Errorf("entity %q cannot name a table: use lower-case letters, digits and underscores", entity)
	}
	table := s.opts.StateTablePrefix + entity
	if len(table) > maxIdentLen {
		return "", fmt.Errorf("entity %q makes table name %q longer than PostgreSQL's %d characters", entity, table, maxIdentLen)
	}
	if table == s.opts.EventsTable {
		return "", fmt.Errorf("entity %q makes state table %q, which is the events table", entity, table)
	}
	return table, nil
}

func (s *Sink) ensureEvents(ctx context.Context) error {
	return s.ensure(ctx, s.opts.EventsTable, eventsDDL(s.opts.Schema, s.opts.EventsTable))
}

func (s *Sink) qualified(table string) string { return quote(s.opts.Schema) + "." + quote(table) }

// errorf names the sink in every error, so a dead letter says where it came from.
func (s *Sink) errorf(format string, args ...any) error {
	return fmt.Errorf("pgtable sink %q: "+format, append([]any{s.name}, args...)...)
}

// Close closes the pool.
func (s *Sink) Close() error {
	if err := s.db.Close(); err != nil {
		return s.errorf("close: %w", err)
	}
	return nil
}
