package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// EventQuery selects stored events for the API's event list and live stream.
// Empty filters match everything.
type EventQuery struct {
	AfterSeq  int64 // only events after this seq (a stream's resume point)
	BeforeSeq int64 // only events before this seq (the next page of a list); 0: no bound
	Entity    string
	// Types are event types or rule names ("updated", "dossier.result_ready").
	Types []string
	// Agencies, when non-nil, keeps only events of these agencies: a scoped
	// reader sees nothing else, and an empty non-nil list matches nothing.
	Agencies     []string
	Since, Until time.Time // detection time, Until excluded
	Limit        int       // at most this many (default 100)
	// Ascending returns the oldest first (a stream); by default the newest first.
	Ascending bool
}

// StoredEvent is an event with its commit order.
type StoredEvent struct {
	Seq   int64
	Event pipeline.Event
}

// Events lists stored events (those the retention has not purged yet). The
// agency is read from the payload, so a scoped list scans past other agencies'
// events; seq bounds keep every page a range scan of the primary key.
func (s *sqlStore) Events(ctx context.Context, q EventQuery) ([]StoredEvent, error) {
	if q.Agencies != nil && len(q.Agencies) == 0 {
		return nil, nil
	}
	var where []string
	var args []any
	if q.AfterSeq > 0 {
		where, args = append(where, "seq > ?"), append(args, q.AfterSeq)
	}
	if q.BeforeSeq > 0 {
		where, args = append(where, "seq < ?"), append(args, q.BeforeSeq)
	}
	if q.Entity != "" {
		where, args = append(where, "entity = ?"), append(args, q.Entity)
	}
	if len(q.Types) > 0 {
		rule := s.d.payloadText("rule")
		where = append(where, "(type IN ("+placeholders(len(q.Types))+") OR "+rule+" IN ("+placeholders(len(q.Types))+"))")
		for range 2 {
			for _, t := range q.Types {
				args = append(args, t)
			}
		}
	}
	if q.Agencies != nil {
		where = append(where, s.d.payloadText("agency")+" IN ("+placeholders(len(q.Agencies))+")")
		for _, a := range q.Agencies {
			args = append(args, a)
		}
	}
	if !q.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, s.d.timeArg(q.Since))
	}
	if !q.Until.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, s.d.timeArg(q.Until))
	}
	query := `SELECT seq, payload FROM events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	order := " ORDER BY seq DESC"
	if q.Ascending {
		order = " ORDER BY seq"
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	query = s.q(query + order + limitClause(q.Limit))
	out, err := s.readEvents(ctx, query, args)
	if errors.Is(err, errLazyMoved) { // the record moved on meanwhile: its event is whole now
		out, err = s.readEvents(ctx, query, args)
	}
	if err != nil {
		return nil, fmt.Errorf("store: list events: %w", err)
	}
	return out, nil
}

func (s *sqlStore) readEvents(ctx context.Context, query string, args []any) ([]StoredEvent, error) {
	type row struct {
		Seq     int64  `db:"seq"`
		Payload []byte `db:"payload"`
	}
	var rows []row
	if err := s.reader().SelectContext(ctx, &rows, query, args...); err != nil {
		return nil, err
	}
	out := make([]StoredEvent, len(rows))
	var lazy []*pipeline.Event
	for i, r := range rows {
		out[i].Seq = r.Seq
		isLazy, err := decodeEvent(r.Payload, &out[i].Event)
		if err != nil {
			return nil, fmt.Errorf("decode event seq %d: %w", r.Seq, err)
		}
		if isLazy {
			lazy = append(lazy, &out[i].Event)
		}
	}
	if err := s.fillLazy(ctx, s.reader(), lazy); err != nil {
		return nil, err
	}
	return out, nil
}

// payloadText is the expression of a top-level text member of an event's payload.
// key is a constant of this package, never input.
func (d dialect) payloadText(key string) string {
	if d == postgresDialect {
		return `(payload->>'` + key + `')`
	}
	return `json_extract(payload, '$.` + key + `')`
}
