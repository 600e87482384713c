package pgtable

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

var _ pipeline.BatchSink = (*Sink)(nil)

// batchChunk bounds the events of one statement, so a huge batch does not make
// one huge transaction.
const batchChunk = 3000

// item is one event of a batch, ready to bind.
type item struct {
	i     int // index in the batch
	ev    *pipeline.Event
	row   eventRow
	table string
	state bool
}

// DeliverBatch stores a batch with one statement per chunk of 3,000 events: the
// event rows (a redelivered id is a no-op) and, per entity, the newest state of
// each record in the batch under the same (epoch, version) guard as Deliver, each
// row touched once. One statement is one transaction: the whole chunk commits or
// none of it does. An event the sink can tell is bad (no id, an entity that cannot
// name a table, a value JSON cannot hold) fails alone; when the server refuses the
// data of a chunk, its events are delivered one by one so that only the bad one
// fails.
func (s *Sink) DeliverBatch(ctx context.Context, evs []*pipeline.Event) []error {
	errs := make([]error, len(evs))
	items := make([]item, 0, len(evs))
	for i, ev := range evs {
		it, err := s.prepare(ev)
		if err != nil {
			errs[i] = err
			continue
		}
		it.i = i
		items = append(items, it)
	}
	if len(items) == 0 {
		return errs
	}
	if err := s.ensureTables(ctx, items); err != nil {
		fail(errs, items, err)
		return errs
	}
	for start := 0; start < len(items); start += batchChunk {
		chunk := items[start:min(start+batchChunk, len(items))]
		err := s.writeBatch(ctx, chunk)
		if err == nil {
			continue
		}
		if code := sqlState(err); code == "42P01" || code == "3F000" {
			s.forget()
		}
		err = classify(s.errorf("deliver a batch of %d events: %w", len(chunk), s.red.Err(err)))
		if !pipeline.IsPermanent(err) {
			fail(errs, chunk, err)
			continue
		}
		for _, it := range chunk { // find the event the server refuses
			errs[it.i] = s.Deliver(ctx, it.ev)
		}
	}
	return errs
}

// prepare checks and encodes an event as Deliver does.
func (s *Sink) prepare(ev *pipeline.Event) (item, error) {
	if ev == nil {
		return item{}, pipeline.Permanent(s.errorf("deliver: nil event"))
	}
	if ev.ID == "" {
		return item{}, pipeline.Permanent(s.errorf("deliver: an event of entity %s (v%d) has no id", short(ev.Entity), ev.Version))
	}
	table, err := s.stateTable(ev.Entity)
	if err != nil {
		return item{}, pipeline.Permanent(s.errorf("deliver event %s: %w", ev.ID, err))
	}
	row, err := encodeEvent(ev)
	if err != nil {
		return item{}, pipeline.Permanent(s.errorf("deliver event %s: %w", ev.ID, err))
	}
	return item{ev: ev, row: row, table: table, state: ev.Type == pipeline.EventDeleted || row.after != nil}, nil
}

func (s *Sink) ensureTables(ctx context.Context, items []item) error {
	if err := s.ensureEvents(ctx); err != nil {
		return err
	}
	done := map[string]bool{}
	for _, it := range items {
		if !it.state || done[it.table] {
			continue
		}
		done[it.table] = true
		if err := s.ensure(ctx, it.table, stateDDL(s.opts.Schema, it.table)); err != nil {
			return err
		}
	}
	return nil
}

func fail(errs []error, items []item, err error) {
	for _, it := range items {
		errs[it.i] = err
	}
}

// stateKey is one state row: a record of one entity's table.
type stateKey struct{ table, key, source string }

// writeBatch runs the batch's statement. The rows go as one array per column
// (unnest), which PostgreSQL parses and plans in a fraction of the time of a
// VALUES list of thousands of parameters: x holds each event once, and which
// state upsert, if any, takes it (g); the event INSERT and one state upsert per
// table (two when some events carry no fields, which keep the stored ones) are
// data-modifying CTEs of one statement, so all of it commits or none of it does.
func (s *Sink) writeBatch(ctx context.Context, items []item) error {
	groups := stateGroups(items)
	group := map[string]int{} // event id -> the state upsert (1-based) that takes it
	for n, g := range groups {
		for _, it := range g {
			group[it.row.id] = n + 1
		}
	}
	cols := newColumns(len(items))
	for _, it := range items {
		cols.add(it, group[it.row.id]) // one row per id: a statement must not insert it twice
	}
	var q strings.Builder
	q.WriteString(`WITH x AS MATERIALIZED (SELECT * FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS text[]),
	CAST($4 AS text[]), CAST($5 AS text[]), CAST($6 AS text[]), CAST($7 AS text[]), CAST($8 AS bigint[]), CAST($9 AS boolean[]),
	CAST($10 AS text[]), CAST($11 AS text[]), CAST($12 AS text[]), CAST($13 AS text[]), CAST($14 AS text[]), CAST($15 AS bigint[]),
	CAST($16 AS text[]), CAST($17 AS boolean[]), CAST($18 AS integer[]))
	AS x(event_id, type, rule, source, entity, key, agency, version, snapshot, changed, before, after, message, detected_at,
	epoch, fields, deleted, g)),
ev AS (INSERT INTO ` + s.qualified(s.opts.EventsTable) + ` (event_id, type, rule, source, entity, key, agency,
	version, snapshot, changed, before, after, message, detected_at, epoch)
	SELECT event_id, type, rule, source, entity, key, agency, version, snapshot, CAST(changed AS text[]),
	CAST(before AS jsonb), CAST(after AS jsonb), CAST(message AS jsonb), CAST(detected_at AS timestamptz), epoch FROM x
	ON CONFLICT (event_id) DO NOTHING)`)
	for n, g := range groups {
		fields, set := `CAST(x.fields AS jsonb)`, `EXCLUDED.fields`
		if g[0].row.fields == nil {
			fields, set = `'{}'::jsonb`, `cur.fields` // an event without fields keeps the last known ones
		}
		q.WriteString(",\ns" + strconv.Itoa(n) + ` AS (INSERT INTO ` + s.qualified(g[0].table) +
			` AS cur (key, source, agency, version, epoch, fields, updated_at, deleted, deleted_at)
	SELECT x.key, x.source, x.agency, x.version, x.epoch, ` + fields + `, CAST(x.detected_at AS timestamptz), x.deleted,
	CASE WHEN x.deleted THEN CAST(x.detected_at AS timestamptz) END
	FROM x WHERE x.g = ` + strconv.Itoa(n+1) + ` ORDER BY x.key, x.source
	ON CONFLICT (key, source) DO UPDATE SET agency = EXCLUDED.agency, version = EXCLUDED.version,
	epoch = EXCLUDED.epoch, fields = ` + set + `, updated_at = EXCLUDED.updated_at, deleted = EXCLUDED.deleted,
	deleted_at = EXCLUDED.deleted_at
	WHERE (cur.epoch, cur.version) < (EXCLUDED.epoch, EXCLUDED.version))`)
	}
	q.WriteString("\nSELECT 1")
	_, err := s.db.ExecContext(ctx, q.String(), cols.args()...)
	return err
}

