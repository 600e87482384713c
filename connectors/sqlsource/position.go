package sqlsource

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// positionVersion is written into every position so the format can change later
// without misreading what an older daemon stored.
const positionVersion = 1

// position is the JSON document kept as pipeline.Position. Exactly one of After and
// From is set once anything has been read; neither means "from the start".
//
//	{"v":1,
//	 "after":{"cursor":{"type":"time","value":"2025-03-10T08:59:00Z"},"key":{"type":"int","value":"42"}},
//	 "high": {"cursor":{"type":"time","value":"2025-03-10T08:59:00Z"},"key":{"type":"int","value":"42"}},
//	 "swept":{"type":"int","value":"7"}}
type position struct {
	V int `json:"v"`
	// After is the last row read: the next batch starts strictly after it in
	// (cursor, key) order. It may be a rejected row's place: a NULL key, or a cursor
	// value of the wrong type, so that reading moves past poison rows.
	After *point `json:"after,omitempty"`
	// From, written by Rewind, starts the next batch at this cursor value inclusive,
	// from the lowest key.
	From *value `json:"from,omitempty"`
	// High is the greatest (cursor, key) of a row ever emitted (rejected rows do not
	// count). It survives every batch because Rewind measures the lookback window
	// from it, not from the read point, which is itself inside the window while a
	// re-read is under way.
	High *point `json:"high,omitempty"`
	// Swept is the greatest key of a row rejected so far by the sweep for rows whose
	// cursor is NULL or unreadable, which the keyset never returns; the next sweep
	// goes on after it.
	Swept *value `json:"swept,omitempty"`
}

// point is one row's place in (cursor, key) order.
type point struct {
	Cursor value `json:"cursor"`
	Key    value `json:"key"`
}

// value is a cursor or key value with its Go type, so it binds back exactly as the
// driver returned it.
//
// A rejected row's place may also hold null, float or bool: those bind back exactly
// too, but cannot identify or order a usable row.
type value struct {
	Type  string `json:"type"`  // time | int | string | bytes | null | float | bool
	Value string `json:"value"` // RFC 3339 with nanoseconds | decimal | text | hex | "" | shortest exact decimal | true/false
}

func decodePosition(b pipeline.Position) (position, error) {
	var p position
	if len(b) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, fmt.Errorf("stored position is not valid JSON: %w", err)
	}
	if p.V != positionVersion {
		return position{}, fmt.Errorf("stored position has version %d, this build reads version %d", p.V, positionVersion)
	}
	for _, v := range p.values() {
		if _, err := v.decode(); err != nil {
			return position{}, fmt.Errorf("stored position: %w", err)
		}
	}
	return p, nil
}

func (p position) values() []value {
	var out []value
	for _, pt := range []*point{p.After, p.High} {
		if pt != nil {
			out = append(out, pt.Cursor, pt.Key)
		}
	}
	if p.From != nil {
		out = append(out, *p.From)
	}
	if p.Swept != nil {
		out = append(out, *p.Swept)
	}
	return out
}

func (p position) encode() (pipeline.Position, error) {
	p.V = positionVersion
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode position: %w", err)
	}
	return b, nil
}

// encodeValue tags a driver value with its type. Types that cannot round-trip
// exactly (floats, booleans, NULL) are refused: a cursor must compare exactly.
func encodeValue(v any) (value, error) {
	switch v := v.(type) {
	case time.Time:
		return value{"time", v.Format(time.RFC3339Nano)}, nil
	case int64:
		return value{"int", strconv.FormatInt(v, 10)}, nil
	case int:
		return value{"int", strconv.FormatInt(int64(v), 10)}, nil
	case int32:
		return value{"int", strconv.FormatInt(int64(v), 10)}, nil
	case int16:
		return value{"int", strconv.FormatInt(int64(v), 10)}, nil
	case int8:
		return value{"int", strconv.FormatInt(int64(v), 10)}, nil
	case uint32:
		return value{"int", strconv.FormatInt(int64(v), 10)}, nil
	case uint16:
		return value{"int", strconv.FormatInt(int64(v), 10)}, nil
	case uint8:
		return value{"int", strconv.FormatInt(int64(v), 10)}, nil
	case uint64:
		if v > math.MaxInt64 {
			return value{}, fmt.Errorf("unsigned value %d does not fit int64", v)
		}
		return value{"int", strconv.FormatInt(int64(v), 10)}, nil
	case string:
		return value{"string", v}, nil
	case []byte:
		return value{"bytes", hex.EncodeToString(v)}, nil
	case nil:
		return value{}, fmt.Errorf("value is NULL")
	}
	return value{}, fmt.Errorf("a %T value cannot be a cursor (want a time, integer, string or binary column)", v)
}

