package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// A record that disappears from its source becomes a deleted event in one of three
// ways (decision 0017):
//
//   - a full-set source (pipeline.FullSet: a feed, a file) is read whole on every
//     poll; a record missing from DeletesConfig.AfterMisses consecutive complete,
//     successful polls is deleted;
//   - a source that can list its keys (pipeline.KeyLister: sql) is reconciled on
//     its own schedule: every key is listed, page by page, and a record whose row
//     is gone is deleted at once;
//   - a soft-delete column turns a row into a deleted event for its record.
//
// Both passes mark the record keys they read as seen in the store and then sweep
// the live records they did not see, a page at a time: memory holds one page, not
// the key set. A pass that fails, is stopped, or meets a row it cannot identify
// (the key fields do not map) counts nothing: a page in an unknown shape must
// never read as "everything was cancelled".

// ErrUnidentified stops a pass from counting anything missing: some rows could
// not be matched to a record.
var ErrUnidentified = errors.New("rows whose key cannot be read")

// pass is one full read of a source that may lead to deletions.
type pass struct {
	token        string   // names this pass's seen keys in the store
	keys         []string // seen since the last flush to the store
	unidentified int      // rows that could not be matched to a record
}

func (p *pass) see(key string) { p.keys = append(p.keys, key) }

// flushSeen marks the keys the pass has seen so far in the store.
func (j *Job) flushSeen(ctx context.Context, p *pass) error {
	if len(p.keys) == 0 {
		return nil
	}
	if err := j.Store.MarkSeen(ctx, j.Name, j.Map.Entity, p.token, p.keys); err != nil {
		return err
	}
	p.keys = p.keys[:0]
	return nil
}

// deletes returns the job's deletes settings with defaults filled in.
func (j *Job) deletes() DeletesConfig {
	c := j.Deletes
	c.applyDefaults()
	return c
}

// seeRow records that a row was read: its record key, when its key fields map.
func (j *Job) seeRow(p *pass, row pipeline.Row) {
	if p == nil {
		return
	}
	if key, ok := j.Map.Key(row); ok {
		p.see(key)
		return
	}
	p.unidentified++
}

// startPass begins a pass, under the source's lock: the seen keys of earlier
// passes that never finished are dropped. The pass's own token keeps a process
// that lost the lock mid-pass from touching this pass's keys.
func (j *Job) startPass(ctx context.Context) (*pass, error) {
	if err := j.Store.ForgetSeen(ctx, j.Name, j.Map.Entity, ""); err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &pass{token: hex.EncodeToString(b[:])}, nil
}

// finishPass walks the source's live records, a page at a time, once a complete
// pass has read the source: a record the pass saw has its miss count removed (it
// is back), one it did not see is counted missing, and one missed threshold times
// in a row is deleted. Each page's counts and deleted events are one commit. The
// pass is then forgotten. complete is false when the read was cut short: then
// nothing is counted.
func (j *Job) finishPass(ctx context.Context, p *pass, complete bool, threshold int, fence *store.Fence, st *RunStats) error {
	defer func() {
		if err := j.Store.ForgetSeen(context.WithoutCancel(ctx), j.Name, j.Map.Entity, p.token); err != nil {
			j.Logger.Warn("cannot forget the keys of a finished pass; the next pass clears them", "source", j.Name, "err", err)
		}
	}()
	if !complete {
		return nil
	}
	if p.unidentified > 0 {
		return fmt.Errorf("%d %w (their key fields do not map; see quarantine): nothing is counted missing in this pass",
			p.unidentified, ErrUnidentified)
	}
	if err := j.flushSeen(ctx, p); err != nil {
		return err
	}
	cfg := j.deletes()
	after := ""
	for {
		page, err := j.Store.Walk(ctx, j.Name, j.Map.Entity, p.token, after, cfg.PageSize)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].Key
		if err := j.sweep(ctx, page, threshold, fence, st); err != nil {
			return err
		}
		if len(page) < cfg.PageSize {
			return nil
		}
	}
}

// sweep settles one page of live records: counts removed for those seen, counts
// raised for those missed, deleted events for those missed threshold times.
func (j *Job) sweep(ctx context.Context, page []store.KeyState, threshold int, fence *store.Fence, st *RunStats) error {
	var missed []string
	now := j.Clock().UTC()
	b := store.Batch{Source: j.Name, At: now, Fence: fence}
	for _, k := range page {
		switch {
		case k.Seen && (k.Misses > 0 || k.Ended):
			b.Misses = append(b.Misses, store.MissCount{Entity: j.Map.Entity, Key: k.Key}) // back: count again from zero
		case !k.Seen && !k.Ended:
			missed = append(missed, k.Key)
		}
	}
	if len(missed) > 0 {
		snap, err := j.Store.Snapshot(ctx, j.Name, j.Map.Entity, missed)
		if err != nil {
			return err
		}
		cfg := j.deletes()
		for _, k := range page {
			prev, ok := snap[k.Key]
			if k.Seen || k.Ended || !ok || prev.Deleted {
				continue
			}
			fields := j.Map.Typed(prev.Fields)
			miss := store.MissCount{Entity: j.Map.Entity, Key: k.Key}
			if ended(fields, cfg.UnlessPast, now) {
				miss.Ended = true
				b.Misses = append(b.Misses, miss)
				continue
			}
			if miss.Misses = k.Misses + 1; miss.Misses < threshold {
				b.Misses = append(b.Misses, miss)
				continue
			}
			miss.Misses = 0 // deleted: the count is done with
			b.Misses = append(b.Misses, miss)
			j.queueDeletion(prev, fields, false, now, &b)
		}
	}
	return j.commitDeletions(ctx, b, st)
}

