package sqlsource

import (
	"database/sql"
	"fmt"
	"strings"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// column is one result column and how its values are treated.
type column struct {
	name   string
	dbType string
	kind   colKind
}

// layout is the shape of a result: its columns and where the cursor and key are.
type layout struct {
	cols   []column
	cursor int
	key    int
}

// newLayout reads a result's column types and finds the cursor and key columns.
// Names match exactly first and then ignoring case, because SQL Server and SQLite
// identifiers are case-insensitive and a result may spell them as the catalog does.
func newLayout(d dialect, types []*sql.ColumnType, cursor, key string) (layout, error) {
	l := layout{cols: make([]column, len(types)), cursor: -1, key: -1}
	seen := make(map[string]bool, len(types))
	for i, ct := range types {
		t := strings.ToUpper(ct.DatabaseTypeName())
		l.cols[i] = column{name: ct.Name(), dbType: t, kind: d.kind(t)}
		if seen[ct.Name()] {
			return layout{}, fmt.Errorf("column %q appears twice in the result: give the columns distinct names", ct.Name())
		}
		seen[ct.Name()] = true
	}
	var err error
	if l.cursor, err = l.find(cursor, "cursor.column"); err != nil {
		return layout{}, err
	}
	if l.key, err = l.find(key, "cursor.key"); err != nil {
		return layout{}, err
	}
	return l, nil
}

func (l layout) find(name, field string) (int, error) {
	for i, c := range l.cols {
		if c.name == name {
			return i, nil
		}
	}
	found := -1
	for i, c := range l.cols {
		if strings.EqualFold(c.name, name) {
			if found >= 0 {
				return -1, fmt.Errorf("%s %q matches more than one column when case is ignored", field, name)
			}
			found = i
		}
	}
	if found < 0 {
		return -1, fmt.Errorf("%s %q is not a column of the result", field, name)
	}
	return found, nil
}

// point reads a row's place in cursor order, refusing values that cannot be
// stored exactly.
func (l layout) point(vals []any) (point, error) {
	kc, cc := l.cols[l.key], l.cols[l.cursor]
	kv := keyValue(vals[l.key], kc.kind)
	key, err := encodeValue(kv)
	if err != nil {
		return point{}, fmt.Errorf("row with cursor %v: key column %q: %w (the key must be unique and NOT NULL)", vals[l.cursor], kc.name, err)
	}
	cur, err := encodeValue(keyValue(vals[l.cursor], cc.kind))
	if err != nil {
		// The key may be a citizen identifier: show it masked.
		return point{}, fmt.Errorf("row with key %s: cursor column %q: %w", transform.MaskID(fmt.Sprint(kv)), cc.name, err)
	}
	return point{Cursor: cur, Key: key}, nil
}

// row converts scanned values into the row handed to the engine.
func (l layout) row(vals []any, zone *time.Location) pipeline.Row {
	r := make(pipeline.Row, len(vals))
	for i, v := range vals {
		r[l.cols[i].name] = emitValue(v, l.cols[i].kind, zone)
	}
	return r
}

// emitValue turns a driver value into what a mapping reads: text as string, binary
// as []byte, every point in time in UTC.
func emitValue(v any, k colKind, zone *time.Location) any {
	switch v := v.(type) {
	case []byte:
		switch k {
		case kindBinary:
			return v
		case kindGUID:
			var u mssql.UniqueIdentifier
			if err := u.Scan(v); err == nil {
				return u.String()
			}
		}
		return string(v)
	case time.Time:
		switch k {
		case kindLocalTime:
			return wallClockIn(v, zone).UTC()
		case kindTextTime:
			// modernc parses text without an offset as UTC; text that carried an
			// offset is an instant already.
			if v.Location() == time.UTC {
				return wallClockIn(v, zone).UTC()
			}
		case kindTimeOfDay:
			return v.Format("15:04:05.999999999")
		}
		return v.UTC()
	}
	return v
}

// keyValue is the form of a cursor or key value kept in the position: the raw
// driver value for times (so a zone-less value binds back as the same wall clock),
// text for textual []byte (numeric, uuid) so it binds as a comparable literal.
func keyValue(v any, k colKind) any {
	if b, ok := v.([]byte); ok && k != kindBinary {
		return emitValue(b, k, time.UTC)
	}
	return v
}

// wallClockIn reads t's wall clock as a time in zone.
func wallClockIn(t time.Time, zone *time.Location) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), zone)
}
