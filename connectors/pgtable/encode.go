package pgtable

import (
	"encoding/json"
	"fmt"

	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
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
		id: pgtext.Text(ev.ID), typ: pgtext.Text(ev.Type), source: pgtext.Text(ev.Source),
		entity: pgtext.Text(ev.Entity), key: pgtext.Text(ev.Key),
		rule: nullable(ev.Rule), agency: nullable(ev.Agency),
	}
	if len(ev.Changed) > 0 {
		c := make(pq.StringArray, len(ev.Changed))
		for i, f := range ev.Changed {
			c[i] = pgtext.Text(f)
		}
		r.changed = c
	}
	var err error
	if r.before, err = jsonArg("before", ev.Before); err != nil {
		return r, err
	}
	if ev.After == nil && ev.AfterJSON != nil {
		r.after = string(pgtext.JSON(ev.AfterJSON)) // the record as the store made it (pipeline.FieldsJSON)
	} else if r.after, err = jsonArg("after", ev.After); err != nil {
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
	case r.after != nil:
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
	return string(pgtext.JSON(b)), nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return pgtext.Text(s)
}
