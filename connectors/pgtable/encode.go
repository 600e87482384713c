package pgtable

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// eventRow holds an event's values as they are bound: text cleaned, JSON encoded,
// and empty optional values as NULL (nil).
type eventRow struct {
	id, typ, source, entity, key string
	rule, agency                 any // string or nil
	changed                      any // pq.StringArray or nil
	before, after, message       any // JSON text or nil
	fields                       any // the state row's fields: JSON text or nil
}

// encodeEvent prepares ev for binding. It fails only on a value JSON cannot hold
// (NaN, an infinity), which no retry can fix.
func encodeEvent(ev *pipeline.Event) (eventRow, error) {
	r := eventRow{
		id: clean(ev.ID), typ: clean(ev.Type), source: clean(ev.Source),
		entity: clean(ev.Entity), key: clean(ev.Key),
		rule: nullable(ev.Rule), agency: nullable(ev.Agency),
	}
	if len(ev.Changed) > 0 {
		c := make(pq.StringArray, len(ev.Changed))
		for i, f := range ev.Changed {
			c[i] = clean(f)
		}
		r.changed = c
	}
	var err error
	if r.before, err = jsonArg("before", ev.Before); err != nil {
		return r, err
	}
	if r.after, err = jsonArg("after", ev.After); err != nil {
		return r, err
	}
	if ev.Message != nil {
		if r.message, err = jsonArg("message", ev.Message); err != nil {
			return r, err
		}
	}
	// The state keeps the record as it is now; a delete usually carries only the
	// record as it was, which is kept as its last known state.
	switch {
	case ev.After != nil:
		r.fields = r.after
	case ev.Type == pipeline.EventDeleted && ev.Before != nil:
		r.fields = r.before
	}
	return r, nil
}

// jsonArg encodes v as JSON text for a jsonb parameter (text, not []byte: lib/pq
// would send bytes as bytea), or nil for SQL NULL when v is a nil map.
func jsonArg(what string, v any) (any, error) {
	if m, ok := v.(map[string]any); ok && m == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s as JSON: %w", what, err)
	}
	return string(replaceNULEscapes(b)), nil
}

// clean makes s storable in a text column: PostgreSQL rejects NUL characters and
// invalid UTF-8 (22021), and refusing an agency's record for one stray byte would
// lose the whole change, so both become U+FFFD.
func clean(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return clean(s)
}

var nulEscape = []byte(`\u0000`)

// replaceNULEscapes turns every \u0000 escape of a JSON document into \ufffd: jsonb
// rejects \u0000 (22P05) even though JSON allows it. encoding/json writes a NUL in
// any string, key or value, as \u0000 and already replaces invalid UTF-8. A naive
// bytes.ReplaceAll would also hit an escaped backslash followed by "u0000" (the
// six-character text `\u0000`), so escapes are walked pairwise; outside strings
// JSON has no backslashes.
func replaceNULEscapes(b []byte) []byte {
	if !bytes.Contains(b, nulEscape) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		if bytes.HasPrefix(b[i:], nulEscape) {
			out = append(out, `\ufffd`...)
			i += len(nulEscape) - 1
			continue
		}
		out = append(out, b[i], b[i+1]) // any other escape, kept whole
		i++
	}
	return out
}
