package pgtable

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

var _ pipeline.BatchSink = (*Sink)(nil)

// batchChunk bounds the events of one statement: 17 parameters each stays far
// below PostgreSQL's 65,535.
const batchChunk = 3000

// eventParams is how many parameters an event row binds ($1-$15 in Deliver).
const eventParams = 15

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
	return item{ev: ev, row: row, table: table, state: ev.Type == pipeline.EventDeleted || ev.After != nil}, nil
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

// writeBatch runs the batch's statement: the event INSERT as the first
// data-modifying CTE, then one state upsert per table (two when some events carry
// no fields, which keep the stored ones).
func (s *Sink) writeBatch(ctx context.Context, items []item) error {
	var q strings.Builder
	args := make([]any, 0, len(items)*(eventParams+2))
	q.WriteString(`WITH ev AS (INSERT INTO ` + s.qualified(s.opts.EventsTable) + ` (event_id, type, rule, source, entity, key, agency,
	version, snapshot, changed, before, after, message, detected_at, epoch) VALUES `)
	base := make(map[string]int, len(items)) // event id -> number of its first parameter
	for _, it := range items {
		if _, dup := base[it.row.id]; dup {
			continue // one row per id: a statement must not insert it twice
		}
		if len(base) > 0 {
			q.WriteString(", ")
		}
		base[it.row.id] = len(args) + 1
		r := it.row
		args = append(args, r.id, r.typ, r.rule, r.source, r.entity, r.key, r.agency,
			it.ev.Version, it.ev.Snapshot, r.changed, r.before, r.after, r.message, it.ev.DetectedAt, it.ev.Epoch)
		q.WriteString(tuple(base[it.row.id], eventParams))
	}
	q.WriteString(` ON CONFLICT (event_id) DO NOTHING)`)

	for n, group := range stateGroups(items) {
		q.WriteString(",\ns" + strconv.Itoa(n) + ` AS (INSERT INTO ` + s.qualified(group[0].table) +
			` AS cur (key, source, agency, version, epoch, fields, updated_at, deleted) VALUES `)
		keep := group[0].row.fields == nil
		for j, it := range group {
			if j > 0 {
				q.WriteString(", ")
			}
			p := base[it.row.id]
			ref := func(k int) string { return "$" + strconv.Itoa(p+k-1) } // $k of the event's row
			fields := `'{}'::jsonb`
			if !keep {
				args = append(args, it.row.fields)
				fields = "$" + strconv.Itoa(len(args))
			}
			args = append(args, it.ev.Type == pipeline.EventDeleted)
			q.WriteString("(" + ref(6) + ", " + ref(4) + ", " + ref(7) + ", " + ref(8) + ", " + ref(15) + ", " + fields +
				", " + ref(14) + ", $" + strconv.Itoa(len(args)) + ")")
		}
		set := `EXCLUDED.fields`
		if keep {
			set = `cur.fields` // an event without fields keeps the last known ones
		}
		q.WriteString(` ON CONFLICT (key, source) DO UPDATE SET agency = EXCLUDED.agency, version = EXCLUDED.version,
	epoch = EXCLUDED.epoch, fields = ` + set + `, updated_at = EXCLUDED.updated_at, deleted = EXCLUDED.deleted
WHERE (cur.epoch, cur.version) < (EXCLUDED.epoch, EXCLUDED.version))`)
	}
	q.WriteString("\nSELECT 1")
	_, err := s.db.ExecContext(ctx, q.String(), args...)
	return err
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

// tuple renders ($first, ..., $first+n-1).
func tuple(first, n int) string {
	var b strings.Builder
	b.WriteByte('(')
	for k := range n {
		if k > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(first+k))
	}
	b.WriteByte(')')
	return b.String()
}
