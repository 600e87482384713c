package sqlsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/internal/redact"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Source reads one table or query of an agency database. ReadBatch and Rewind are
// safe to call from one goroutine at a time, which is how the engine runs a source.
type Source struct {
	name  string // the source's name, for messages
	what  string // the table, or "query", for messages
	opts  Options
	d     dialect
	q     queries
	db    *sqlx.DB
	zone  *time.Location
	log   *slog.Logger
	red   redact.Redactor
	file  string // the SQLite file that must exist before connecting; "" otherwise
	clock pipeline.Clock

	// now returns the instant the lag is measured from: the database's clock for
	// PostgreSQL and SQL Server (the rows' timestamps were written by it), Env.Clock
	// for SQLite (same machine). Tests replace it.
	now func(ctx context.Context) (time.Time, error)

	mu   sync.Mutex
	info *cursorInfo // learned from the first describe
}

// cursorInfo is what the source learns about its cursor and key columns before
// the first batch.
type cursorInfo struct {
	cursorType, keyType string // DatabaseTypeName, which decides how values bind
	cursorKind          colKind
}

var (
	_ pipeline.Source   = (*Source)(nil)
	_ pipeline.Rewinder = (*Source)(nil)
)

// Open builds a source from options. It does not connect: an agency database that
// is down when the daemon starts is an error of the run that reads it, not of startup.
func Open(_ context.Context, env pipeline.Env, o *Options) (*Source, error) {
	var problems []string
	o.Validate(func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	})
	if len(problems) > 0 {
		return nil, pipeline.Permanentf("sql source %q: invalid options: %s", env.Name, strings.Join(problems, "; "))
	}
	s := &Source{
		name:  env.Name,
		what:  o.Table,
		opts:  *o,
		d:     dialects[o.Driver],
		zone:  env.Zone,
		log:   env.Logger,
		clock: env.Clock,
	}
	if s.what == "" {
		s.what = "query"
	}
	if s.zone == nil {
		s.zone = time.UTC
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	s.q = newQueries(s.d, o)

	dsn := o.DSN
	if o.Driver == "sqlite" {
		dsn, s.file = sqliteDSN(dsn, env.Resolve)
	}
	s.red = newRedactor(o.DSN, dsn)

	db, err := sqlx.Open(s.d.driverName(), dsn)
	if err != nil {
		return nil, s.errorf("open: %w", s.red.Err(err))
	}
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxIdleConns)
	db.SetConnMaxLifetime(o.ConnMaxLifetime.D())
	s.db = db

	if s.d.nowQuery() == "" {
		s.now = func(context.Context) (time.Time, error) { return s.clock(), nil }
	} else {
		s.now = s.dbNow
	}
	return s, nil
}