// placeValue encodes any value a driver returns, for the place of a row that is
// rejected: NULL, floats and booleans included, so that the next batch can start
// after it.
func placeValue(v any) (value, error) {
	switch v := v.(type) {
	case nil:
		return value{Type: "null"}, nil
	case float64:
		return value{"float", strconv.FormatFloat(v, 'g', -1, 64)}, nil
	case float32:
		return value{"float", strconv.FormatFloat(float64(v), 'g', -1, 32)}, nil
	case bool:
		return value{"bool", strconv.FormatBool(v)}, nil
	}
	return encodeValue(v)
}

// decode returns the Go value that was encoded.
func (v value) decode() (any, error) {
	switch v.Type {
	case "time":
		t, err := time.Parse(time.RFC3339Nano, v.Value)
		if err != nil {
			return nil, fmt.Errorf("bad time %q: %w", v.Value, err)
		}
		return t, nil
	case "int":
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad integer %q: %w", v.Value, err)
		}
		return n, nil
	case "string":
		return v.Value, nil
	case "bytes":
		b, err := hex.DecodeString(v.Value)
		if err != nil {
			return nil, fmt.Errorf("bad hex %q: %w", v.Value, err)
		}
		return b, nil
	case "null":
		return nil, nil
	case "float":
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			return nil, fmt.Errorf("bad float %q: %w", v.Value, err)
		}
		return f, nil
	case "bool":
		b, err := strconv.ParseBool(v.Value)
		if err != nil {
			return nil, fmt.Errorf("bad bool %q: %w", v.Value, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown value type %q", v.Type)
}

// compareValues orders two values of the same type; ok is false when they cannot be
// compared (different types, e.g. after the column changed type). Strings compare
// bytewise, which may differ from the database's collation; only the cursor half of
// the high-water mark drives Rewind, and cursors are times.
func compareValues(a, b value) (c int, ok bool) {
	return compareDecoded(a, &decoded{}, b, &decoded{})
}

// decoded is a value's decode, done when first needed and then kept.
type decoded struct {
	v    any
	err  error
	done bool
}

func (d *decoded) of(v value) (any, error) {
	if !d.done {
		d.v, d.err = v.decode()
		d.done = true
	}
	return d.v, d.err
}

// compareDecoded is compareValues with each side's decode kept in da and db.
func compareDecoded(a value, da *decoded, b value, db *decoded) (c int, ok bool) {
	if a.Type != b.Type {
		return 0, false
	}
	x, err1 := da.of(a)
	y, err2 := db.of(b)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	switch x := x.(type) {
	case time.Time:
		return x.Compare(y.(time.Time)), true
	case int64:
		return cmp.Compare(x, y.(int64)), true
	case string:
		return strings.Compare(x, y.(string)), true
	case []byte:
		return bytes.Compare(x, y.([]byte)), true
	}
	return 0, false
}

// higher returns the greater of the stored high-water mark and the last row read.
// When they cannot be compared the row just read wins: it is the newest fact.
func higher(high *point, last point) *point {
	h := newHighWater(high)
	h.add(last)
	return h.point()
}

// highWater raises a high-water mark row after row as higher does, keeping the
// mark's decoded values: a batch decoded both sides of every comparison anew,
// parsing each row's time twice.
type highWater struct {
	mark        point
	has         bool
	cursor, key decoded // the mark's, decoded when first compared
}

func newHighWater(p *point) highWater {
	if p == nil {
		return highWater{}
	}
	return highWater{mark: *p, has: true}
}

// add makes last the mark unless the mark is greater.
func (h *highWater) add(last point) {
	var lc, lk decoded
	if h.has {
		c, ok := compareDecoded(h.mark.Cursor, &h.cursor, last.Cursor, &lc)
		if ok && c == 0 {
			c, ok = compareDecoded(h.mark.Key, &h.key, last.Key, &lk)
		}
		if ok && c > 0 {
			return
		}
	}
	h.mark, h.has = last, true
	h.cursor, h.key = lc, lk
}

// point is the mark, nil when there is none.
func (h *highWater) point() *point {
	if !h.has {
		return nil
	}
	p := h.mark
	return &p
}

// rewind moves the read point back to the re-read window before the high-water
// mark, never forward: a read point already before the window start stays. The
// window is lookback for a time cursor and ids (cursor units) for an integer one.
func (p position) rewind(lookback time.Duration, ids int64) (position, bool) {
	if p.High == nil {
		return p, false
	}
	hv, err := p.High.Cursor.decode()
	if err != nil {
		return p, false
	}
	var from value
	switch h := hv.(type) {
	case time.Time:
		if lookback <= 0 {
			return p, false
		}
		// Add on the raw value keeps its location, so zone-less values stay wall clock.
		from, _ = encodeValue(h.Add(-lookback))
	case int64:
		if ids <= 0 {
			return p, false
		}
		start := int64(math.MinInt64)
		if h >= math.MinInt64+ids {
			start = h - ids
		}
		from, _ = encodeValue(start)
	default:
		return p, false
	}
	at := p.From
	if p.After != nil {
		at = &p.After.Cursor
	}
	if at != nil {
		if c, ok := compareValues(*at, from); ok && c < 0 {
			return p, false
		}
	}
	return position{From: &from, High: p.High, Swept: p.Swept}, true
}
