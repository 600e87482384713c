package sqlsource

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

var _ pipeline.KeyLister = (*Source)(nil)

// keysPosition is where a key listing goes on: after this key.
//
//	{"v":1,"after_key":{"type":"int","value":"42"}}
type keysPosition struct {
	V     int    `json:"v"`
	After *value `json:"after_key,omitempty"`
}

// ReadKeys lists the rows the table holds now for a reconcile: only the given
// columns (with the cursor and key columns, which place a row), at most limit rows
// after pos in key order, as keyset pages on cursor.key, so each query is an index
// range and memory holds one page. Rows with a NULL key are left out: no record
// was ever made of one.
func (s *Source) ReadKeys(ctx context.Context, columns []string, pos pipeline.Position, limit int, out pipeline.Emitter) (pipeline.Position, bool, error) {
	var kp keysPosition
	if len(pos) > 0 {
		if err := json.Unmarshal(pos, &kp); err != nil || kp.V != positionVersion {
			return nil, false, pipeline.Permanent(s.errorf("the key listing position %q is not one this source made", pos))
		}
	}
	if limit <= 0 {
		limit = s.opts.BatchSize
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout.D())
	defer cancel()
	info, err := s.describe(ctx)
	if err != nil {
		return nil, false, err
	}
	var after any
	if kp.After != nil {
		k, err := kp.After.decode()
		if err != nil {
			return nil, false, pipeline.Permanent(s.errorf("key listing position: %w", err))
		}
		after = s.d.bind(k, info.keyType)
	}
	n := 0
	err = s.query(ctx, "list keys", s.q.keys(columns, after, limit), func(l layout, vals []any) error {
		kv := keyValue(vals[l.key], l.cols[l.key].kind)
		v, err := encodeValue(kv)
		if err != nil {
			return pipeline.Permanent(s.errorf("key column %q: %w", l.cols[l.key].name, err))
		}
		if kp.After != nil && v == *kp.After {
			return pipeline.Permanent(s.errorf("the key listing returned its last key again: the key does not bind back exactly"))
		}
		next := v
		kp.After = &next
		n++
		return out.Emit(l.row(vals, s.zone))
	})
	if err != nil {
		return nil, false, err
	}
	if n == 0 {
		return pos, true, nil
	}
	b, err := json.Marshal(keysPosition{V: positionVersion, After: kp.After})
	if err != nil {
		return nil, false, s.errorf("encode key listing position: %w", err)
	}
	return b, n < limit, nil
}

// keys builds one page of a key listing:
//
//	SELECT cols, cursor, key FROM source WHERE key IS NOT NULL AND key > :k ORDER BY key LIMIT :n
func (q queries) keys(columns []string, afterKey any, limit int) stmt {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return q.d.placeholder(len(args))
	}
	list := make([]string, 0, len(columns)+2)
	has := map[string]bool{}
	for _, c := range columns {
		qc := q.d.quote(c)
		if !has[qc] {
			has[qc] = true
			list = append(list, qc)
		}
	}
	for _, qc := range []string{q.cursor, q.key} {
		if !has[qc] {
			has[qc] = true
			list = append(list, qc)
		}
	}
	cond := []string{q.key + " IS NOT NULL"}
	if afterKey != nil {
		cond = append(cond, q.key+" > "+arg(afterKey))
	}
	lq := q
	lq.list = strings.Join(list, ", ")
	st := lq.selectWhere(cond, q.key, arg(limit))
	st.Args = args
	return st
}
