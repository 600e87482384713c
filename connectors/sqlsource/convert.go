package sqlsource

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// column is one result column and how its values are treated.
type column struct {
	name    string
	dbType  string
	kind    colKind
	integer bool // the database says the column holds integers
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
		l.cols[i] = column{name: ct.Name(), dbType: t, kind: d.kind(t), integer: d.isInteger(t)}
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

// place reads where a row sits in (cursor, key) order. at can always be resumed
// after, even for a poison row (a NULL key is kept as null, a cursor of the wrong
// type as what it is); bad says why the row cannot be used, nil when it can. err is
// a value no driver returns.
func (l layout) place(vals []any) (at point, bad, err error) {
	kc, cc := l.cols[l.key], l.cols[l.cursor]
	kv := keyValue(vals[l.key], kc.kind)
	cv := keyValue(vals[l.cursor], cc.kind)
	if at.Key, err = placeValue(kv); err != nil {
		return point{}, nil, fmt.Errorf("key column %q: %w", kc.name, err)
	}
	if at.Cursor, err = placeValue(cv); err != nil {
		return point{}, nil, fmt.Errorf("cursor column %q: %w", cc.name, err)
	}
	var why []string
	if r := l.badKey(kv, cv); r != "" {
		why = append(why, r)
	}
	if r := l.badCursor(kv, cv); r != "" {
		why = append(why, r)
	}
	if len(why) > 0 {
		bad = errors.New(strings.Join(why, "; "))
	}
	return at, bad, nil
}

// badKey says why a key value cannot identify a row, or "".
func (l layout) badKey(kv, cv any) string {
	name := l.cols[l.key].name
	switch kv.(type) {
	case nil:
		return fmt.Sprintf("key column %q is NULL (row with cursor %s): the key must be unique and NOT NULL", name, showCursor(cv))
	case float64, float32, bool:
		return fmt.Sprintf("key column %q holds a %s value %s (row with cursor %s): the key must be an integer, text or binary column",
			name, goType(kv), maskKey(kv), showCursor(cv))
	}
	return ""
}

// badCursor says why a cursor value cannot order a row, or "". A time cursor must
// hold times and an integer cursor integers: SQLite stores whatever it is given.
func (l layout) badCursor(kv, cv any) string {
	c := l.cols[l.cursor]
	// Written only for a bad row: masking the key cost more than the rest of a
	// good row's place.
	row := func() string { return "(row with key " + maskKey(kv) + ")" }
	switch cv.(type) {
	case nil:
		return fmt.Sprintf("cursor column %q is NULL %s", c.name, row())
	case float64, float32, bool:
		return fmt.Sprintf("cursor column %q holds a %s value %s, which cannot order rows exactly", c.name, goType(cv), row())
	}
	_, isTime := cv.(time.Time)
	_, isInt := cv.(int64)
	switch {
	case c.kind.isTime() && !isTime:
		r := fmt.Sprintf("cursor column %q holds %s, which is not a time %s", c.name, showCursor(cv), row())
		if c.kind == kindTextTime {
			r += `: SQLite time cursors must be text as "2006-01-02 15:04:05" with a fraction only when non-zero`
		}
		return r
	case c.integer && !isInt:
		return fmt.Sprintf("cursor column %q holds %s, which is not an integer %s", c.name, showCursor(cv), row())
	}
	return ""
}

// maskKey shows a key value the way errors may: it can be a citizen identifier.
func maskKey(kv any) string {
	if kv == nil {
		return "NULL"
	}
	if b, ok := kv.([]byte); ok {
		return transform.MaskID(fmt.Sprintf("%x", b))
	}
	return transform.MaskID(fmt.Sprint(kv))
}

// showCursor shows a cursor value, which is a time or a counter rather than
// citizen data; text is quoted and cut short.
func showCursor(cv any) string {
	switch v := cv.(type) {
	case nil:
		return "NULL"
	case time.Time:
		if v.Location() == time.UTC {
			// Zone-less columns come back as UTC holding their wall clock.
			return v.Format("2006-01-02 15:04:05.999999999")
		}
		return v.Format("2006-01-02 15:04:05.999999999 -07:00")
	case string:
		if r := []rune(v); len(r) > 40 {
			v = string(r[:40]) + "…"
		}
		return strconv.Quote(v)
	case []byte:
		return fmt.Sprintf("0x%x", v)
	}
	return fmt.Sprint(cv)
}

func goType(v any) string {
	switch v.(type) {
	case float64, float32:
		return "floating-point"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
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
