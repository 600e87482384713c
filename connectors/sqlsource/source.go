package sqlsource

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/internal/redact"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Source reads one table or query of an agency database. ReadBatch and Rewind are
// safe to call from one goroutine at a time, which is how the engine runs a source;
// Columns, Refetch, Mark and Before may be called alongside them.
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
	// dbAt is the database's clock as last read, and readAt the local clock
	// (monotonic) just after: see dbNow. local is that clock: time.Now, not
	// Env.Clock, since it measures real time passing on the database too; tests
	// replace it.
	dbAt, readAt time.Time
	local        func() time.Time
}

// dbClockFor is how long a reading of the database's clock is carried forward by
// the local clock's elapsed time instead of asking again: a first sync reads
// hundreds of batches a second, and each asked once more (a round trip, over a
// WAN as long as the batch's own). It is the default lag: a database clock that
// jumps is followed within it.
const dbClockFor = DefaultLag

// cursorInfo is what the source learns about its cursor and key columns before
// the first batch.
type cursorInfo struct {
	cursorType, keyType string // DatabaseTypeName, which decides how values bind
	cursorKind, keyKind colKind
	cursorInt, keyInt   bool   // the database says the column holds integers
	cursorName, keyName string // as spelled in emitted rows
	readable            string // the dialect's condition for cursor values the keyset reads
}

var (
	_ pipeline.Source    = (*Source)(nil)
	_ pipeline.Rewinder  = (*Source)(nil)
	_ pipeline.Describer = (*Source)(nil)
	_ pipeline.Refetcher = (*Source)(nil)
	_ pipeline.Horizon   = (*Source)(nil)
)

