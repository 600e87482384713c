package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// The schema is versioned SQL files, one folder per dialect, embedded so the binary
// carries its own schema. A file is named NNNN_name.sql; versions only grow, and an
// applied file is never edited: a change is a new file.
//
//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in version order.
func (d dialect) migrations() ([]migration, error) {
	dir := path.Join("migrations", d.String())
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok || e.IsDir() {
			continue
		}
		num, name, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL
)`

// On PostgreSQL applied_at is a timestamptz like every other time.
const createMigrationsTablePG = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL
)`

// migrate applies every migration not yet recorded in schema_migrations, each in
// its own transaction together with its record, so a failed migration leaves the
// schema as the previous one left it.
//
// Several processes may start at once against one database. On PostgreSQL each
// transaction first takes a transaction-scoped advisory lock (keyed by the current
// schema, so stores in different schemas do not wait for each other) and only then
// looks at schema_migrations; the loser of the race finds the migration applied and
// skips it. On SQLite transactions begin IMMEDIATE, which takes the write lock up
// front and serialises them the same way.
func migrate(ctx context.Context, db *sqlx.DB, d dialect) error {
	ms, err := d.migrations()
	if err != nil {
		return fmt.Errorf("store: read migrations: %w", err)
	}
	create := createMigrationsTable
	if d == postgresDialect {
		create = createMigrationsTablePG
	}
	if err := inTx(ctx, db, func(tx *sqlx.Tx) error {
		if err := d.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, create)
		return err
	}); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	// Applied versions stay applied, so one read tells which are missing; only
	// those take the lock, and look again under it. Every start of an up-to-date
	// store (every run --once) thus costs one query instead of a locked
	// transaction per migration.
	var applied []int
	if err := db.SelectContext(ctx, &applied, `SELECT version FROM schema_migrations`); err != nil {
		return fmt.Errorf("store: read schema_migrations: %w", err)
	}
	for _, m := range ms {
		if slices.Contains(applied, m.version) {
			continue
		}
		if err := inTx(ctx, db, func(tx *sqlx.Tx) error {
			if err := d.lockMigrations(ctx, tx); err != nil {
				return err
			}
			var n int
			q := sqlx.Rebind(d.bindType(), `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`)
			if err := tx.GetContext(ctx, &n, q, m.version); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			q = sqlx.Rebind(d.bindType(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
			_, err := tx.ExecContext(ctx, q, m.version, m.name, d.timeArg(time.Now()))
			return err
		}); err != nil {
			return fmt.Errorf("store: apply migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}

// lockMigrations serialises schema changes between processes on PostgreSQL; the lock
// is released when the transaction ends. SQLite needs nothing here (see migrate).
func (d dialect) lockMigrations(ctx context.Context, tx *sqlx.Tx) error {
	if d != postgresDialect {
		return nil
	}
	_, err := tx.ExecContext(ctx,
		`SELECT pg_advisory_xact_lock(hashtext('egov-bridge/migrate/' || coalesce(current_schema(), '')))`)
	if err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction, committing when it returns nil.
func inTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
