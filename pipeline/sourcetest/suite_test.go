package sourcetest

import (
	"cmp"
	"context"
	"encoding/json"
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
		src := &memSource{s: s, rows: map[int64]Item{}}
		return Fixture{Source: src, Put: func(_ *testing.T, items ...Item) { src.put(items) }}
	}})
}

type memSource struct {
	s    Settings
	mu   sync.Mutex
	rows map[int64]Item
}

type memPoint struct {
	At time.Time
	ID int64
}

func (p memPoint) less(q memPoint) bool {
	return cmp.Or(p.At.Compare(q.At), cmp.Compare(p.ID, q.ID)) < 0
}

type memPos struct {
	After *memPoint  `json:",omitempty"`
	From  *time.Time `json:",omitempty"`
	High  *memPoint  `json:",omitempty"`
}

func (m *memSource) put(items []Item) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, it := range items {
		m.rows[it.ID] = it
	}
}

func (m *memSource) ReadBatch(_ context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	var p memPos
	if len(pos) > 0 {
		if err := json.Unmarshal(pos, &p); err != nil {
			return nil, false, err
		}
	}
	upper := m.s.Clock().Add(-m.s.Lag)
	m.mu.Lock()
	var sel []Item
	for _, it := range m.rows {
		pt := memPoint{it.UpdatedAt, it.ID}
		switch {
		case it.UpdatedAt.After(upper):
		case p.After != nil && !p.After.less(pt):
		case p.From != nil && it.UpdatedAt.Before(*p.From):
		default:
			sel = append(sel, it)
		}
	}
	m.mu.Unlock()
	sel = sorted(sel)
	if len(sel) > m.s.BatchSize {
		sel = sel[:m.s.BatchSize]
	}
	if len(sel) == 0 {
		return pos, true, nil
	}
	for _, it := range sel {
		if err := out.Emit(pipeline.Row{KeyField: it.ID, CursorField: it.UpdatedAt.UTC(), ValueField: it.Payload}); err != nil {
			return nil, false, err
		}
	}
	last := sel[len(sel)-1]
	next := memPos{After: &memPoint{last.UpdatedAt, last.ID}, High: p.High}
	if next.High == nil || next.High.less(*next.After) {
		next.High = next.After
	}
	b, err := json.Marshal(next)
	return b, len(sel) < m.s.BatchSize, err
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
	b, _ := json.Marshal(memPos{From: &from, High: p.High})
	return b
}

func (m *memSource) Close() error { return nil }