// Open builds a source from options. It does not connect: an agency database that
// is down when the daemon starts is an error of the run that reads it, not of startup.
func Open(_ context.Context, env pipeline.Env, o *Options) (*Source, error) {
	if err := pipeline.Invalid(o); err != nil {
		return nil, pipeline.Permanentf("sql source %q: invalid options: %v", env.Name, err)
	}
	s := &Source{
		name:  env.Name,
		what:  o.Table,
		opts:  *o,
		d:     dialects[o.Driver],
		zone:  env.Zone,
		log:   env.Logger,
		clock: env.Clock,
		local: time.Now,
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

	dsn, password := o.DSN, ""
	switch o.Driver {
	case "sqlite":
		dsn, s.file = sqliteDSN(dsn, env.Resolve)
	case "mysql":
		var err error
		if dsn, password, err = mysqlDSN(o.DSN); err != nil {
			return nil, pipeline.Permanent(s.errorf("%w", err))
		}
	}
	s.red = newRedactor(o.DSN, dsn, password)

	db, err := openDB(s.d.driverName(), dsn)
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

// openDB opens the pool. A PostgreSQL DSN that does not choose gets lib/pq's
// binary_parameters: a query with arguments (every batch's keyset query) then
// takes one round trip instead of two, as lib/pq otherwise prepares it first and
// waits for the answer. Over a WAN that wait was a third of a batch's. The
// arguments a source binds are times, numbers and text, sent as text either way,
// and []byte keys, which go to a bytea column as the bytes themselves.
func openDB(driver, dsn string) (*sqlx.DB, error) {
	if driver != "postgres" || strings.Contains(dsn, "binary_parameters") {
		return sqlx.Open(driver, dsn)
	}
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.BinaryParameters = true
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	return sqlx.NewDb(sql.OpenDB(connector), driver), nil
}

// ReadBatch streams the next batch after pos to out. See the package doc for the
// cursor model. Rows that cannot be placed in cursor order (a NULL key, a cursor
// value that is NULL or of the wrong type) go to out.Reject and reading goes on
// past them. An error from out is returned unchanged.
func (s *Source) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	return s.read(ctx, pos, nil, out)
}

// ReadUntil reads like ReadBatch, bounded by a mark from Mark instead of the lag.
// It does not sweep unreadable cursors (ReadBatch does).
func (s *Source) ReadUntil(ctx context.Context, pos, mark pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	var h horizon
	if err := json.Unmarshal(mark, &h); err != nil || h.V != positionVersion {
		return nil, false, pipeline.Permanent(s.errorf("the mark %q is not one this source made", mark))
	}
	if h.Mark == nil {
		return pos, true, nil // nothing was written when the mark was taken
	}
	return s.read(ctx, pos, h.Mark, out)
}

// read reads one batch after pos; until, when set, replaces the lag bound.
func (s *Source) read(ctx context.Context, pos pipeline.Position, until *value, out pipeline.Emitter) (pipeline.Position, bool, error) {
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
	if until != nil {
		u, err := until.decode()
		if err != nil {
			return nil, false, pipeline.Permanent(s.errorf("mark: %w", err))
		}
		if t, ok := u.(time.Time); ok {
			u = t.In(s.zone) // zone-less columns compare by wall clock in the source zone
		}
		w.upper, w.belowActive = s.d.bind(u, info.cursorType), false
	}
	start := time.Now()
	limit := s.opts.BatchSize
	next := p
	var st batchStats
	if err := s.readKeyset(ctx, s.q.batch(w, limit), p, &next, out, &st); err != nil {
		return nil, false, err
	}
	done := st.rows < limit
	if done && until == nil {
		// The keyset has caught up; the rest of the batch sweeps rows with a NULL or
		// unreadable cursor, which the keyset never returns.
		room := limit - st.rows
		before := st.rows
		if err := s.sweepUnreadable(ctx, info, &next, out, room, &st); err != nil {
			return nil, false, err
		}
		done = st.rows-before < room
	}
	s.log.Debug("sql batch read", "source", s.name, "rows", st.rows, "rejected", st.rejected, "done", done, "took", time.Since(start))
	if st.rows == 0 {
		return pos, true, nil
	}
	b, err := next.encode()
	if err != nil {
		return nil, false, s.errorf("%w", err)
	}
	return b, done, nil
}

// batchStats counts what one ReadBatch handed over; rejected rows are rows too.
type batchStats struct{ rows, rejected int }

// readKeyset streams one keyset query to out and moves next past every row read,
// rejected ones included; only emitted rows raise the high-water mark.
func (s *Source) readKeyset(ctx context.Context, st stmt, p position, next *position, out pipeline.Emitter, n *batchStats) error {
	// The marks move in locals and land in next once the query has ended well
	// (a failed batch's next is not used): a pointer per row cost an allocation.
	high := newHighWater(next.High)
	var last point
	read := false
	err := s.query(ctx, "read batch", st, func(l layout, vals []any) error {
		at, bad, err := l.place(vals)
		if err != nil {
			return pipeline.Permanent(s.errorf("%w", err))
		}
		if p.After != nil && at == *p.After {
			// The database says the row the position points at comes after it: the
			// bound value did not compare equal to the stored one. Reading on would
			// return this batch forever.
			return pipeline.Permanent(s.errorf(
				"the row at the stored position (cursor %s, key %s) was returned again: its values do not bind back exactly%s",
				at.Cursor.Value, transform.MaskID(at.Key.Value), s.bindHint()))
		}
		if err := hand(out, l.row(vals, s.zone), bad); err != nil {
			return err
		}
		if bad == nil {
			high.add(at)
		} else {
			n.rejected++
		}
		last, read = at, true
		n.rows++
		return nil
	})
	if err != nil {
		return err
	}
	if read {
		next.High = high.point()
		next.After, next.From = &last, nil
	}
	return nil
}

// sweepUnreadable rejects up to limit rows whose cursor is NULL or unreadable, in
// key order after the last one swept, and records the last key in next.Swept.
// Each such row is thus rejected once, and one written later is caught if its key
// is greater than every key swept before.
func (s *Source) sweepUnreadable(ctx context.Context, info cursorInfo, next *position, out pipeline.Emitter, limit int, n *batchStats) error {
	prev := next.Swept
	var after any
	if prev != nil {
		k, err := prev.decode()
		if err != nil {
			return pipeline.Permanent(s.errorf("stored position: %w", err))
		}
		after = s.d.bind(k, info.keyType)
	}
	st := s.q.unreadable(info.readable, after, limit)
	return s.query(ctx, "read rows with an unreadable cursor", st, func(l layout, vals []any) error {
		at, bad, err := l.place(vals)
		if err != nil {
			return pipeline.Permanent(s.errorf("%w", err))
		}
		if prev != nil && at.Key == *prev {
			return pipeline.Permanent(s.errorf(
				"the row with an unreadable cursor at the stored key %s was returned again: its key does not bind back exactly",
				transform.MaskID(at.Key.Value)))
		}
		if bad == nil {
			// The driver reads a value the database does not (SQLite's datetime()
			// and Go's time layouts differ at the edges); the keyset would not
			// return it either.
			bad = fmt.Errorf("cursor column %q holds %s, which the database does not read as %s (row with key %s)",
				l.cols[l.cursor].name, showCursor(vals[l.cursor]), cursorWord(l.cols[l.cursor]), maskKey(at.Key.Value))
		}
		if err := out.Reject(l.row(vals, s.zone), bad); err != nil {
			return err
		}
		n.rejected++
		key := at.Key
		next.Swept = &key
		n.rows++
		return nil
	})
}

// hand passes a row on: to Reject with the reason when bad is set, else to Emit.
func hand(out pipeline.Emitter, row pipeline.Row, bad error) error {
	if bad != nil {
		return out.Reject(row, bad)
	}
	return out.Emit(row)
}

// query runs st and calls fn with the result's layout and each row's values,
// which are read into the same slice row after row: fn must not keep it. An
// error from fn is returned unchanged.
func (s *Source) query(ctx context.Context, what string, st stmt, fn func(layout, []any) error) error {
	rows, err := s.db.QueryxContext(ctx, st.SQL, st.Args...)
	if err != nil {
		return s.errorf("%s: %w", what, s.red.Err(err))
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return s.errorf("%s: %w", what, s.red.Err(err))
	}
	l, err := newLayout(s.d, types, s.opts.Cursor.Column, s.opts.Cursor.Key)
	if err != nil {
		return pipeline.Permanent(s.errorf("%w", err))
	}
	// One set of destinations for every row (sqlx's SliceScan allocated a slice,
	// a column list and a pointer per column for each): fn keeps none of vals,
	// and database/sql copies the driver's bytes into each value it scans.
	vals := make([]any, len(types))
	dest := make([]any, len(types))
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return s.errorf("read row: %w", s.red.Err(err))
		}
		if err := fn(l, vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.errorf("%s: %w", what, s.red.Err(err))
	}
	return nil
}

