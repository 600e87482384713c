package sqlsource

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// horizon is the JSON document kept as a Horizon mark: the greatest cursor value
// written when the mark was taken. A nil Mark (an empty table, or a cursor whose
// values Go cannot order as the database does, like text) places no row before it.
type horizon struct {
	V    int    `json:"v"`
	Mark *value `json:"mark,omitempty"`
}

// dbtsQuery returns SQL Server's last rowversion handed out in this database.
// Every write before it has a rowversion at or below it and every later write one
// above it, committed or not, so it marks "written until now" exactly; it reads no
// table, so unlike MAX() it never waits on rows an open transaction has locked.
// MIN_ACTIVE_ROWVERSION() - 1 would leave out rows committed above a transaction
// still open, although they were written before the mark.
const dbtsQuery = "SELECT @@DBTS"

// Mark returns a mark of everything written until now: the database's current
// instant for a time cursor (the daemon's clock for SQLite), @@DBTS for a
// rowversion cursor, and the greatest value for an integer (or binary) cursor.
func (s *Source) Mark(ctx context.Context) (pipeline.Position, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout.D())
	defer cancel()
	info, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	m, err := s.mark(ctx, info)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(horizon{V: positionVersion, Mark: m})
	if err != nil {
		return nil, s.errorf("encode mark: %w", err)
	}
	return b, nil
}

func (s *Source) mark(ctx context.Context, info cursorInfo) (*value, error) {
	var raw any
	switch {
	case s.opts.Cursor.Kind == CursorRowversion:
		if err := s.db.QueryRowxContext(ctx, dbtsQuery).Scan(&raw); err != nil {
			return nil, s.errorf("read @@DBTS: %w", s.red.Err(err))
		}
	case info.cursorKind.isTime():
		now, err := s.now(ctx)
		if err != nil {
			return nil, err
		}
		v, _ := encodeValue(now.UTC())
		return &v, nil
	default:
		st := s.q.maxCursor(info.readable)
		if err := s.db.QueryRowxContext(ctx, st.SQL, st.Args...).Scan(&raw); err != nil {
			return nil, s.errorf("read the greatest cursor value: %w", s.red.Err(err))
		}
	}
	switch v := keyValue(raw, info.cursorKind).(type) {
	case int64:
		m, _ := encodeValue(v)
		return &m, nil
	case []byte:
		m, _ := encodeValue(v)
		return &m, nil
	}
	return nil, nil
}

// Before reports whether row's cursor value is at or before mark; false when the
// value is missing or cannot be read (a poison row), or the mark places nothing.
// Values may be as emitted or as text (RFC 3339 times, decimal integers).
func (s *Source) Before(mark pipeline.Position, row pipeline.Row) bool {
	var h horizon
	if json.Unmarshal(mark, &h) != nil || h.V != positionVersion || h.Mark == nil {
		return false
	}
	v, ok := lookup(row, s.cursorName())
	if !ok {
		return false
	}
	rv, ok := rowValue(v, h.Mark.Type)
	if !ok {
		return false
	}
	c, ok := compareValues(rv, *h.Mark)
	return ok && c <= 0
}

// cursorName is the cursor column as spelled in emitted rows once known.
func (s *Source) cursorName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.info != nil {
		return s.info.cursorName
	}
	return s.opts.Cursor.Column
}

// rowValue reads a row's cursor value as a value of type typ.
func rowValue(v any, typ string) (value, bool) {
	switch typ {
	case "time":
		if t, ok := toTime(v); ok {
			return value{"time", t.Format(time.RFC3339Nano)}, true
		}
	case "int":
		if n, ok := toInt64(v); ok {
			return value{"int", fmt.Sprint(n)}, true
		}
	case "bytes":
		switch x := v.(type) {
		case []byte:
			m, _ := encodeValue(x)
			return m, true
		case string:
			m, _ := encodeValue([]byte(x))
			return m, true
		}
	}
	return value{}, false
}
