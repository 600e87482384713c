package sqlsource

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// refetchChunk is the most arguments one refetch query binds: well under SQL
// Server's 2100 parameters and SQLite's 32766, and a short IN list for PostgreSQL.
const refetchChunk = 500

// Refetch emits the current version of the given rows, matched by cursor.key, with
// the same conversions as ReadBatch; a row that has become poison is rejected as
// ReadBatch would. Rows may come back as text (the engine keeps quarantined rows as
// strings): a key is converted to the key column's type before it is bound. Rows
// without a key value are skipped, and so are keys the column cannot hold (text
// that is no integer for an integer key): no row can match them.
func (s *Source) Refetch(ctx context.Context, rows []pipeline.Row, out pipeline.Emitter) error {
	if len(rows) == 0 {
		return nil
	}
	info, err := s.describeWithin(ctx)
	if err != nil {
		return err
	}
	args := s.refetchArgs(rows, info)
	for len(args) > 0 {
		n := min(refetchChunk, len(args))
		if err := s.refetchChunk(ctx, args[:n], out); err != nil {
			return err
		}
		args = args[n:]
	}
	return nil
}

func (s *Source) refetchChunk(ctx context.Context, args []any, out pipeline.Emitter) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout.D())
	defer cancel()
	return s.query(ctx, "refetch rows", s.q.byKeys(args), func(l layout, vals []any) error {
		_, bad, err := l.place(vals)
		if err != nil {
			return pipeline.Permanent(s.errorf("%w", err))
		}
		return hand(out, l.row(vals, s.zone), bad)
	})
}

// describeWithin describes the source under the query timeout.
func (s *Source) describeWithin(ctx context.Context) (cursorInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout.D())
	defer cancel()
	return s.describe(ctx)
}

// refetchArgs collects the distinct bound keys of rows.
func (s *Source) refetchArgs(rows []pipeline.Row, info cursorInfo) []any {
	seen := make(map[string]bool, len(rows))
	var args []any
	for _, r := range rows {
		v, ok := lookup(r, info.keyName)
		if !ok || v == nil {
			continue
		}
		for _, a := range s.keyArgs(v, info) {
			id := fmt.Sprintf("%T\x00%v", a, a)
			if !seen[id] {
				seen[id] = true
				args = append(args, a)
			}
		}
	}
	return args
}

// keyArgs turns a key value as read earlier (possibly its text) into the
// arguments that compare equal with the key column; none when it cannot match.
func (s *Source) keyArgs(v any, info cursorInfo) []any {
	if b, ok := v.([]byte); ok && info.keyKind != kindBinary {
		v = string(b)
	}
	switch {
	case info.keyInt:
		if n, ok := toInt64(v); ok {
			return []any{n}
		}
		return nil
	case info.keyKind == kindBinary:
		switch x := v.(type) {
		case []byte:
			return []any{x}
		case string:
			return []any{[]byte(x)}
		}
		return nil
	case info.keyKind == kindGUID:
		var u mssql.UniqueIdentifier
		if str, ok := v.(string); ok && u.Scan(str) == nil {
			return []any{u}
		}
		return nil
	case info.keyKind.isTime():
		if t, ok := toTime(v); ok {
			// Emitted times are UTC instants; a zone-less column holds wall clock in
			// the source zone, which bind keeps.
			return []any{s.d.bind(t.In(s.zone), info.keyType)}
		}
		return nil
	}
	str, ok := toText(v)
	if !ok {
		return nil
	}
	args := []any{s.d.bind(str, info.keyType)}
	if info.keyType == "" && s.opts.Driver == "sqlite" {
		// A custom query's expression has no affinity, so SQLite compares text and
		// integers as different values: bind the integer form too.
		if n, err := strconv.ParseInt(str, 10, 64); err == nil {
			args = append(args, n)
		}
	}
	return args
}

// lookup finds a row's column by its exact name, else by the only name equal to it
// ignoring case.
func lookup(r pipeline.Row, name string) (any, bool) {
	if v, ok := r[name]; ok {
		return v, true
	}
	var found any
	n := 0
	for k, v := range r {
		if strings.EqualFold(k, name) {
			found = v
			n++
		}
	}
	return found, n == 1
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint8:
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func toTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case string:
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(x))
		return t, err == nil
	}
	return time.Time{}, false
}

func toText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64, int, int32, int16, int8, uint32, uint16, uint8:
		return fmt.Sprint(x), true
	}
	return "", false
}
