package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

type quarantineRow struct {
	ID       int64  `db:"id"`
	Source   string `db:"source"`
	Entity   string `db:"entity"`
	RowKey   string `db:"row_key"`
	Reason   string `db:"reason"`
	Raw      []byte `db:"raw"`
	Count    int    `db:"count"`
	FirstAt  dbTime `db:"first_at"`
	LastAt   dbTime `db:"last_at"`
	Snapshot bool   `db:"snapshot"`
	Rule     string `db:"rule"`
	Event    []byte `db:"event"`
}

// Quarantined returns the limit most recently rejected rows (all when limit <= 0)
// of the source ("" for every source), oldest first.
func (s *sqlStore) Quarantined(ctx context.Context, source string, limit int) ([]QuarantineEntry, error) {
	where, args := "", []any{}
	if source != "" {
		where, args = " WHERE source = ?", append(args, source)
	}
	var rows []quarantineRow
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT id, source, entity, row_key, reason, raw, count, first_at, last_at, snapshot, rule, event
		FROM quarantine`+where+` ORDER BY last_at DESC, id DESC`+limitClause(limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list quarantine: %w", err)
	}
	out := make([]QuarantineEntry, len(rows))
	for i, r := range rows {
		e := QuarantineEntry{ID: r.ID, Source: r.Source, Entity: r.Entity, RowKey: r.RowKey, Reason: r.Reason,
			Count: r.Count, FirstAt: r.FirstAt.Time, LastAt: r.LastAt.Time, Snapshot: r.Snapshot, Rule: r.Rule}
		if err := json.Unmarshal(r.Raw, &e.Raw); err != nil {
			return nil, fmt.Errorf("store: list quarantine: decode row %d: %w", r.ID, err)
		}
		if len(r.Event) > 0 {
			e.Event = new(pipeline.Event)
			if err := decodeJSON(r.Event, e.Event); err != nil {
				return nil, fmt.Errorf("store: list quarantine: decode the event of entry %d: %w", r.ID, err)
			}
		}
		out[len(rows)-1-i] = e
	}
	return out, nil
}

// Stats counts what the operator overview shows. The counts are read one after the
// other, not in one snapshot: it is an overview, not a ledger.
func (s *sqlStore) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Cursors: []CursorState{}}
	var cursors []cursorRow
	if err := s.db.SelectContext(ctx, &cursors, `SELECT `+cursorColumns+` FROM cursors ORDER BY source`); err != nil {
		return Stats{}, fmt.Errorf("store: stats: cursors: %w", err)
	}
	for _, c := range cursors {
		st.Cursors = append(st.Cursors, c.state())
	}
	var err error
	if st.Outbox, err = s.countBy(ctx, "outbox", "sink"); err != nil {
		return Stats{}, err
	}
	if st.DeadLetters, err = s.countBy(ctx, "dead_letters", "sink"); err != nil {
		return Stats{}, err
	}
	if st.Quarantined, err = s.countBy(ctx, "quarantine", "source"); err != nil {
		return Stats{}, err
	}
	if err := s.heldCounts(ctx, &st); err != nil {
		return Stats{}, err
	}
	if err := s.db.GetContext(ctx, &st.Events, `SELECT COUNT(*) FROM events`); err != nil {
		return Stats{}, fmt.Errorf("store: stats: events: %w", err)
	}
	if err := s.db.GetContext(ctx, &st.Deliveries, `SELECT COUNT(*) FROM deliveries`); err != nil {
		return Stats{}, fmt.Errorf("store: stats: deliveries: %w", err)
	}
	// Snapshot feeds: their events wait for sinks, count as events and their
	// deliveries as deliveries, though none is a row of its own.
	if err := s.feedCounts(ctx, st.Outbox); err != nil {
		return Stats{}, fmt.Errorf("store: stats: snapshot feeds: %w", err)
	}
	events, deliveries, err := s.feedEventCount(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: snapshot feed events: %w", err)
	}
	st.Events += events
	st.Deliveries += deliveries
	return st, nil
}

// countBy counts a table's rows per value of col; table and col are constants of
// this package, never input.
func (s *sqlStore) countBy(ctx context.Context, table, col string) (map[string]int, error) {
	return s.countQuery(ctx, table, `SELECT `+col+`, COUNT(*) FROM `+table+` GROUP BY `+col)
}