// Rewind moves the stored position back to the re-read window: from the
// high-water cursor minus lookback (a time cursor) or minus lookback_ids (an
// integer cursor), inclusive and from the lowest key, keeping the high-water mark.
// With no window, a rowversion or other cursor, or a read point already before the
// window, it returns stored unchanged.
func (s *Source) Rewind(stored pipeline.Position) pipeline.Position {
	p, err := decodePosition(stored)
	if err != nil {
		return stored // ReadBatch reports it
	}
	r, moved := p.rewind(s.opts.Lookback.D(), s.lookbackIDs())
	if !moved {
		return stored
	}
	b, err := r.encode()
	if err != nil {
		return stored
	}
	return b
}

// lookbackIDs is the re-read window of an integer cursor.
func (s *Source) lookbackIDs() int64 {
	if s.opts.LookbackIDs != nil {
		return *s.opts.LookbackIDs
	}
	return DefaultLookbackIDs
}

// Columns asks the database afresh which columns a row carries, spelled as in
// emitted rows. Nothing is cached: a column renamed while the daemon runs must show.
func (s *Source) Columns(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout.D())
	defer cancel()
	types, err := s.describeColumns(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(types))
	for i, ct := range types {
		names[i] = ct.Name()
	}
	return names, nil
}

// Close closes the connection pool.
func (s *Source) Close() error {
	return s.red.Err(s.db.Close())
}

// describeColumns runs the query that returns no rows but the result's columns.
func (s *Source) describeColumns(ctx context.Context) ([]*sql.ColumnType, error) {
	if s.file != "" {
		// modernc creates a missing file on connect; a typo in the path would read
		// an empty database forever.
		if _, err := os.Stat(s.file); err != nil {
			return nil, s.errorf("the SQLite database file cannot be opened: %w", s.red.Err(err))
		}
	}
	st := s.q.describe()
	rows, err := s.db.QueryxContext(ctx, st.SQL, st.Args...)
	if err != nil {
		return nil, s.errorf("describe columns: %w", s.red.Err(err))
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, s.errorf("describe columns: %w", s.red.Err(err))
	}
	return types, nil
}

