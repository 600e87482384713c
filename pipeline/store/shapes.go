package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Snapshot rows keep a record's values without its field names: fields is the
// JSON array [shape, v1, v2, ...], where shape names the sorted list of field
// names (snapshot_shapes) and the values follow in that order. A mapping's
// records share one shape, so a million records store their dozen names once,
// not a million times (about a quarter of a row). Rows written before migration
// 0008 are JSON objects and are read as such.

// shapes caches the store's field-name lists by id. An id is derived from the
// names, so every process and replica gives a list the same id; a list is written
// to snapshot_shapes in the transaction of the first rows that use it.
type shapes struct {
	mu        sync.RWMutex
	names     map[int64][]string
	committed map[int64]bool
	last      atomic.Pointer[lastShape]
}

// shapeID derives a list's id: 48 bits of its SHA-256, exact in any JSON reader.
func shapeID(names []string) int64 {
	sum := sha256.Sum256([]byte(strings.Join(names, "\x00")))
	return int64(binary.BigEndian.Uint64(sum[:8]) >> 16)
}

// encodeFields encodes a record's fields as a positional array and returns the
// shape's id.
func (s *sqlStore) encodeFields(fields map[string]any) ([]byte, int64, error) {
	// A mapping's records nearly all share one shape: when the fields are the
	// names of the last shape, the names need no listing, sorting or hashing
	// (about 40 % of this function's CPU in a first sync). Equal counts and every
	// name present mean equal sets.
	if h := s.shapes.last.Load(); h != nil && len(h.names) == len(fields) {
		b, ok, err := appendPositional(make([]byte, 0, h.size.Load()), h, fields)
		if ok {
			if err == nil && int64(len(b)) > h.size.Load() {
				h.size.Store(int64(len(b)) + 64)
			}
			return b, h.id, err
		}
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	id := shapeID(names)
	s.shapes.mu.Lock()
	if s.shapes.names == nil {
		s.shapes.names, s.shapes.committed = map[int64][]string{}, map[int64]bool{}
	}
	if known, ok := s.shapes.names[id]; ok {
		names = known
	} else {
		s.shapes.names[id] = names
	}
	s.shapes.mu.Unlock()
	h := &lastShape{id: id, names: names}
	h.size.Store(int64(64 + 32*len(names)))
	s.shapes.last.Store(h)
	b, _, err := appendPositional(make([]byte, 0, h.size.Load()), h, fields)
	return b, id, err
}

// lastShape is the shape encodeFields saw last, and the room its rows took.
type lastShape struct {
	id    int64
	names []string
	size  atomic.Int64
}

// appendPositional appends fields as the positional array of shape h; ok is
// false when a name of h is not among the fields.
func appendPositional(b []byte, h *lastShape, fields map[string]any) (_ []byte, ok bool, err error) {
	b = append(b, '[')
	b = strconv.AppendInt(b, h.id, 10)
	for _, k := range h.names {
		v, ok := fields[k]
		if !ok {
			return nil, false, nil
		}
		b = append(b, ',')
		if b, err = pipeline.AppendFieldsJSONValue(b, v); err != nil {
			return nil, true, fmt.Errorf("field %q: %w", k, err)
		}
	}
	return append(b, ']'), true, nil
}

// storeShapes writes the lists of ids that are not known to be stored, in the
// commit's transaction; afterCommit marks them stored.
func (s *sqlStore) storeShapes(ctx context.Context, tx *sqlx.Tx, ids map[int64]bool) (afterCommit func(), err error) {
	var todo []int64
	s.shapes.mu.RLock()
	for id := range ids {
		if !s.shapes.committed[id] {
			todo = append(todo, id)
		}
	}
	s.shapes.mu.RUnlock()
	for _, id := range todo {
		s.shapes.mu.RLock()
		names := s.shapes.names[id]
		s.shapes.mu.RUnlock()
		j, _ := json.Marshal(names) // strings always encode
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO snapshot_shapes (id, names) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`),
			id, string(j)); err != nil {
			return nil, fmt.Errorf("store field names: %w", err)
		}
		var stored string
		if err := tx.GetContext(ctx, &stored, s.q(`SELECT names FROM snapshot_shapes WHERE id = ?`), id); err != nil {
			return nil, fmt.Errorf("read field names: %w", err)
		}
		if stored != string(j) {
			var got []string
			if err := json.Unmarshal([]byte(stored), &got); err != nil || strings.Join(got, "\x00") != strings.Join(names, "\x00") {
				return nil, fmt.Errorf("field names %v and %s share shape id %d", names, stored, id)
			}
		}
	}
	return func() {
		s.shapes.mu.Lock()
		for _, id := range todo {
			s.shapes.committed[id] = true
		}
		s.shapes.mu.Unlock()
	}, nil
}

// shapeNames returns the names of a shape, read from the store when this process
// has not seen it.
func (s *sqlStore) shapeNames(ctx context.Context, q sqlx.QueryerContext, id int64) ([]string, error) {
	s.shapes.mu.RLock()
	names, ok := s.shapes.names[id]
	s.shapes.mu.RUnlock()
	if ok {
		return names, nil
	}
	var stored string
	if err := sqlx.GetContext(ctx, q, &stored, s.q(`SELECT names FROM snapshot_shapes WHERE id = ?`), id); err != nil {
		return nil, fmt.Errorf("field names of shape %d: %w", id, err)
	}
	if err := json.Unmarshal([]byte(stored), &names); err != nil {
		return nil, fmt.Errorf("field names of shape %d: %w", id, err)
	}
	s.shapes.mu.Lock()
	if s.shapes.names == nil {
		s.shapes.names, s.shapes.committed = map[int64][]string{}, map[int64]bool{}
	}
	s.shapes.names[id], s.shapes.committed[id] = names, true
	s.shapes.mu.Unlock()
	return names, nil
}

// decodeStored decodes a snapshot row's fields, positional or (before 0008) an
// object, with numbers as json.Number.
func (s *sqlStore) decodeStored(ctx context.Context, q sqlx.QueryerContext, b []byte) (map[string]any, error) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '[' {
		return decodeFields(b)
	}
	id, vals, ok := decodeFlatArray(b)
	if !ok {
		var arr []any
		if err := decodeJSON(b, &arr); err != nil || len(arr) == 0 {
			return nil, fmt.Errorf("decode fields: %v", err)
		}
		n, isNum := arr[0].(json.Number)
		if !isNum {
			return nil, fmt.Errorf("decode fields: no shape")
		}
		i, err := n.Int64()
		if err != nil {
			return nil, fmt.Errorf("decode fields: shape %s: %w", n, err)
		}
		id, vals = i, arr[1:]
	}
	names, err := s.shapeNames(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if len(names) != len(vals) {
		return nil, fmt.Errorf("decode fields: %d values for the %d fields of shape %d", len(vals), len(names), id)
	}
	m := make(map[string]any, len(names))
	for i, k := range names {
		m[k] = vals[i]
	}
	return m, nil
}

// decodeCached decodes a snapshot row's fields without reading the store: ok is
// false (and nothing decoded) when their shape is not known to this process yet.
func (s *sqlStore) decodeCached(b []byte) (map[string]any, bool, error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 || t[0] != '[' {
		m, err := decodeFields(b)
		return m, true, err
	}
	id, vals, ok := decodeFlatArray(t)
	if !ok {
		return nil, false, nil // the slow path reads it
	}
	s.shapes.mu.RLock()
	names, known := s.shapes.names[id]
	s.shapes.mu.RUnlock()
	if !known {
		return nil, false, nil
	}
	if len(names) != len(vals) {
		return nil, false, fmt.Errorf("decode fields: %d values for the %d fields of shape %d", len(vals), len(names), id)
	}
	m := make(map[string]any, len(names))
	for i, k := range names {
		m[k] = vals[i]
	}
	return m, true, nil
}

// objectJSON turns a snapshot row's stored fields into the JSON object an event
// carries.
func (s *sqlStore) objectJSON(ctx context.Context, q sqlx.QueryerContext, b []byte) ([]byte, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return b, nil
	}
	m, err := s.decodeStored(ctx, q, b)
	if err != nil {
		return nil, err
	}
	return pipeline.AppendFieldsJSON(make([]byte, 0, fieldsRoom(m)), m, nil)
}

// feedKeys are a shape's names as JSON object keys ("name":), made once per
// shape by a reader of feed rows.
type feedKeys struct {
	id       int64
	names    []string
	keys     [][]byte
	keyBytes int // the keys' length with their colons and commas
}

// arenaChunk is the size of the buffers feed events' fields as JSON share.
const arenaChunk = 64 << 10

// decodeFeedFields decodes a positional row of a shape this process knows, as
// decodeCached does, and also appends to arena the JSON object that
// pipeline.AppendFieldsJSON makes of the decoded fields, returning it (nil when
// the row has no fields or a value must be encoded anew: see appendStoredValue).
// The object is built from the stored values' own text, which the store wrote
// with the same encoder, so a feed event's fields are not encoded again for
// every sink that writes JSON (decision 0027). ok is false, and nothing
// decoded, when the row is not positional or its shape is not known yet.
//
// Without withMap only the object is made, for a sink that reads nothing else
// (pipeline.FieldsJSON): m is nil, and ok is false when the object cannot be
// made from the stored text (the caller decodes the map the usual way).
func (s *sqlStore) decodeFeedFields(b []byte, k *feedKeys, arena *[]byte, withMap bool) (m map[string]any, obj []byte, ok bool, err error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, nil, false, nil
	}
	v, j, ok := flatValue(b, skipSpace(b, i+1))
	n, _ := v.(json.Number)
	if !ok || n == "" {
		return nil, nil, false, nil
	}
	id, perr := n.Int64()
	if perr != nil {
		return nil, nil, false, nil
	}
	if k.keys == nil || k.id != id {
		s.shapes.mu.RLock()
		names, known := s.shapes.names[id]
		s.shapes.mu.RUnlock()
		if !known {
			return nil, nil, false, nil
		}
		*k = feedKeys{id: id, names: names, keys: make([][]byte, len(names))}
		for x, name := range names {
			k.keys[x], _ = pipeline.AppendFieldsJSONValue(nil, name) // strings always encode
			k.keyBytes += len(k.keys[x]) + 2
		}
	}
	var row string
	if withMap {
		m = make(map[string]any, len(k.names))
		// The row's text values are substrings of one copy of the row: one
		// allocation per row instead of one per value.
		row = string(b)
	}
	out := *arena
	if need := 2*len(b) + k.keyBytes; cap(out)-len(out) < need {
		// A new chunk rather than a bigger copy: the objects already made
		// keep the old one.
		out = make([]byte, 0, max(arenaChunk, need))
	}
	start := len(out)
	out = append(out, '{')
	exact := len(k.names) > 0
	x := 0
	for i = skipSpace(b, j); ; {
		if i >= len(b) {
			return nil, nil, false, nil
		}
		if b[i] == ']' {
			if skipSpace(b, i+1) != len(b) {
				return nil, nil, false, nil
			}
			break
		}
		if b[i] != ',' {
			return nil, nil, false, nil
		}
		i = skipSpace(b, i+1)
		var v any
		var j int
		verbatim := false
		if withMap {
			v, j, ok = rowValue(b, row, i)
		} else if j, verbatim, ok = storedSpan(b, i); ok && !verbatim {
			v, _, ok = flatValue(b, i)
		}
		if !ok {
			return nil, nil, false, nil
		}
		if x >= len(k.names) {
			return nil, nil, false, fmt.Errorf("decode fields: more values than the %d fields of shape %d", len(k.names), id)
		}
		if withMap {
			m[k.names[x]] = v
		}
		if exact {
			if x > 0 {
				out = append(out, ',')
			}
			out = append(out, k.keys[x]...)
			out = append(out, ':')
			if verbatim {
				out = append(out, b[i:j]...)
			} else {
				out, exact = appendStoredValue(out, b[i:j], v)
			}
		}
		x++
		i = skipSpace(b, j)
	}
	if x != len(k.names) {
		return nil, nil, false, fmt.Errorf("decode fields: %d values for the %d fields of shape %d", x, len(k.names), id)
	}
	if !exact {
		*arena = out[:start]
		return m, nil, withMap, nil
	}
	out = append(out, '}')
	*arena = out
	return m, out[start:len(out):len(out)], true, nil
}

// appendStoredValue appends a stored value's text as pipeline's encoder writes
// the value it decodes to, v. That is the text itself, except for strings with
// escapes or U+2028/U+2029 (which the encoder escapes; their text is written
// anew from v) and numbers the encoder would refuse (out of float64's range:
// exact is false, and the caller encodes the fields the usual way, which fails
// as before).
func appendStoredValue(b, text []byte, v any) (_ []byte, exact bool) {
	switch x := v.(type) {
	case string:
		if bytes.IndexByte(text, '\\') >= 0 || bytes.IndexByte(text, 0xE2) >= 0 {
			out, err := pipeline.AppendFieldsJSONValue(b, x)
			return out, err == nil
		}
	case json.Number:
		if bytes.IndexAny(text, "eE") >= 0 || len(text) > 300 {
			out, err := pipeline.AppendFieldsJSONValue(b, x)
			return out, err == nil
		}
	}
	return append(b, text...), true
}

// storedSpan finds the end of the scalar JSON value at b[i] without decoding
// it, and says whether appendStoredValue would copy its text as it is: a string
// without escapes or U+2028/U+2029, a number it would not write anew, a
// literal. It accepts exactly what rowValue accepts.
func storedSpan(b []byte, i int) (j int, verbatim, ok bool) {
	if i >= len(b) {
		return 0, false, false
	}
	switch c := b[i]; {
	case c == '"':
		for j := i + 1; j < len(b); j++ {
			switch c := b[j]; {
			case c == '"':
				text := b[i+1 : j]
				if !utf8.Valid(text) {
					return 0, false, false
				}
				return j + 1, bytes.IndexByte(text, 0xE2) < 0, true
			case c == '\\':
				_, j, ok := flatString(b, i)
				return j, false, ok
			case c < 0x20:
				return 0, false, false
			}
		}
		return 0, false, false
	case c == '-' || (c >= '0' && c <= '9'):
		j, ok := numberEnd(b, i)
		return j, ok && bytes.IndexAny(b[i:j], "eE") < 0 && j-i <= 300, ok
	}
	_, j, ok = flatValue(b, i)
	return j, true, ok
}

// rowValue reads the scalar JSON value at b[i] as flatValue does, taking
// strings without escapes and numbers from row, the text of b.
func rowValue(b []byte, row string, i int) (any, int, bool) {
	if i >= len(b) {
		return nil, 0, false
	}
	switch c := b[i]; {
	case c == '"':
		for j := i + 1; j < len(b); j++ {
			switch c := b[j]; {
			case c == '"':
				if !utf8.Valid(b[i+1 : j]) {
					return nil, 0, false
				}
				return row[i+1 : j], j + 1, true
			case c == '\\':
				return flatValue(b, i)
			case c < 0x20:
				return nil, 0, false
			}
		}
		return nil, 0, false
	case c == '-' || (c >= '0' && c <= '9'):
		j, ok := numberEnd(b, i)
		if !ok {
			return nil, 0, false
		}
		return json.Number(row[i:j]), j, true
	}
	return flatValue(b, i)
}
