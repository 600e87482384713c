package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// locker holds named locks that every process sharing the store respects: one
// reader per source and one dispatcher per sink across replicas. On PostgreSQL they
// are session advisory locks held by one dedicated connection, so a replica that
// dies releases its locks with its connection; on SQLite, which one process owns,
// they are kept in memory.
type locker struct {
	mu   sync.Mutex
	held map[string]bool
	pg   func(ctx context.Context) (*sql.Conn, error) // nil on SQLite
	conn *sql.Conn                                    // the session holding PostgreSQL locks
}

const lockKey = `hashtext('egov-bridge/lock/' || coalesce(current_schema(), '') || '/' || $1)`

// TryLock takes the named lock without waiting; ok is false when another holder, in
// this process or another, has it.
func (s *sqlStore) TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	l := &s.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] {
		return nil, false, nil
	}
	if l.pg != nil {
		if l.conn == nil {
			if l.conn, err = l.pg(ctx); err != nil {
				return nil, false, fmt.Errorf("store: lock %q: %w", name, err)
			}
		}
		if err := l.conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(`+lockKey+`)`, name).Scan(&ok); err != nil {
			// The session may be gone, and every lock with it: start afresh.
			l.conn.Close()
			l.conn, l.held = nil, map[string]bool{}
			return nil, false, fmt.Errorf("store: lock %q: %w", name, err)
		}
		if !ok {
			return nil, false, nil
		}
	}
	l.held[name] = true
	return func() { s.unlock(name) }, true, nil
}

func (s *sqlStore) unlock(name string) {
	l := &s.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held[name] {
		return
	}
	delete(l.held, name)
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`, name); err != nil {
		// Closing the session releases whatever it still held.
		l.conn.Close()
		l.conn, l.held = nil, map[string]bool{}
	}
}

func (l *locker) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
	l.held = map[string]bool{}
}
