package sourcetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// TestSuiteAcceptsReferenceSource runs the suite against an in-memory source that
// implements the contract the simplest way, so the suite's own expectations are
// checked without a database.
func TestSuiteAcceptsReferenceSource(t *testing.T) {
	Run(t, Harness{Open: func(t *testing.T, s Settings) Fixture {
		src := &memSource{s: s}
		return Fixture{
			Source: src,
			Put:    func(_ *testing.T, items ...Item) { src.put(items) },
			PutRaw: func(_ *testing.T, rows ...Raw) { src.putRaw(rows) },
		}
	}})
}

// memSource keeps rows in memory and reads them in (cursor, key) order with NULL
// keys last within a cursor value, and sweeps rows with a NULL cursor by key once
// the keyset has caught up, as the SQL source does on PostgreSQL.
type memSource struct {
	s    Settings
	mu   sync.Mutex
	rows []Raw
}

type memPoint struct {
	At time.Time
	ID *int64 // nil: a NULL key, after every key of its cursor value
}

func (p memPoint) less(q memPoint) bool {
	if c := p.At.Compare(q.At); c != 0 {
		return c < 0
	}
	switch {
	case p.ID == nil:
		return false
	case q.ID == nil:
		return true
	}
	return *p.ID < *q.ID
}

type memPos struct {
	After *memPoint  `json:",omitempty"`
	From  *time.Time `json:",omitempty"`
	High  *memPoint  `json:",omitempty"`
	Nulls *int64     `json:",omitempty"`
}

func (m *memSource) put(items []Item) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, it := range items {
		r := Raw{ID: ptr(it.ID), UpdatedAt: ptr(it.UpdatedAt), Payload: it.Payload}
		i := slices.IndexFunc(m.rows, func(x Raw) bool { return x.ID != nil && *x.ID == it.ID })
		if i >= 0 {
			m.rows[i] = r
		} else {
			m.rows = append(m.rows, r)
		}
	}
}

func (m *memSource) putRaw(rows []Raw) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows = append(m.rows, rows...)
}

func (m *memSource) snapshot() []Raw {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.rows)
}

func rowOf(r Raw) pipeline.Row {
	row := pipeline.Row{KeyField: nil, CursorField: nil, ValueField: r.Payload}
	if r.ID != nil {
		row[KeyField] = *r.ID
	}
	if r.UpdatedAt != nil {
		row[CursorField] = r.UpdatedAt.UTC()
	}
	return row
}

func hand(out pipeline.Emitter, r Raw) error {
	switch {
	case r.ID == nil:
		return out.Reject(rowOf(r), errors.New("id is NULL"))
	case r.UpdatedAt == nil:
		return out.Reject(rowOf(r), errors.New("updated_at is NULL"))
	}
	return out.Emit(rowOf(r))
}

func (m *memSource) ReadBatch(_ context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	var p memPos
	if len(pos) > 0 {
		if err := json.Unmarshal(pos, &p); err != nil {
			return nil, false, err
		}
	}
	all := m.snapshot()
	upper := m.s.Clock().Add(-m.s.Lag)
	var sel []Raw
	for _, r := range all {
		if r.UpdatedAt == nil {
			continue
		}
		pt := memPoint{*r.UpdatedAt, r.ID}
		switch {
		case r.UpdatedAt.After(upper):
		case p.After != nil && !p.After.less(pt):
		case p.From != nil && r.UpdatedAt.Before(*p.From):
		default:
			sel = append(sel, r)
		}
	}
	slices.SortFunc(sel, func(a, b Raw) int {
		pa, pb := memPoint{*a.UpdatedAt, a.ID}, memPoint{*b.UpdatedAt, b.ID}
		switch {
		case pa.less(pb):
			return -1
		case pb.less(pa):
			return 1
		}
		return 0
	})
	sel = sel[:min(len(sel), m.s.BatchSize)]
	next := p
	for _, r := range sel {
		if err := hand(out, r); err != nil {
			return nil, false, err
		}
		pt := memPoint{*r.UpdatedAt, r.ID}
		next.After, next.From = &pt, nil
		if r.ID != nil && (next.High == nil || next.High.less(pt)) {
			next.High = &pt
		}
	}
	n, done := len(sel), len(sel) < m.s.BatchSize
	if done {
		swept := m.sweep(all, &next, out, m.s.BatchSize-n)
		if swept < 0 {
			return nil, false, errors.New("emit failed")
		}
		n += swept
		done = swept < m.s.BatchSize-len(sel)
	}
	if n == 0 {
		return pos, true, nil
	}
	b, err := json.Marshal(next)
	return b, done, err
}

// sweep rejects up to limit rows with a NULL cursor and a key after p.Nulls.
func (m *memSource) sweep(all []Raw, p *memPos, out pipeline.Emitter, limit int) int {
	var nulls []Raw
	for _, r := range all {
		if r.UpdatedAt == nil && r.ID != nil && (p.Nulls == nil || *r.ID > *p.Nulls) {
			nulls = append(nulls, r)
		}
	}
	slices.SortFunc(nulls, func(a, b Raw) int { return cmp.Compare(*a.ID, *b.ID) })
	nulls = nulls[:min(len(nulls), limit)]
	for _, r := range nulls {
		if hand(out, r) != nil {
			return -1
		}
		p.Nulls = r.ID
	}
	return len(nulls)
}

func (m *memSource) Rewind(stored pipeline.Position) pipeline.Position {
	var p memPos
	if m.s.Lookback == 0 || json.Unmarshal(stored, &p) != nil || p.High == nil {
		return stored
	}
	from := p.High.At.Add(-m.s.Lookback)
	if p.After != nil && p.After.At.Before(from) {
		return stored
	}
	b, _ := json.Marshal(memPos{From: &from, High: p.High, Nulls: p.Nulls})
	return b
}

func (m *memSource) Refetch(_ context.Context, rows []pipeline.Row, out pipeline.Emitter) error {
	want := map[int64]bool{}
	for _, r := range rows {
		switch v := r[KeyField].(type) {
		case int64:
			want[v] = true
		case string:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				want[n] = true
			}
		}
	}
	for _, r := range m.snapshot() {
		if r.ID != nil && want[*r.ID] {
			if err := hand(out, r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memSource) Mark(context.Context) (pipeline.Position, error) {
	return json.Marshal(m.s.Clock())
}

func (m *memSource) Before(mark pipeline.Position, row pipeline.Row) bool {
	var at time.Time
	if json.Unmarshal(mark, &at) != nil {
		return false
	}
	t, ok := row[CursorField].(time.Time)
	return ok && !t.After(at)
}

func (m *memSource) Columns(context.Context) ([]string, error) {
	return []string{KeyField, CursorField, ValueField}, nil
}

func (m *memSource) Close() error { return nil }