// ReadBatch streams the next batch after pos to emit. See the package doc for the
// cursor model. An error from emit is returned unchanged.
func (s *Source) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	p, err := decodePosition(pos)
	if err != nil {
		return nil, false, pipeline.Permanent(s.errorf("%w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout.D())
	defer cancel()

	info, err := s.describe(ctx)
	if err != nil {
		return nil, false, err
	}
	w, err := s.window(ctx, p, info)
	if err != nil {
		return nil, false, err
	}
	st := s.q.batch(w, s.opts.BatchSize)
	start := time.Now()
	rows, err := s.db.QueryxContext(ctx, st.SQL, st.Args...)
	if err != nil {
		return nil, false, s.errorf("read batch: %w", s.red.Err(err))
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, false, s.errorf("read batch: %w", s.red.Err(err))
	}
	l, err := newLayout(s.d, types, s.opts.Cursor.Column, s.opts.Cursor.Key)
	if err != nil {
		return nil, false, pipeline.Permanent(s.errorf("%w", err))
	}

	n := 0
	var last point
	for rows.Next() {
		vals, err := rows.SliceScan()
		if err != nil {
			return nil, false, s.errorf("read row: %w", s.red.Err(err))
		}
		pt, err := l.point(vals)
		if err != nil {
			// The same row would stop every later run too.
			return nil, false, pipeline.Permanent(s.errorf("%w", err))
		}
		if p.After != nil && pt == *p.After {
			// The database says the row the position points at comes after it: the
			// bound value did not compare equal to the stored one. Reading on would
			// return this batch forever.
			return nil, false, pipeline.Permanent(s.errorf(
				"the row at the stored position (cursor %s, key %s) was returned again: its values do not bind back exactly%s",
				pt.Cursor.Value, transform.MaskID(pt.Key.Value), s.bindHint()))
		}
		if err := out.Emit(l.row(vals, s.zone)); err != nil {
			return nil, false, err
		}
		last = pt
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, false, s.errorf("read batch: %w", s.red.Err(err))
	}
	done := n < s.opts.BatchSize
	s.log.Debug("sql batch read", "source", s.name, "rows", n, "done", done, "took", time.Since(start))
	if n == 0 {
		return pos, true, nil
	}
	next, err := position{After: &last, High: higher(p.High, last)}.encode()
	if err != nil {
		return nil, false, s.errorf("%w", err)
	}
	return next, done, nil
}

// Rewind moves the stored position back to the lookback window: re-read from the
// high-water cursor minus lookback, inclusive and from the lowest key, keeping the
// high-water mark. With lookback 0, a non-time cursor, or a read point already
// before the window, it returns stored unchanged.
func (s *Source) Rewind(stored pipeline.Position) pipeline.Position {
	p, err := decodePosition(stored)
	if err != nil {
		return stored // ReadBatch reports it
	}
	r, moved := p.rewind(s.opts.Lookback.D())
	if !moved {
		return stored
	}
	b, err := r.encode()
	if err != nil {
		return stored
	}
	return b
}

// Close closes the connection pool.
func (s *Source) Close() error {
	return s.red.Err(s.db.Close())
}

// describe learns the cursor and key column types once, from a query that returns
// no rows, and checks that the configuration fits them.
func (s *Source) describe(ctx context.Context) (cursorInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.info != nil {
		return *s.info, nil
	}
	if s.file != "" {
		// modernc creates a missing file on connect; a typo in the path would read
		// an empty database forever.
		if _, err := os.Stat(s.file); err != nil {
			return cursorInfo{}, s.errorf("the SQLite database file cannot be opened: %w", s.red.Err(err))
		}
	}
	st := s.q.describe()
	rows, err := s.db.QueryxContext(ctx, st.SQL, st.Args...)
	if err != nil {
		return cursorInfo{}, s.errorf("describe columns: %w", s.red.Err(err))
	}
	types, err := rows.ColumnTypes()
	rows.Close()
	if err != nil {
		return cursorInfo{}, s.errorf("describe columns: %w", s.red.Err(err))
	}
	l, err := newLayout(s.d, types, s.opts.Cursor.Column, s.opts.Cursor.Key)
	if err != nil {
		return cursorInfo{}, pipeline.Permanent(s.errorf("%w", err))
	}
	c, k := l.cols[l.cursor], l.cols[l.key]
	info := cursorInfo{cursorType: c.dbType, keyType: k.dbType, cursorKind: c.kind}
	if s.opts.Lookback > 0 && !c.kind.isTime() {
		return cursorInfo{}, pipeline.Permanent(s.errorf(
			"lookback needs a time cursor, but cursor.column %q is %s: set lookback: 0", c.name, typeOrUnknown(c.dbType)))
	}
	if !c.kind.isTime() && s.opts.Cursor.Kind != CursorRowversion {
		s.log.Info("sql cursor is not a time: lag does not apply", "source", s.name, "column", c.name, "type", typeOrUnknown(c.dbType))
	}
	s.info = &info
	return info, nil
}

func typeOrUnknown(t string) string {
	if t == "" {
		return "of no declared type"
	}
	return t
}

// window turns the position into bound values for the batch query.
func (s *Source) window(ctx context.Context, p position, info cursorInfo) (window, error) {
	var w window
	w.belowActive = s.opts.Cursor.Kind == CursorRowversion
	if info.cursorKind.isTime() && !w.belowActive {
		now, err := s.now(ctx)
		if err != nil {
			return window{}, err
		}
		// In the source zone: zone-less columns compare by wall clock there (see the
		// dialects' bind), zone-aware ones by instant, which In does not change.
		w.upper = s.d.bind(now.Add(-s.opts.Lag.D()).In(s.zone), info.cursorType)
	}
	switch {
	case p.After != nil:
		c, err1 := p.After.Cursor.decode()
		k, err2 := p.After.Key.decode()
		if err := errors.Join(err1, err2); err != nil {
			return window{}, pipeline.Permanent(s.errorf("stored position: %w", err))
		}
		w.afterCursor = s.d.bind(c, info.cursorType)
		w.afterKey = s.d.bind(k, info.keyType)
	case p.From != nil:
		c, err := p.From.decode()
		if err != nil {
			return window{}, pipeline.Permanent(s.errorf("stored position: %w", err))
		}
		w.from = s.d.bind(c, info.cursorType)
	}
	return w, nil
}

// dbNow asks the database for its current instant. Only the instant is taken from
// the database; the source zone is applied in Go with the tz database, which is
// right across daylight-saving changes (a fixed SWITCHOFFSET is not) and does not
// depend on the server's own zone setting, which agencies often leave at UTC while
// their application writes local time.
func (s *Source) dbNow(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.db.QueryRowxContext(ctx, s.d.nowQuery()).Scan(&t); err != nil {
		return time.Time{}, s.errorf("read the database clock: %w", s.red.Err(err))
	}
	return t, nil
}

func (s *Source) bindHint() string {
	if s.opts.Driver == "sqlite" {
		return "; a SQLite time cursor must hold text as \"2006-01-02 15:04:05\" with a fraction only when non-zero and no trailing zeros"
	}
	return ""
}

func (s *Source) errorf(format string, args ...any) error {
	return fmt.Errorf("sql source %q (%s): "+format, append([]any{s.name, s.what}, args...)...)
}
