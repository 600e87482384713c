package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
)

// Lock is a held named lock (see Store.TryLock).
type Lock interface {
	// Held reports whether the lock is still held. A PostgreSQL lock lives in a
	// database session; when the session dies (an idle timeout, a killed backend, a
	// network cut) the server releases it and Held turns false, after which the
	// holder must stop the work the lock guards.
	Held(ctx context.Context) bool
	// Unlock releases the lock; calling it again, or after the lock was lost, does
	// nothing (in particular it never releases a later holder's lock).
	Unlock()
	// Fence is this acquisition's proof for writes made under the lock: a commit
	// carrying it is refused once another holder has taken the lock since.
	Fence() Fence
}

// Fence names a lock and the generation of one acquisition of it. Every acquisition
// takes the next generation, stored in the store itself, so a write checked against
// the fence inside its transaction cannot land after another process took over,
// however late the first one learns that it lost the lock.
type Fence struct {
	Name       string
	Generation int64
}

// ErrFenced is returned by a write whose fence is no longer the lock's current
// generation: another holder took the lock, and the write was not made.
var ErrFenced = errors.New("the store-wide lock was taken over by another holder; nothing was written")

// lockTimeout bounds every lock query: a stalled lock session must not freeze the
// sources and sinks waiting on it.
const lockTimeout = 5 * time.Second

// locker holds named locks that every process sharing the store respects: one
// reader per source and one dispatcher per sink across replicas, and no operator
// command racing a running daemon.
//
// PostgreSQL: session advisory locks, keyed by schema and name, held by one session
// opened outside the store's pool (so no pool size can starve it), one connection
// of its own. SQLite: an exclusive flock on a file per name beside the database, so
// separate processes on one machine (the daemon, `run --once`, `quarantine
// reprocess`) exclude each other; the kernel releases it when a process dies.
type locker struct {
	mu     sync.Mutex
	gen    uint64
	held   map[string]uint64 // name -> generation of the current acquisition
	files  map[string]*os.File
	pgOpen func() (*sql.DB, error) // nil on SQLite
	pgDB   *sql.DB                 // the lock session's own pool of one
	pg     *sql.Conn               // the session itself, pinned: a silent reconnect would lose the locks unnoticed
	dir    string                  // SQLite: where lock files live
}

const lockKey = `hashtext('egov-bridge/lock/' || coalesce(current_schema(), '') || '/' || $1)`

type heldLock struct {
	l     *locker
	name  string
	gen   uint64
	fence Fence
}

func (h heldLock) Held(ctx context.Context) bool { return h.l.stillHeld(ctx, h.name, h.gen) }
func (h heldLock) Unlock()                       { h.l.unlock(h.name, h.gen) }
func (h heldLock) Fence() Fence                  { return h.fence }

// TryLock takes the named lock without waiting; ok is false when another holder, in
// this process or another, has it. Each acquisition takes the lock's next fencing
// generation.
func (s *sqlStore) TryLock(ctx context.Context, name string) (Lock, bool, error) {
	h, ok, err := s.locks.try(ctx, name)
	if err != nil || !ok {
		return nil, false, err
	}
	gen, err := s.nextLease(ctx, name)
	if err != nil {
		h.Unlock()
		return nil, false, fmt.Errorf("store: lock %q: take the next lease generation: %w", name, err)
	}
	h.fence = Fence{Name: name, Generation: gen}
	return h, true, nil
}

func (l *locker) try(ctx context.Context, name string) (heldLock, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[name]; busy {
		return heldLock{}, false, nil
	}
	var ok bool
	var err error
	if l.pgOpen != nil {
		ok, err = l.tryAdvisory(ctx, name)
	} else {
		ok, err = l.tryFile(name)
	}
	if err != nil || !ok {
		return heldLock{}, false, err
	}
	l.gen++
	l.held[name] = l.gen
	return heldLock{l: l, name: name, gen: l.gen}, true, nil
}

