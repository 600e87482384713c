package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// sqlStore is the one Store implementation; d says which SQL backend it talks to.
type sqlStore struct {
	db *sqlx.DB
	// rdb reads the outbox for Pending. On SQLite it is a pool of its own,
	// read-only: in WAL mode readers do not wait for the one writer, so a poll
	// is not held up by a commit waiting on its fsync. On PostgreSQL it is db.
	rdb   *sqlx.DB
	d     dialect
	locks locker
	epoch int64
	// shapes are the field-name lists of positional snapshot rows (shapes.go).
	shapes shapes
	// groups are the fact groups of the snapshot's facts (facts_groups.go).
	groups factGroups
	// index lists the look-up indexes commits keep (see lookup.go).
	index lookupIndexes
	// stats says when PostgreSQL's statistics are due (see pgstats.go).
	stats pgStats
	// wstmts and rstmts are the statements prepared on db and rdb (SQLite
	// only; see stmts.go).
	wstmts, rstmts prepared
	// bulk says whether a bulk load may have left indexes out (see bulk.go).
	bulk bulkState
	// raw keeps the statements new snapshot rows are inserted with (SQLite
	// only; see snapshot_raw.go).
	raw rawStmts
	// feeds holds the feed rows this process committed lately (feedcache.go).
	feeds feedCache
}

var _ Store = (*sqlStore)(nil)

// sqliteChunk bounds an IN (...) list on SQLite, well below its limit on bound
// parameters, so a look-up of any number of keys runs in a few statements.
const sqliteChunk = 500

// q rebinds a query written with '?' placeholders for the dialect.
func (s *sqlStore) q(query string) string { return sqlx.Rebind(s.d.bindType(), query) }

func (s *sqlStore) Close() error {
	s.locks.close()
	s.closeRawStmts()
	s.wstmts.close()
	s.rstmts.close()
	if s.rdb != nil && s.rdb != s.db {
		s.rdb.Close()
	}
	return s.db.Close()
}

// reader is the pool Pending reads from.
func (s *sqlStore) reader() *sqlx.DB {
	if s.rdb != nil {
		return s.rdb
	}
	return s.db
}

type cursorRow struct {
	Source      string `db:"source"`
	Position    []byte `db:"position"`
	InitialDone bool   `db:"initial_done"`
	UpdatedAt   dbTime `db:"updated_at"`
	Edge        []byte `db:"edge"`
	LastError   string `db:"last_error"`
	ErrorAt     dbTime `db:"error_at"`
}

const cursorColumns = `source, position, initial_done, updated_at, edge, last_error, error_at`

func (r cursorRow) state() CursorState {
	var pos, edge pipeline.Position
	if r.Position != nil {
		pos = pipeline.Position(r.Position)
	}
	if r.Edge != nil {
		edge = pipeline.Position(r.Edge)
	}
	return CursorState{Source: r.Source, Position: pos, InitialDone: r.InitialDone, UpdatedAt: r.UpdatedAt.Time,
		Edge: edge, LastError: r.LastError, ErrorAt: r.ErrorAt.Time}
}

func (s *sqlStore) Epoch() int64 { return s.epoch }

// readEpoch loads the store's creation epoch once, when the store opens.
func (s *sqlStore) readEpoch(ctx context.Context) error {
	var v string
	if err := s.db.GetContext(ctx, &v, `SELECT value FROM store_meta WHERE key = 'epoch'`); err != nil {
		return fmt.Errorf("store: read the store's epoch: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("store: the store's epoch %q is not a number: %w", v, err)
	}
	s.epoch = n
	return nil
}

// SetSourceError records the last run's error of a source; "" clears it. A source
// that never committed gets a cursor row with no position.
func (s *sqlStore) SetSourceError(ctx context.Context, source, msg string, at time.Time) error {
	var errAt any
	if msg != "" {
		errAt = s.d.timeArg(at)
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO cursors (source, position, initial_done, updated_at, last_error, error_at)
		VALUES (?, NULL, ?, ?, ?, ?)
		ON CONFLICT (source) DO UPDATE SET last_error = excluded.last_error, error_at = excluded.error_at`),
		source, false, s.d.timeArg(at), pgtext.Text(msg), errAt)
	if err != nil {
		return fmt.Errorf("store: record the last error of source %q: %w", source, err)
	}
	return nil
}

// HasQuarantine reports whether the source has a quarantined bad row (not a failed
// notice), so a run knows whether rows that map cleanly may clear entries.
func (s *sqlStore) HasQuarantine(ctx context.Context, source string) (bool, error) {
	var n int
	err := s.db.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM (SELECT 1 FROM quarantine WHERE source = ? AND rule = '' LIMIT 1) q`), source)
	if err != nil {
		return false, fmt.Errorf("store: look for quarantined rows of source %q: %w", source, err)
	}
	return n > 0, nil
}

