package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// maxParams bounds the bound parameters of one multi-row INSERT: far below the
// limits of both backends (SQLite 32766, PostgreSQL 65535), large enough that a
// batch of a thousand rows takes a handful of round trips.
const maxParams = 4000

// Commit stores the batch in one transaction; see Store.Commit. Any failure, a
// cancelled context included, rolls everything back, so the cursor never moves
// past changes that were not recorded.
func (s *sqlStore) Commit(ctx context.Context, b Batch) error {
	if err := s.commit(ctx, b); err != nil {
		return fmt.Errorf("store: commit batch for source %q: %w", b.Source, err)
	}
	return nil
}

func (s *sqlStore) commit(ctx context.Context, b Batch) error {
	if b.Source == "" {
		return errors.New("batch names no source")
	}
	snap, err := s.snapshotRows(b)
	if err != nil {
		return err
	}
	if len(snap.list) == 0 || !snap.allNew() {
		if err := s.analyzeIfDue(ctx); err != nil {
			return err
		}
	}
	// On SQLite the transaction runs on a connection of its own (the pool's
	// only one), so the snapshot's new rows can be bound through the driver
	// (snapshot_raw.go).
	var rc rawConn
	var tx *sqlx.Tx
	if s.d == sqliteDialect {
		if rc.conn, err = s.db.Connx(ctx); err != nil {
			return err
		}
		defer rc.conn.Close() // after the Rollback below: closing waits for the transaction to end
		tx, err = rc.conn.BeginTxx(ctx, nil)
	} else {
		tx, err = s.db.BeginTxx(ctx, nil)
	}
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := s.checkFence(ctx, tx, b.Fence); err != nil {
		return err
	}
	if !bulkEligible(b, snap) {
		if err := s.needKeyIndex(ctx, tx); err != nil {
			return err
		}
	}
	if err := s.priorRows(ctx, tx, b.Source, snap); err != nil {
		return fmt.Errorf("read the stored records: %w", err)
	}
	s.feeds.drop(snap.priorLazySeqs())
	facts, err := s.prepareFacts(ctx, tx, b.Source, b.Facts, snap, b.At)
	if err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	events, feeds, err := s.eventRows(b, snap)
	if err != nil {
		return err
	}
	if err := s.materialize(ctx, tx, b.Source, snap); err != nil {
		return fmt.Errorf("keep the fields of events about to lose their snapshot row: %w", err)
	}
	if err := s.storeFeeds(ctx, tx, b, feeds); err != nil {
		return fmt.Errorf("store snapshot feeds: %w", err)
	}
	seqs, err := s.insertEvents(ctx, tx, b, events)
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	if err := s.lazySeqs(ctx, tx, snap, seqs); err != nil {
		return fmt.Errorf("find lazy events: %w", err)
	}
	shapesStored, err := s.storeShapes(ctx, tx, snap.shapes)
	if err != nil {
		return err
	}
	if err := s.upsertSnapshot(ctx, tx, rc, b, snap); err != nil {
		return fmt.Errorf("store snapshot: %w", err)
	}
	if err := s.indexSnapshot(ctx, tx, b.Source, snap); err != nil {
		return fmt.Errorf("index look-up fields: %w", err)
	}
	if err := s.writeFacts(ctx, tx, b.Source, facts, b.Timers); err != nil {
		return err
	}
	if err := s.resolveRows(ctx, tx, b); err != nil {
		return fmt.Errorf("clear quarantine: %w", err)
	}
	if err := s.upsertQuarantine(ctx, tx, b); err != nil {
		return fmt.Errorf("store quarantine: %w", err)
	}
	if err := s.storeMisses(ctx, tx, b); err != nil {
		return fmt.Errorf("store miss counts: %w", err)
	}
	if err := s.upsertCursor(ctx, tx, b); err != nil {
		return fmt.Errorf("store cursor: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	shapesStored()
	s.cacheFeeds(feeds)
	s.rememberGroups(facts.added)
	s.countInserted(snap.inserted())
	return nil
}

// pendingSnapshot is a snapshot entry ready to store: its fields encoded once for
// the snapshot (positional, see shapes.go) and, when an event carries them, once
// as the object events hold.
type pendingSnapshot struct {
	SnapshotEntry
	fields []byte
	object []byte
	// lazyID names the entry's created event when it is stored without its fields,
	// which are read from this row while it stays at this version (see
	// materialize); lazySeq is that event's seq once inserted.
	lazyID  string
	lazySeq *int64
	// prior is the record as stored before this commit (nil: new).
	prior *priorRow
	// fact is the record's facts as the row keeps them (nil: the batch has none
	// for the record, and the row keeps the facts it has).
	fact *factColumns
}

// snapshotRows is a batch's snapshot entries, one per key, encoded once.
type snapshotRows struct {
	list   []*pendingSnapshot
	byKey  map[[2]string]*pendingSnapshot // entity, key
	shapes map[int64]bool                 // the shapes of the rows' fields
}

// inserted counts the rows that are new to the store.
func (rs snapshotRows) inserted() int {
	n := 0
	for _, r := range rs.list {
		if r.prior == nil {
			n++
		}
	}
	return n
}

// objectJSON is the row's fields as an event carries them, encoded on first use.
func (r *pendingSnapshot) objectJSON() ([]byte, error) {
	if r.object == nil {
		o, err := pipeline.AppendFieldsJSON(nil, r.Fields, nil)
		if err != nil {
			return nil, fmt.Errorf("encode fields of %s %q: %w", r.Entity, r.Key, err)
		}
		r.object = o
	}
	return r.object, nil
}

// snapshotRows encodes the batch's snapshot entries. One statement must not touch a
// row twice (PostgreSQL refuses), so a key that appears twice in the batch keeps its
// last entry, as sequential upserts would.
func (s *sqlStore) snapshotRows(b Batch) (snapshotRows, error) {
	rs := snapshotRows{byKey: make(map[[2]string]*pendingSnapshot, len(b.Snapshot)), shapes: map[int64]bool{}}
	for _, e := range b.Snapshot {
		fields, shape, err := s.encodeFields(e.Fields)
		if err != nil {
			return rs, fmt.Errorf("encode snapshot fields of %s %q: %w", e.Entity, e.Key, err)
		}
		rs.shapes[shape] = true
		id := [2]string{e.Entity, e.Key}
		if r, dup := rs.byKey[id]; dup {
			*r = pendingSnapshot{SnapshotEntry: e, fields: fields}
			continue
		}
		r := &pendingSnapshot{SnapshotEntry: e, fields: fields}
		rs.byKey[id] = r
		rs.list = append(rs.list, r)
	}
	return rs, nil
}

const snapshotConflict = ` ON CONFLICT (source, entity, key) DO UPDATE SET hash = excluded.hash, version = excluded.version,
	fields = excluded.fields, deleted = excluded.deleted, updated_at = excluded.updated_at, lazy_seq = excluded.lazy_seq`

func (s *sqlStore) upsertSnapshot(ctx context.Context, tx *sqlx.Tx, rc rawConn, b Batch, rs snapshotRows) error {
	if s.d == postgresDialect {
		return s.upsertSnapshotPG(ctx, tx, b, rs)
	}
	updatedAt := s.d.rowTimeArg(b.At)
	if rc.conn != nil && rs.allNew() {
		plain, withFacts := splitByFacts(rs.list)
		at := b.At.UnixNano() // rowTimeArg's value on SQLite
		err := s.insertNewSnapshotRaw(ctx, rc, b.Source, at, plain, false)
		if err == nil {
			err = s.insertNewSnapshotRaw(ctx, rc, b.Source, at, withFacts, true)
		}
		if !errors.Is(err, errNoRawExec) {
			return err
		}
	}
	// Rows with facts and rows without (a mapping without figures) go in
	// statements of their own: the latter leave the row's facts as they are.
	// Rows the commit read (priorRows) are updated in place instead. Rows the
	// writer says are new (New) have nothing to conflict with, and a bulk load
	// may have left out the key index an ON CONFLICT clause names: a key stored
	// after all (a writer that broke New's promise) fails the batch on the
	// unique index, as PostgreSQL's COPY does, all new or not. Stored over, its
	// row would take a new lazy event, and the record's created event would be
	// fed again under a new seq.
	var plain, withFacts [2][][]any // [1]: rows marked New
	var stored []*pendingSnapshot
	for _, r := range rs.list {
		if r.prior != nil {
			stored = append(stored, r)
			continue
		}
		row := []any{b.Source, r.Entity, r.Key, hashArg(r.Hash), r.Version, s.d.jsonArg(r.fields), r.Deleted, updatedAt, r.lazySeq}
		n := 0
		if r.New {
			n = 1
		}
		if r.fact != nil {
			withFacts[n] = append(withFacts[n], r.fact.appendArgs(row))
		} else {
			plain[n] = append(plain[n], row)
		}
	}
	if err := s.updateSnapshot(ctx, tx, stored, updatedAt); err != nil {
		return err
	}
	const head = `INSERT INTO snapshot (source, entity, key, hash, version, fields, deleted, updated_at, lazy_seq`
	for n, conflict := range [2]string{snapshotConflict, ``} {
		factsConflict := conflict
		if conflict != `` {
			factsConflict += `, ` + factConflict
		}
		if err := s.insertRows(ctx, tx, head+`) VALUES `, conflict, plain[n], nil); err != nil {
			return err
		}
		if err := s.insertRows(ctx, tx, head+`, `+factColumnList+`) VALUES `, factsConflict, withFacts[n], nil); err != nil {
			return err
		}
	}
	return nil
}

// splitByFacts parts rows into those without facts and those with: each kind
// goes in statements of its own, the former leaving a row's facts as they are.
func splitByFacts(rows []*pendingSnapshot) (plain, withFacts []*pendingSnapshot) {
	for _, r := range rows {
		if r.fact != nil {
			withFacts = append(withFacts, r)
		} else {
			plain = append(plain, r)
		}
	}
	return plain, withFacts
}

// upsertSnapshotPG stores the rows in one statement, one array per column: a
// VALUES list of thousands of parameters costs PostgreSQL more to parse and plan
// than to execute. Rows with facts and rows without go in statements of their
// own, as on SQLite.
func (s *sqlStore) upsertSnapshotPG(ctx context.Context, tx *sqlx.Tx, b Batch, rs snapshotRows) error {
	if len(rs.list) == 0 {
		return nil
	}
	if rs.allNew() {
		return s.copySnapshot(ctx, tx, b, rs)
	}
	// Rows marked New go without ON CONFLICT: see upsertSnapshot.
	var known, marked []*pendingSnapshot
	for _, r := range rs.list {
		if r.New {
			marked = append(marked, r)
		} else {
			known = append(known, r)
		}
	}
	for n, rows := range [2][]*pendingSnapshot{known, marked} {
		plain, withFacts := splitByFacts(rows)
		for _, list := range [][]*pendingSnapshot{plain, withFacts} {
			if err := s.upsertSnapshotRowsPG(ctx, tx, b, list, n == 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// upsertSnapshotRowsPG stores list, rows all with facts or all without; upsert
// false inserts them without an ON CONFLICT clause (rows marked New).
func (s *sqlStore) upsertSnapshotRowsPG(ctx context.Context, tx *sqlx.Tx, b Batch, list []*pendingSnapshot, upsert bool) error {
	if len(list) == 0 {
		return nil
	}
	n := len(list)
	entities, keys, hashes, fields, lazy := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	versions, deleted := make([]int64, n), make([]bool, n)
	for i, r := range list {
		entities[i], keys[i], hashes[i], versions[i], deleted[i] = r.Entity, r.Key, r.Hash, r.Version, r.Deleted
		fields[i] = s.d.jsonArg(r.fields).(string)
		if r.lazySeq != nil {
			lazy[i] = strconv.FormatInt(*r.lazySeq, 10)
		}
	}
	args := []any{b.Source, b.At.UTC(), pq.Array(entities), pq.Array(keys), pq.Array(hashes), pq.Array(versions), pq.Array(fields),
		pq.Array(deleted), pq.Array(lazy)}
	cols, sel, from, conflict := ``, ``, ``, snapshotConflict
	if list[0].fact != nil {
		// One array per fact column; NULLs as NULL elements.
		var nums [11][]sql.NullInt64
		for j := range nums {
			nums[j] = make([]sql.NullInt64, n)
		}
		for i, r := range list {
			for j, v := range r.fact.values() {
				nums[j][i] = v
			}
		}
		for _, a := range nums {
			args = append(args, pq.Array(a))
		}
		cols, sel = `, `+factColumnList, `, x.fact_group, x.fact_state, x.fact_flags, x.fact_received_at,
			x.fact_due_at, x.fact_finished_at, x.fact_supplement_at, x.fact_received_day, x.fact_due_day, x.fact_finished_day,
			x.fact_supplement_day`
		from = `, CAST($10 AS integer[]), CAST($11 AS smallint[]), CAST($12 AS smallint[]), CAST($13 AS bigint[]),
			CAST($14 AS bigint[]), CAST($15 AS bigint[]), CAST($16 AS bigint[]), CAST($17 AS integer[]), CAST($18 AS integer[]),
			CAST($19 AS integer[]), CAST($20 AS integer[])`
		conflict += `, ` + factConflict
	}
	if !upsert {
		conflict = ``
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO snapshot (source, entity, key, hash, version, fields, deleted, updated_at, lazy_seq`+cols+`)
		SELECT $1, x.entity, x.key, x.hash, x.version, CAST(x.fields AS json), x.deleted, $2, CAST(NULLIF(x.lazy, '') AS bigint)`+sel+`
		FROM unnest(CAST($3 AS text[]), CAST($4 AS text[]), CAST($5 AS text[]), CAST($6 AS bigint[]), CAST($7 AS text[]),
		            CAST($8 AS boolean[]), CAST($9 AS text[])`+from+`) AS x(entity, key, hash, version, fields, deleted, lazy`+cols+`)`+conflict, args...)
	return err
}

// allNew reports whether the writer said of every row that the store holds no
// row of its key (SnapshotEntry.New).
func (rs snapshotRows) allNew() bool {
	for _, r := range rs.list {
		if !r.New {
			return false
		}
	}
	return true
}

// copySnapshot stores rows that are all new with COPY: there is nothing to
// conflict with, and COPY spares the server the arrays' parsing and each row's
// conflict check. A key that is stored after all (a writer that broke New's
// promise) fails the batch on the primary key instead of overwriting the row.
func (s *sqlStore) copySnapshot(ctx context.Context, tx *sqlx.Tx, b Batch, rs snapshotRows) error {
	// A new row without facts has none to keep: its fact columns are NULL.
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("snapshot",
		"source", "entity", "key", "hash", "version", "fields", "deleted", "updated_at", "lazy_seq",
		"fact_group", "fact_state", "fact_flags", "fact_received_at", "fact_due_at", "fact_finished_at", "fact_supplement_at",
		"fact_received_day", "fact_due_day", "fact_finished_day", "fact_supplement_day"))
	if err != nil {
		return err
	}
	defer stmt.Close()
	at := b.At.UTC()
	for _, r := range rs.list {
		var lazy any
		if r.lazySeq != nil {
			lazy = *r.lazySeq
		}
		fact := r.fact
		if fact == nil {
			fact = &factColumns{}
		}
		if _, err := stmt.ExecContext(ctx, fact.appendArgs([]any{b.Source, r.Entity, r.Key, r.Hash, r.Version, s.d.jsonArg(r.fields),
			r.Deleted, at, lazy})...); err != nil {
			return fmt.Errorf("%s %q: %w", r.Entity, r.Key, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return err
	}
	return stmt.Close()
}

// eventRow is an event ready to insert, with the sinks it is routed to.
type eventRow struct {
	id     string
	record string
	args   []any
	sinks  []string
}

// RecordID identifies a record across sources for per-record delivery order.
func RecordID(source, entity, key string) string { return source + "/" + entity + "/" + key }

// eventRows encodes the batch's events, but for those that live in their snapshot
// rows (feeds; see feed.go), which it returns in blocks. An id that appears twice is
// one event routed to the union of the sinks.
func (s *sqlStore) eventRows(b Batch, snap snapshotRows) ([]eventRow, []*feedBlock, error) {
	rows := make([]eventRow, 0, len(b.Events))
	byID := map[string]int{}
	perRecord := make(map[[2]string]int, len(b.Events))
	for i, oe := range b.Events {
		if oe.Event == nil {
			return nil, nil, fmt.Errorf("event %d is nil", i)
		}
		perRecord[[2]string{oe.Event.Entity, oe.Event.Key}]++
	}
	var feeds []*feedBlock
	createdAt := s.d.timeArg(b.At)
	for i, oe := range b.Events {
		ev := oe.Event
		if ev.ID == "" {
			return nil, nil, fmt.Errorf("event %d (%s %s %q) has no id", i, ev.Type, ev.Entity, ev.Key)
		}
		if j, dup := byID[ev.ID]; dup {
			rows[j].sinks = append(rows[j].sinks, oe.Sinks...)
			continue
		}
		// An event's after is its record at the event's version: when the batch
		// stores that version, its encoding is the snapshot row's.
		var after []byte
		lazy := false
		if r := snap.byKey[[2]string{ev.Entity, ev.Key}]; r != nil && r.Version == ev.Version && ev.After != nil {
			// A snapshot's created event is stored without its fields: the snapshot
			// row holds them until the record changes (see materialize).
			lazy = ev.Snapshot && ev.Type == pipeline.EventCreated && ev.Rule == "" && ev.Message == nil
			if lazy {
				r.lazyID = ev.ID
			}
			if p := r.prior; lazy && p != nil && p.LazySeq.Valid && p.Version == r.Version && string(p.Hash) == r.Hash {
				// A replayed batch: the row holds this very event already.
				seq := p.LazySeq.Int64
				r.lazySeq = &seq
				continue
			}
			if lazy && perRecord[[2]string{ev.Entity, ev.Key}] == 1 && feedable(b, ev, r, oe.Sinks) {
				feeds = addFeed(feeds, ev, r, oe.Sinks)
				continue
			}
			if !lazy {
				var err error
				if after, err = r.objectJSON(); err != nil {
					return nil, nil, err
				}
			}
		}
		payload, err := encodeEvent(ev, after, lazy)
		if err != nil {
			return nil, nil, fmt.Errorf("encode event %s (%s %s %q): %w", ev.ID, ev.Type, ev.Entity, ev.Key, err)
		}
		byID[ev.ID] = len(rows)
		rows = append(rows, eventRow{
			id:     ev.ID,
			record: RecordID(b.Source, ev.Entity, ev.Key),
			args:   []any{ev.ID, b.Source, ev.Entity, ev.Key, ev.Type, s.d.jsonArg(payload), createdAt},
			sinks:  slices.Clone(oe.Sinks),
		})
	}
	for i := range rows {
		slices.Sort(rows[i].sinks)
		rows[i].sinks = slices.Compact(rows[i].sinks)
	}
	return rows, feeds, nil
}

// insertEvents inserts the events that are new and the outbox rows of exactly those:
// an id that already exists means the batch is a replay and its events were queued
// the first time.
func (s *sqlStore) insertEvents(ctx context.Context, tx *sqlx.Tx, b Batch, events []eventRow) (map[string]int64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := s.d.lockEvents(ctx, tx); err != nil {
		return nil, err
	}
	rows := make([][]any, len(events))
	for i, e := range events {
		rows[i] = e.args
	}
	seqs := make(map[string]int64, len(events))
	err := s.insertMany(ctx, tx, `events`, eventColumns, ` ON CONFLICT (id) DO NOTHING RETURNING seq, id`,
		rows, func(r *sqlx.Rows) error {
			var seq int64
			var id string
			if err := r.Scan(&seq, &id); err != nil {
				return err
			}
			seqs[id] = seq
			return nil
		})
	if err != nil {
		return nil, err
	}
	var outbox []outboxRow
	for _, e := range events {
		seq, inserted := seqs[e.id]
		if !inserted {
			continue
		}
		for _, sink := range e.sinks {
			outbox = append(outbox, outboxRow{sink: sink, seq: seq, record: e.record})
		}
	}
	return seqs, s.insertOutbox(ctx, tx, b.At, outbox)
}

func (s *sqlStore) upsertQuarantine(ctx context.Context, tx *sqlx.Tx, b Batch) error {
	if len(b.Quarantine) == 0 {
		return nil
	}
	// One row per statement: the same bad row may well appear twice in a batch, and
	// each occurrence must bump the count of the first.
	stmt, err := tx.PreparexContext(ctx, s.q(`INSERT INTO quarantine
		(source, entity, row_key, reason, raw, dedupe, count, first_at, last_at, snapshot, rule, event)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
		ON CONFLICT (source, entity, dedupe) DO UPDATE SET
		count = quarantine.count + 1, last_at = excluded.last_at, raw = excluded.raw, event = excluded.event`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	at := s.d.timeArg(b.At)
	for _, e := range b.Quarantine {
		source := e.Source
		if source == "" {
			source = b.Source
		}
		raw, err := json.Marshal(e.Raw)
		if err != nil {
			return fmt.Errorf("encode quarantined row: %w", err)
		}
		var event any
		if e.Event != nil {
			j, err := json.Marshal(e.Event)
			if err != nil {
				return fmt.Errorf("encode the event of failed rule %s: %w", e.Rule, err)
			}
			event = s.d.jsonArg(j)
		}
		rowKey, reason := pgtext.Text(e.RowKey), pgtext.Text(e.Reason)
		dedupe := quarantineDedupe(rowKey, reason, raw)
		if e.Rule != "" {
			// One failed notice per rule and change: the same rule failing on the
			// record's next change is a second notice to retry.
			dedupe = quarantineDedupe(rowKey, "rule\x00"+e.Rule+"\x00"+e.Event.ID, nil)
		}
		if _, err := stmt.ExecContext(ctx, source, pgtext.Text(e.Entity), rowKey, reason,
			s.d.jsonArg(raw), dedupe, at, at, e.Snapshot, e.Rule, event); err != nil {
			return fmt.Errorf("row %q of %s: %w", rowKey, e.Entity, err)
		}
	}
	return nil
}

// quarantineDedupe identifies the same bad row rejected for the same reason: by its
// key when it has one, otherwise by its raw content (encoding/json sorts map keys,
// so equal rows encode equally).
func quarantineDedupe(rowKey, reason string, raw []byte) string {
	h := sha256.New()
	if rowKey != "" {
		h.Write([]byte("key\x00" + rowKey))
	} else {
		h.Write([]byte("raw\x00"))
		h.Write(raw)
	}
	h.Write([]byte("\x00" + reason))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// resolveRows removes the quarantined bad rows (not failed notices) of rows that now
// map cleanly.
func (s *sqlStore) resolveRows(ctx context.Context, tx *sqlx.Tx, b Batch) error {
	if err := forEachIn(s.d, "id", b.ResolvedIDs, func(cond string, args []any) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM quarantine WHERE source = ? AND `+cond), append([]any{b.Source}, args...)...)
		return err
	}); err != nil {
		return err
	}
	return forEachIn(s.d, "row_key", b.Resolved, func(cond string, args []any) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM quarantine WHERE source = ? AND rule = '' AND `+cond),
			append([]any{b.Source}, args...)...)
		return err
	})
}

func (s *sqlStore) upsertCursor(ctx context.Context, tx *sqlx.Tx, b Batch) error {
	// A nil Position leaves the stored one alone: a batch may finish the initial sync
	// or record quarantine without moving the cursor.
	set := `position = excluded.position, `
	var pos any
	if b.Position != nil {
		pos = []byte(b.Position)
	} else {
		set = ``
	}
	var edge any
	if b.Edge != nil {
		edge = []byte(b.Edge)
		set += `edge = excluded.edge, `
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO cursors (source, position, initial_done, updated_at, edge) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (source) DO UPDATE SET `+set+`initial_done = (cursors.initial_done OR excluded.initial_done),
		updated_at = excluded.updated_at`), b.Source, pos, b.InitialDone, s.d.timeArg(b.At), edge)
	return err
}

// insertRows inserts rows with multi-row VALUES statements of at most maxParams
// parameters; head ends with "VALUES ", tail holds ON CONFLICT and RETURNING. When
// scan is set, the statement's RETURNING rows are passed to it.
//
// On SQLite, the full-size chunks of one call share a statement prepared once:
// compiling a statement of thousands of placeholders costs about as much as
// running it, and modernc's driver compiles every unprepared one anew.
func (s *sqlStore) insertRows(ctx context.Context, tx *sqlx.Tx, head, tail string, rows [][]any, scan func(*sqlx.Rows) error) error {
	if len(rows) == 0 {
		return nil
	}
	cols := len(rows[0])
	per := max(1, maxParams/cols)
	tuple := "(" + placeholders(cols) + ")"
	text := func(n int) string {
		var sb strings.Builder
		sb.Grow(len(head) + n*(len(tuple)+2) + len(tail))
		sb.WriteString(head)
		for i := range n {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(tuple)
		}
		sb.WriteString(tail)
		return s.q(sb.String())
	}
	reuse := s.d == sqliteDialect && len(rows) >= 2*per
	var full *sqlx.Stmt
	if reuse {
		var err error
		if full, err = tx.PreparexContext(ctx, text(per)); err != nil {
			return err
		}
		defer full.Close()
	}
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		args := make([]any, 0, len(chunk)*cols)
		for _, r := range chunk {
			args = append(args, r...)
		}
		var err error
		switch {
		case reuse && len(chunk) == per && scan == nil:
			_, err = full.ExecContext(ctx, args...)
		case reuse && len(chunk) == per:
			var rs *sqlx.Rows
			if rs, err = full.QueryxContext(ctx, args...); err == nil {
				err = scanRows(rs, scan)
			}
		case scan == nil:
			_, err = tx.ExecContext(ctx, text(len(chunk)), args...)
		default:
			err = queryEach(ctx, tx, text(len(chunk)), args, scan)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// queryEach runs a query and passes each row to fn, closing the rows before it
// returns so the connection is free for the next statement.
func queryEach(ctx context.Context, q sqlx.QueryerContext, query string, args []any, fn func(*sqlx.Rows) error) error {
	rows, err := q.QueryxContext(ctx, query, args...)
	if err != nil {
		return err
	}
	return scanRows(rows, fn)
}

// scanRows passes each of rows to fn and closes them.
func scanRows(rows *sqlx.Rows, fn func(*sqlx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