// nextLease moves the named lock's generation on, so that writes fenced with an
// earlier acquisition are refused from now on.
func (s *sqlStore) nextLease(ctx context.Context, name string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	var gen int64
	err := s.db.GetContext(ctx, &gen, s.q(`INSERT INTO leases (name, generation) VALUES (?, 1)
		ON CONFLICT (name) DO UPDATE SET generation = leases.generation + 1 RETURNING generation`), name)
	return gen, err
}

// checkFence fails with ErrFenced unless f is still the lock's current generation.
// On PostgreSQL the lease row is share-locked until tx ends, so a new holder's
// nextLease waits for this transaction instead of slipping in before its commit.
func (s *sqlStore) checkFence(ctx context.Context, tx *sqlx.Tx, f *Fence) error {
	if f == nil {
		return nil
	}
	query := fenceQuery
	if s.d == postgresDialect {
		query += " FOR SHARE"
	}
	var gen int64
	err := s.get(ctx, tx, &gen, query, f.Name)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("check lease %q: %w", f.Name, err)
	}
	if gen != f.Generation {
		return fmt.Errorf("lock %q, generation %d, now at %d: %w", f.Name, f.Generation, gen, ErrFenced)
	}
	return nil
}

func (l *locker) tryAdvisory(ctx context.Context, name string) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	if l.pg == nil {
		db, err := l.pgOpen()
		if err != nil {
			return false, fmt.Errorf("store: lock %q: %w", name, err)
		}
		conn, err := db.Conn(qctx)
		if err != nil {
			db.Close()
			return false, fmt.Errorf("store: lock %q: open the lock session: %w", name, err)
		}
		l.pgDB, l.pg = db, conn
	}
	var ok bool
	if err := l.pg.QueryRowContext(qctx, `SELECT pg_try_advisory_lock(`+lockKey+`)`, name).Scan(&ok); err != nil {
		l.dropSession()
		return false, fmt.Errorf("store: lock %q: %w", name, err)
	}
	return ok, nil
}

// dropSession forgets a lock session that failed: its locks are gone with it.
func (l *locker) dropSession() {
	if l.pg != nil {
		l.pg.Close()
		l.pgDB.Close()
		l.pg, l.pgDB = nil, nil
	}
	if l.pgOpen != nil {
		l.held = map[string]uint64{}
	}
}

func (l *locker) tryFile(name string) (bool, error) {
	if err := os.MkdirAll(l.dir, 0o750); err != nil {
		return false, fmt.Errorf("store: lock %q: %w", name, err)
	}
	sum := sha256.Sum256([]byte(name))
	f, err := os.OpenFile(filepath.Join(l.dir, hex.EncodeToString(sum[:8])), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return false, fmt.Errorf("store: lock %q: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("store: lock %q: %w", name, err)
	}
	l.files[name] = f
	return true, nil
}

func (l *locker) stillHeld(ctx context.Context, name string, gen uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] != gen {
		return false
	}
	if l.pgOpen == nil {
		return true // a flock cannot be lost while its file is open
	}
	if l.pg == nil {
		return false
	}
	// Session locks live exactly as long as the session: a live session still holds them.
	qctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	var one int
	if err := l.pg.QueryRowContext(qctx, `SELECT 1`).Scan(&one); err != nil {
		l.dropSession()
		return false
	}
	return true
}

func (l *locker) unlock(name string, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] != gen {
		return // already released, or lost and taken again since
	}
	delete(l.held, name)
	if f, ok := l.files[name]; ok {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		delete(l.files, name)
		return
	}
	if l.pg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
	defer cancel()
	if _, err := l.pg.ExecContext(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`, name); err != nil {
		l.dropSession() // closing the session releases whatever it still held
	}
}

func (l *locker) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, f := range l.files {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		delete(l.files, name)
	}
	l.dropSession()
}