// Cursor returns the source's cursor; for a source that never committed it is
// CursorState{Source: source}, with a nil Position.
func (s *sqlStore) Cursor(ctx context.Context, source string) (CursorState, error) {
	var r cursorRow
	err := s.db.GetContext(ctx, &r, s.q(`SELECT `+cursorColumns+` FROM cursors WHERE source = ?`), source)
	if errors.Is(err, sql.ErrNoRows) {
		return CursorState{Source: source}, nil
	}
	if err != nil {
		return CursorState{}, fmt.Errorf("store: read cursor of source %q: %w", source, err)
	}
	return r.state(), nil
}

// ResetCursor clears the position only: InitialDone stays set, so the re-read is not
// treated as a first sync, and the snapshot stays, so unchanged records produce no
// events. updated_at keeps the time of the last commit.
func (s *sqlStore) ResetCursor(ctx context.Context, source string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE cursors SET position = NULL WHERE source = ?`), source)
	if err == nil {
		err = oneRow(res)
	}
	if err != nil {
		return fmt.Errorf("store: reset cursor of source %q: %w", source, err)
	}
	return nil
}

type snapshotRow struct {
	Key       string `db:"key"`
	Hash      dbHash `db:"hash"`
	Version   int64  `db:"version"`
	Fields    []byte `db:"fields"`
	Deleted   bool   `db:"deleted"`
	UpdatedAt dbTime `db:"updated_at"`
}

// Snapshot looks keys up in bounded statements (see forEachIn). On SQLite it reads
// through the reader pool, so a source's next batch is compared while its last
// group is still being committed on the one writing connection.
func (s *sqlStore) Snapshot(ctx context.Context, source, entity string, keys []string) (map[string]SnapshotEntry, error) {
	if err := s.analyzeIfDue(ctx); err != nil {
		return nil, fmt.Errorf("store: read snapshot of %s/%s: %w", source, entity, err)
	}
	if s.bulk.on.Load() {
		if _, err := s.EndBulkLoad(ctx); err != nil {
			return nil, err
		}
	}
	out := make(map[string]SnapshotEntry, len(keys))
	db := s.reader()
	err := forEachIn(s.d, "key", keys, func(cond string, in []any) error {
		var rows []snapshotRow
		q := s.q(`SELECT key, hash, version, fields, deleted, updated_at FROM snapshot WHERE source = ? AND entity = ? AND ` + cond)
		if err := db.SelectContext(ctx, &rows, q, append([]any{source, entity}, in...)...); err != nil {
			return err
		}
		for _, r := range rows {
			fields, err := s.decodeStored(ctx, db, r.Fields)
			if err != nil {
				return fmt.Errorf("key %q: %w", r.Key, err)
			}
			out[r.Key] = SnapshotEntry{Entity: entity, Key: r.Key, Hash: string(r.Hash), Version: r.Version, Fields: fields, Deleted: r.Deleted, UpdatedAt: r.UpdatedAt.Time}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read snapshot of %s/%s: %w", source, entity, err)
	}
	return out, nil
}

// HasSnapshot asks the primary key for one row of the source.
func (s *sqlStore) HasSnapshot(ctx context.Context, source string) (bool, error) {
	var n int
	err := s.db.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM (SELECT 1 FROM snapshot WHERE source = ? LIMIT 1) q`), source)
	if err != nil {
		return false, fmt.Errorf("store: look for snapshot records of source %q: %w", source, err)
	}
	return n > 0, nil
}

// forEachIn calls fn with a condition "col matches one of values" and its bind
// arguments, in as few statements as the dialect allows: one `col = ANY(?)` with an
// array on PostgreSQL, IN (...) lists of at most sqliteChunk on SQLite. The
// condition's placeholders come last in the statement's arguments.
func forEachIn[T string | int64](d dialect, col string, values []T, fn func(cond string, args []any) error) error {
	if len(values) == 0 {
		return nil
	}
	if d == postgresDialect {
		return fn(col+" = ANY(?)", []any{pq.Array(values)})
	}
	for start := 0; start < len(values); start += sqliteChunk {
		chunk := values[start:min(start+sqliteChunk, len(values))]
		args := make([]any, len(chunk))
		for i, v := range chunk {
			args[i] = v
		}
		if err := fn(col+" IN ("+placeholders(len(chunk))+")", args); err != nil {
			return err
		}
	}
	return nil
}

// decodeFields decodes stored fields with numbers as json.Number, so an int64 or a
// decimal comes back exactly as it was written.
func decodeFields(b []byte) (map[string]any, error) {
	if m, ok := decodeFlat(b); ok {
		return m, nil
	}
	var m map[string]any
	if err := decodeJSON(b, &m); err != nil {
		return nil, fmt.Errorf("decode fields: %w", err)
	}
	return m, nil
}

func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	b := make([]byte, 0, 3*n)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '?')
	}
	return string(b)
}

// oneRow turns "no row was affected" into ErrNotFound.
func oneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