// columns holds a batch's rows as one slice per column, for unnest.
type columns struct {
	seen                                      map[string]bool
	id, typ, source, entity, key, detectedAt  []string
	rule, agency, changed, before, after, msg []sql.NullString
	fields                                    []sql.NullString
	version, epoch                            []int64
	snapshot, deleted                         []bool
	group                                     []int64
}

func newColumns(n int) *columns {
	return &columns{seen: make(map[string]bool, n)}
}

// add appends an event's row, unless its id is already there.
func (c *columns) add(it item, group int) {
	r := it.row
	if c.seen[r.id] {
		return
	}
	c.seen[r.id] = true
	c.id, c.typ, c.source, c.entity, c.key = append(c.id, r.id), append(c.typ, r.typ), append(c.source, r.source),
		append(c.entity, r.entity), append(c.key, r.key)
	c.detectedAt = append(c.detectedAt, it.ev.DetectedAt.UTC().Format(time.RFC3339Nano))
	c.rule, c.agency, c.changed = append(c.rule, text(r.rule)), append(c.agency, text(r.agency)), append(c.changed, text(r.changed))
	c.before, c.after, c.msg = append(c.before, text(r.before)), append(c.after, text(r.after)), append(c.msg, text(r.message))
	c.fields = append(c.fields, text(r.fields))
	c.version, c.epoch = append(c.version, it.ev.Version), append(c.epoch, it.ev.Epoch)
	c.snapshot, c.deleted = append(c.snapshot, it.ev.Snapshot), append(c.deleted, it.ev.Type == pipeline.EventDeleted)
	c.group = append(c.group, int64(group))
}

func (c *columns) args() []any {
	return []any{pq.Array(c.id), pq.Array(c.typ), pq.Array(c.rule), pq.Array(c.source), pq.Array(c.entity), pq.Array(c.key),
		pq.Array(c.agency), pq.Array(c.version), pq.Array(c.snapshot), pq.Array(c.changed), pq.Array(c.before),
		pq.Array(c.after), pq.Array(c.msg), pq.Array(c.detectedAt), pq.Array(c.epoch), pq.Array(c.fields),
		pq.Array(c.deleted), pq.Array(c.group)}
}

// text turns one of eventRow's bind values (a string, a text array, or nil for
// NULL) into an element of a text array; a text array goes as its literal, which
// the statement casts back.
func text(v any) sql.NullString {
	switch x := v.(type) {
	case string:
		return sql.NullString{String: x, Valid: true}
	case pq.StringArray:
		lit, _ := x.Value() // a []string always has a literal
		return sql.NullString{String: lit.(string), Valid: true}
	}
	return sql.NullString{}
}

// stateGroups keeps the newest event of each state row, by (epoch, version), and
// groups them by table and by whether they carry fields, in key order (so two
// batches that share rows lock them in the same order).
func stateGroups(items []item) [][]item {
	newest := map[stateKey]item{}
	for _, it := range items {
		if !it.state {
			continue
		}
		k := stateKey{it.table, it.row.key, it.row.source}
		if cur, ok := newest[k]; !ok || newer(it.ev, cur.ev) {
			newest[k] = it
		}
	}
	rows := make([]item, 0, len(newest))
	for _, it := range newest {
		rows = append(rows, it)
	}
	slices.SortFunc(rows, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.table, b.table), compareBool(a.row.fields == nil, b.row.fields == nil),
			cmp.Compare(a.row.key, b.row.key), cmp.Compare(a.row.source, b.row.source))
	})
	var groups [][]item
	for i, it := range rows {
		if i == 0 || it.table != rows[i-1].table || (it.row.fields == nil) != (rows[i-1].row.fields == nil) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], it)
	}
	return groups
}

// newer reports whether a is a later version of its record than b; a tie goes to
// a, the later in the batch.
func newer(a, b *pipeline.Event) bool {
	return cmp.Or(cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Version, b.Version)) >= 0
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