// describe learns the cursor and key column types once, from a query that returns
// no rows, and checks that the configuration fits them.
func (s *Source) describe(ctx context.Context) (cursorInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.info != nil {
		return *s.info, nil
	}
	types, err := s.describeColumns(ctx)
	if err != nil {
		return cursorInfo{}, err
	}
	l, err := newLayout(s.d, types, s.opts.Cursor.Column, s.opts.Cursor.Key)
	if err != nil {
		return cursorInfo{}, pipeline.Permanent(s.errorf("%w", err))
	}
	c, k := l.cols[l.cursor], l.cols[l.key]
	info := cursorInfo{
		cursorType: c.dbType, keyType: k.dbType,
		cursorKind: c.kind, keyKind: k.kind,
		cursorInt: c.integer, keyInt: k.integer,
		cursorName: c.name, keyName: k.name,
		readable: s.d.readable(s.q.cursor, c),
	}
	if err := s.checkCursor(c); err != nil {
		return cursorInfo{}, pipeline.Permanent(s.errorf("%w", err))
	}
	s.info = &info
	return info, nil
}

// checkCursor refuses options that do not fit the cursor column's type and says
// what protects a cursor of this type against rows committed out of order.
func (s *Source) checkCursor(c column) error {
	isTime := c.kind.isTime()
	if s.opts.Lookback > 0 && !isTime {
		return fmt.Errorf("lookback needs a time cursor, but cursor.column %q is %s: set lookback: 0", c.name, typeOrUnknown(c.dbType))
	}
	if s.opts.LookbackIDs != nil {
		switch {
		case isTime:
			return fmt.Errorf("lookback_ids needs an integer cursor, but cursor.column %q is %s, a time: use lookback", c.name, c.dbType)
		case c.dbType != "" && !c.integer:
			return fmt.Errorf("lookback_ids needs an integer cursor, but cursor.column %q is %s", c.name, c.dbType)
		}
	}
	switch {
	case s.opts.Cursor.Kind == CursorRowversion, isTime:
	case c.integer:
		s.log.Info("sql integer cursor: every run re-reads the last lookback_ids values", "source", s.name, "column", c.name, "lookback_ids", s.lookbackIDs())
	default:
		s.log.Warn("sql cursor is neither a time nor an integer: lag and lookback do not apply, and rows committed out of cursor order may be skipped",
			"source", s.name, "column", c.name, "type", typeOrUnknown(c.dbType))
	}
	return nil
}

func cursorWord(c column) string {
	if c.integer {
		return "an integer"
	}
	return `a time: SQLite time cursors must be text as "2006-01-02 15:04:05" with a fraction only when non-zero`
}

func typeOrUnknown(t string) string {
	if t == "" {
		return "of no declared type"
	}
	return t
}

// window turns the position into bound values for the batch query.
func (s *Source) window(ctx context.Context, p position, info cursorInfo) (window, error) {
	w := window{readable: info.readable}
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
		w.afterNullKey = p.After.Key.Type == "null"
		if !w.afterNullKey {
			w.afterKey = s.d.bind(k, info.keyType)
		}
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
//
// A reading is carried forward for dbClockFor by the time elapsed on the local
// monotonic clock, taken after the answer arrived, so the estimate is never ahead
// of the database (the lag bound errs towards reading later, never earlier).
func (s *Source) dbNow(ctx context.Context) (time.Time, error) {
	s.mu.Lock()
	if !s.readAt.IsZero() {
		if d := s.local().Sub(s.readAt); d >= 0 && d < dbClockFor {
			t := s.dbAt.Add(d)
			s.mu.Unlock()
			return t, nil
		}
	}
	s.mu.Unlock()
	var t time.Time
	if err := s.db.QueryRowxContext(ctx, s.d.nowQuery()).Scan(&t); err != nil {
		return time.Time{}, s.errorf("read the database clock: %w", s.red.Err(err))
	}
	s.mu.Lock()
	s.dbAt, s.readAt = t, s.local()
	s.mu.Unlock()
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