// ended reports whether the record's end-time field has passed.
func ended(fields map[string]any, field string, now time.Time) bool {
	if field == "" {
		return false
	}
	t, ok := fields[field].(time.Time)
	return ok && !t.After(now)
}

// queueDeletion appends the deleted event of a stored record to b, with the rule
// events it fires, and marks its snapshot entry deleted (the fields are kept:
// they are the record as last known), which it returns. A record this run has not
// committed yet (New) is still not in the store.
func (j *Job) queueDeletion(prev store.SnapshotEntry, fields map[string]any, snapshot bool, now time.Time, b *store.Batch) store.SnapshotEntry {
	prior := pipeline.Prior{Hash: prev.Hash, Version: prev.Version, Fields: fields}
	ev := pipeline.Deletion(j.Name, j.Map.Entity, prev.Key, j.Map.Agency(fields, j.Agency), prior, now)
	ev.Snapshot = snapshot
	ev.Epoch = j.Store.Epoch()
	entry := store.SnapshotEntry{
		Entity: j.Map.Entity, Key: prev.Key, Hash: prev.Hash, Version: ev.Version, Fields: fields, Deleted: true, New: prev.New,
	}
	b.Snapshot = append(b.Snapshot, entry)
	b.Facts = append(b.Facts, store.Fact{Entity: j.Map.Entity, Key: prev.Key, Deleted: true}) // out of the figures
	b.Events = append(b.Events, store.OutboxEvent{Event: ev, Sinks: j.Router.Sinks(ev)})
	fired := j.Map.Fire(ev)
	j.countTooOld(fired)
	for _, re := range fired.Events {
		re.Epoch = ev.Epoch
		b.Events = append(b.Events, store.OutboxEvent{Event: re, Sinks: j.Router.Sinks(re)})
	}
	for _, f := range fired.Failed {
		b.Quarantine = append(b.Quarantine, j.failedNotice(ev, f.Rule, f, now, now))
	}
	return entry
}

func (j *Job) commitDeletions(ctx context.Context, b store.Batch, st *RunStats) error {
	if len(b.Misses) == 0 && len(b.Events) == 0 {
		return nil
	}
	if err := j.Store.Commit(ctx, b); err != nil {
		return err
	}
	st.Events += len(b.Events)
	for _, e := range b.Events {
		j.Metrics.events.WithLabelValues(j.Name, e.Event.Type).Inc()
		if e.Event.Type == pipeline.EventDeleted {
			st.Deleted++
		}
	}
	if len(b.Events) > 0 && j.OnCommit != nil {
		j.OnCommit()
	}
	return nil
}

// softDelete is a row whose soft-delete column says deleted, in its place among
// the rows read: before the at-th of the batch's other rows (process turns this
// into the at-th record). A key's rows are compared in the order read, each with
// the state the row before it left, so a batch, or a first sync's commit group,
// may hold a record's deleted row and its live rows in any order.
type softDelete struct {
	at  int
	key string
	// snapshot: the deletion is part of the snapshot (a first sync's). The
	// record deleted is a known one, so it is news once the first sync is done.
	snapshot bool
}

// softDeletes takes the rows whose soft-delete column says deleted out of rows,
// each noted with its place among the rows kept. Nothing is looked up here:
// detect deletes each one's record, if live, in its turn.
func (j *Job) softDeletes(rows []pipeline.Row, r *runState, snapshot bool) ([]pipeline.Row, []softDelete) {
	cfg := &j.Deletes
	if cfg.Column == "" {
		return rows, nil
	}
	p := r.pass
	var kept []pipeline.Row
	var dels []softDelete
	for i, row := range rows {
		if !cfg.softDeleted(row) {
			if kept != nil {
				kept = append(kept, row)
			}
			continue
		}
		if kept == nil {
			kept = append(make([]pipeline.Row, 0, len(rows)-1), rows[:i]...)
		}
		key, ok := j.Map.Key(row)
		if !ok {
			if p != nil {
				p.unidentified++
			}
			continue
		}
		if p != nil {
			p.see(key)
		}
		dels = append(dels, softDelete{at: len(kept), key: key, snapshot: snapshot})
	}
	if kept == nil {
		return rows, nil
	}
	return kept, dels
}

// softDeleteIn queues the deleted event of a soft-deleted row's record when snap,
// the state the rows before it left, holds the record live. A row deleted before
// its record was ever read says nothing.
func (j *Job) softDeleteIn(d softDelete, snap map[string]store.SnapshotEntry, now time.Time, b *store.Batch) {
	prev, ok := snap[d.key]
	if !ok || prev.Deleted {
		return
	}
	snap[d.key] = j.queueDeletion(prev, j.Map.Typed(prev.Fields), d.snapshot, now, b)
}

// checkDeleteColumn stops a source whose soft-delete column it does not return:
// every row would otherwise read as not deleted.
func (j *Job) checkDeleteColumn(have []string) error {
	col := j.Deletes.Column
	if col == "" || slices.Contains(have, col) {
		return nil
	}
	return fmt.Errorf("%w (nothing is committed until the config or the source is fixed):\n  deletes.column: the source returns no column %q",
		ErrMissingColumns, col)
}
