package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	_ "modernc.org/sqlite" // driver "sqlite", pure Go

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// sqliteOptions configure every SQLite connection: WAL so readers do not block the
// writer, a busy timeout instead of immediate SQLITE_BUSY when another process holds
// the lock, foreign keys enforced, IMMEDIATE transactions so a transaction that will
// write takes the lock when it begins instead of failing to upgrade it half-way, and
// FULL sync: a committed transaction survives a power cut. With NORMAL the last
// commits before a power cut can vanish; a vanished "delivered" record re-sends a
// citizen's message, so the store pays one fsync per commit (commits are per batch,
// not per row). See docs/decisions/0010-event-identity-durability-fencing.md.
const sqliteOptions = "_pragma=busy_timeout(10000)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(FULL)" + "&_pragma=wal_autocheckpoint(16384)" +
	"&_txlock=immediate"

// Open connects to the configured store, applies pending migrations and returns it.
// Zero fields of cfg take their defaults. Errors never contain the DSN.
func Open(ctx context.Context, cfg Config) (Store, error) {
	cfg = cfg.withDefaults()
	if err := pipeline.Invalid(cfg); err != nil {
		return nil, fmt.Errorf("store: invalid config: %w", err)
	}
	var (
		s   *sqlStore
		err error
	)
	switch cfg.Driver {
	case DriverPostgres:
		s, err = openPostgres(ctx, cfg)
	default:
		s, err = openSQLite(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, s.db, s.d); err != nil {
		s.db.Close()
		return nil, redactErr(err, cfg.DSN)
	}
	if err := s.readEpoch(ctx); err != nil {
		s.db.Close()
		return nil, redactErr(err, cfg.DSN)
	}
	if err := s.noteBulk(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if s.d == sqliteDialect {
		if s.rdb, err = openSQLiteReader(ctx, cfg); err != nil {
			s.db.Close()
			return nil, err
		}
	}
	s.locks.held = map[string]uint64{}
	s.locks.files = map[string]*os.File{}
	if s.d == postgresDialect {
		s.locks.pgOpen = func() (*sql.DB, error) {
			// A session of its own, outside the pool: holding locks must never take
			// a connection the store's work needs.
			db, err := sql.Open(DriverPostgres, cfg.DSN)
			if err != nil {
				return nil, redactErr(err, cfg.DSN)
			}
			db.SetMaxOpenConns(1)
			db.SetMaxIdleConns(1)
			db.SetConnMaxIdleTime(0)
			db.SetConnMaxLifetime(0)
			return db, nil
		}
	} else {
		s.locks.dir = cfg.Path + ".locks"
	}
	return s, nil
}

func openSQLite(ctx context.Context, cfg Config) (*sqlStore, error) {
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: create folder for sqlite database: %w", err)
		}
	}
	db, err := sqlx.Open(DriverSQLite, cfg.Path+"?"+sqliteOptions)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", cfg.Path, err)
	}
	// One connection: SQLite has one writer anyway, and a single connection means
	// the pool never hands out a second one that would wait on the busy timeout.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", cfg.Path, err)
	}
	return &sqlStore{db: db, d: sqliteDialect}, nil
}

// openSQLiteReader opens the read-only pool Pending uses (see sqlStore.rdb). It is
// opened after the migrations, so the file and its WAL mode exist.
func openSQLiteReader(ctx context.Context, cfg Config) (*sqlx.DB, error) {
	db, err := sqlx.Open(DriverSQLite, cfg.Path+"?"+sqliteOptions+"&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s for reading: %w", cfg.Path, err)
	}
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s for reading: %w", cfg.Path, err)
	}
	return db, nil
}

func openPostgres(ctx context.Context, cfg Config) (*sqlStore, error) {
	pc, err := pq.NewConfig(cfg.DSN)
	if err != nil {
		return nil, redactErr(fmt.Errorf("store: open postgres: %w", err), cfg.DSN)
	}
	// The store's statements are short; JIT compiling one costs more than running
	// it (the status counts paid 0.7 s of compilation to read no rows). A DSN that
	// sets jit keeps its choice.
	if pc.Runtime == nil {
		pc.Runtime = map[string]string{}
	}
	if _, set := pc.Runtime["jit"]; !set {
		pc.Runtime["jit"] = "off"
	}
	connector, err := pq.NewConnectorConfig(pc)
	if err != nil {
		return nil, redactErr(fmt.Errorf("store: open postgres: %w", err), cfg.DSN)
	}
	db := sqlx.NewDb(sql.OpenDB(connector), DriverPostgres)
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, redactErr(fmt.Errorf("store: connect to postgres: %w", err), cfg.DSN)
	}
	return &sqlStore{db: db, d: postgresDialect}, nil
}
