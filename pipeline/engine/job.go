package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Job syncs one source: it reads batches after the stored cursor, maps them, detects
// changes against the snapshot and commits snapshot, events and cursor together.
type Job struct {
	Name   string
	Source pipeline.Source
	// Open builds the source when Source is nil; a source that cannot be opened (its
	// database is down) is retried on the next run instead of stopping the daemon.
	Open    func(ctx context.Context) (pipeline.Source, error)
	Map     *mapping.Mapping
	Agency  string
	Store   JobStore
	Router  *Router
	Clock   pipeline.Clock
	Logger  *slog.Logger
	Metrics *Metrics
	// OnCommit is called after each committed batch that produced events, to wake
	// the dispatcher without waiting for its poll.
	OnCommit func()
	// Progress, when set, is told the running totals after every batch.
	Progress func(RunStats)
	// Zone is the province's zone: the figures count days in it.
	Zone *time.Location
	// Deletes says how records that disappear become deleted events.
	Deletes DeletesConfig

	running atomic.Bool
	lastErr atomic.Pointer[error]
	cleared atomic.Bool // the store holds no error of this source
	columns []string    // what the source returned when the run began (Describer)
	// factsReady: the store's figures facts and timers of this source match the
	// mapping (checked once per process, under the source's lock; see facts.go).
	factsReady bool
	lastOK     atomic.Int64 // unix nanoseconds of the last run that succeeded
}

// RunStats counts what one run did.
type RunStats struct {
	Batches     int
	Rows        int
	Events      int
	Quarantined int
	Deleted     int  // records found gone (deleted events; see deletes.go)
	Snapshot    bool // the run was (part of) the first full sync
}

// ErrAlreadyRunning is returned when a run is asked for while one is in flight, in
// this process or in another replica sharing the store.
var ErrAlreadyRunning = errors.New("a run of this source is already in progress")

// lockSource takes the store-wide lock that keeps one reader per source across
// replicas (and keeps reprocessing from racing a running sync).
func (j *Job) lockSource(ctx context.Context) (store.Lock, error) {
	lock, ok, err := j.Store.TryLock(ctx, "source/"+j.Name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrAlreadyRunning
	}
	return lock, nil
}

// ErrLockLost stops a run whose store-wide lock was lost (its database session
// died): another replica may take the source over, and two readers must not commit.
var ErrLockLost = errors.New("lost the store-wide lock of this source; another replica may have taken over")

// ErrMissingColumns stops a source whose mapping reads columns the source does not
// return (a typo, or an agency renaming a column): reading on would turn every value
// of those columns into NULL and tell sinks the data was erased.
var ErrMissingColumns = errors.New("the mapping reads columns the source does not return")

// Run syncs until the source has nothing more. Cancelling ctx stops the run after the
// batch in flight has been committed: the batch's own work is not interrupted, so a
// shutdown never throws away rows that were already read. The run's outcome is
// recorded in the store (CursorState.LastError) for `state` and /readyz.
func (j *Job) Run(ctx context.Context) (RunStats, error) {
	if !j.running.CompareAndSwap(false, true) {
		return RunStats{}, ErrAlreadyRunning
	}
	defer j.running.Store(false)
	st, err := j.run(ctx)
	if errors.Is(err, ErrAlreadyRunning) {
		return st, err
	}
	j.record(context.WithoutCancel(ctx), err)
	return st, err
}

// record keeps the run's error where operators look: the store, a metric and the
// job itself (for /readyz).
func (j *Job) record(ctx context.Context, err error) {
	stopped := 0.0
	if errors.Is(err, ErrMissingColumns) {
		stopped = 1
	}
	j.Metrics.sourceStopped.WithLabelValues(j.Name).Set(stopped)
	msg := ""
	if err != nil {
		msg = err.Error()
		j.lastErr.Store(&err)
	} else {
		j.lastErr.Store(nil)
		j.lastOK.Store(j.Clock().UnixNano())
	}
	// A success is written once after a failure (or after start, when the store may
	// still hold an old failure), not on every tick.
	if msg == "" && j.cleared.Load() {
		return
	}
	if serr := j.Store.SetSourceError(ctx, j.Name, msg, j.Clock().UTC()); serr != nil {
		j.Logger.Error("cannot record the run's outcome", "source", j.Name, "err", serr)
		return
	}
	j.cleared.Store(msg == "")
}

// Stopped returns the error that stops the source until an operator fixes it (a
// missing column), or nil.
func (j *Job) Stopped() error {
	if p := j.lastErr.Load(); p != nil && errors.Is(*p, ErrMissingColumns) {
		return *p
	}
	return nil
}

func (j *Job) run(ctx context.Context) (RunStats, error) {
	var st RunStats
	start := time.Now()
	work := context.WithoutCancel(ctx)
	lock, err := j.lockSource(work)
	if err != nil {
		return st, err
	}
	defer lock.Unlock()
	fence := lock.Fence()
	if err := j.ensureFacts(work); err != nil {
		return st, fmt.Errorf("source %s: rebuild figures facts: %w", j.Name, err)
	}
	if j.Source == nil {
		src, err := j.Open(work)
		if err != nil {
			j.Metrics.syncErrors.WithLabelValues(j.Name).Inc()
			return st, fmt.Errorf("source %s: open: %w", j.Name, err)
		}
		j.Source = src
	}
	if err := j.checkColumns(work); err != nil {
		j.Metrics.syncErrors.WithLabelValues(j.Name).Inc()
		return st, fmt.Errorf("source %s: %w", j.Name, err)
	}

	cur, err := j.Store.Cursor(work, j.Name)
	if err != nil {
		return st, err
	}
	pos := cur.Position
	_, full := j.Source.(pipeline.FullSet)
	if full {
		pos = nil // read whole on every poll; no cursor is kept
	} else if rw, ok := j.Source.(pipeline.Rewinder); ok && pos != nil {
		pos = rw.Rewind(pos)
	}
	r := &runState{fence: &fence, initialDone: cur.InitialDone, edge: cur.Edge, full: full}
	// A group still being committed when the run fails is waited for before the
	// lock is given up: its commit must not outlive the run that holds the lock.
	defer j.settle(r) //nolint:errcheck // the run's own error is the one reported
	if full {
		if r.pass, err = j.startPass(work); err != nil {
			return st, fmt.Errorf("source %s: %w", j.Name, err)
		}
	}
	if r.clearQuarantine, err = j.Store.HasQuarantine(work, j.Name); err != nil {
		return st, err
	}
	if !cur.InitialDone && !full {
		stored, err := j.Store.HasSnapshot(work, j.Name)
		if err != nil {
			return st, err
		}
		if !stored {
			r.fresh = newKeyFilter(keyFilterStart)
			if bl, ok := j.Store.(bulkLoader); ok {
				if r.bulk, err = bl.BeginBulkLoad(work, j.Name); err != nil {
					return st, fmt.Errorf("source %s: %w", j.Name, err)
				}
			}
		}
	}
	st.Snapshot = !cur.InitialDone
	complete := false
	var ahead *readAhead
	// A read ahead never outlives the run: the source may be closed after it.
	defer func() { ahead.stop() }()
	for {
		if ctx.Err() != nil {
			err := j.flush(work, r)
			if serr := j.settle(r); err == nil {
				err = serr
			}
			if err != nil {
				return st, fmt.Errorf("source %s: %w", j.Name, err)
			}
			j.Logger.Info("run stopped between batches", "source", j.Name, "batches", st.Batches)
			break
		}
		if !lock.Held(work) {
			return st, fmt.Errorf("source %s: %w", j.Name, ErrLockLost)
		}
		rb := ahead.take(pos)
		ahead = nil
		if rb == nil {
			b := j.read(work, pos, nil)
			rb = &b
		}
		if rb.err == nil && !rb.done {
			// The source's next batch is read while this one is mapped, compared
			// and committed: the database answers on its own core meanwhile.
			ahead = j.readAhead(work, rb.next)
		}
		next, done, err := j.process(work, *rb, r, &st)
		if err == nil && done && !r.initialDone {
			err = j.finishFirstSync(work, next, r, &st)
		}
		if err != nil {
			j.Metrics.syncErrors.WithLabelValues(j.Name).Inc()
			if errors.Is(err, store.ErrFenced) {
				err = fmt.Errorf("%w: %w", ErrLockLost, err)
			}
			return st, fmt.Errorf("source %s: %w", j.Name, err)
		}
		pos = next
		if j.Progress != nil {
			j.Progress(st)
		}
		if done {
			complete = true
			break
		}
	}
	if full {
		if err := j.finishPass(work, r.pass, complete, j.deletes().AfterMisses, &fence, &st); err != nil {
			j.Metrics.syncErrors.WithLabelValues(j.Name).Inc()
			return st, fmt.Errorf("source %s: disappearance: %w", j.Name, err)
		}
	}
	j.Metrics.syncDuration.WithLabelValues(j.Name).Observe(time.Since(start).Seconds())
	j.Metrics.lastSync.WithLabelValues(j.Name).Set(float64(j.Clock().Unix()))
	return st, nil
}

// checkColumns asks a source that knows its columns whether it still returns every
// column the mapping reads. It runs before each run, so a column renamed while the
// daemon runs stops the source at its next run, before anything is committed.
func (j *Job) checkColumns(ctx context.Context) error {
	d, ok := j.Source.(pipeline.Describer)
	if !ok {
		return nil
	}
	have, err := d.Columns(ctx)
	if err != nil {
		return err
	}
	j.columns = have
	if err := j.checkDeleteColumn(have); err != nil {
		return err
	}
	return missingColumns(j.Map.CheckColumns(have))
}

func missingColumns(missing []mapping.MissingColumn) error {
	if len(missing) == 0 {
		return nil
	}
	msgs := make([]string, len(missing))
	for i, m := range missing {
		msgs[i] = m.Error()
	}
	return fmt.Errorf("%w (nothing is committed until the mapping or the source is fixed):\n  %s",
		ErrMissingColumns, strings.Join(msgs, "\n  "))
}

// runState is what the batches of one run share.
type runState struct {
	fence       *store.Fence
	initialDone bool
	// edge is the source's mark from the end of its first sync (pipeline.Horizon).
	edge pipeline.Position
	// clearQuarantine: the source has quarantined rows, so rows that now map
	// cleanly are matched against them.
	clearQuarantine bool
	// until, while the first sync finishes, is the mark its last rows are read to.
	until pipeline.Position
	// group gathers a first sync's batches into one commit (see firstSyncBatches).
	group *commitGroup
	// inflight is the group being committed while the next one is read (see
	// flush); committed delivers its commit's outcome.
	inflight  *commitGroup
	committed chan error
	// full: the source is a pipeline.FullSet, read whole by this run (pass).
	full bool
	pass *pass
	// fresh is set in a first sync that began with no snapshot record of the
	// source, and holds the keys this run has read. Only commits of a run holding
	// the source's lock write its snapshot (reprocessing and reconciling take the
	// lock too; timers and announcements do not write it), so a key this run has
	// not read is not in the store: it is not looked up, and Commit is told so
	// (SnapshotEntry.New).
	fresh *keyFilter
	// bulk is set while this run bulk-loads the snapshot (bulkLoader): every
	// row it commits is new, until a key read twice, or the first sync's end,
	// ends the load (endBulk).
	bulk bool
}

// A first sync commits up to firstSyncBatches source batches, and at most
// firstSyncRows rows, at once. Each commit rewrites every page of the snapshot's
// key index that its keys land on, and a first sync's keys land everywhere: five
// batches per commit write those pages a fifth as often. Two groups are held at
// once, one committing while the next is read (see flush), so a group is half
// of what one group alone could be for the same memory. Nothing is committed
// that a crash could not replay: the cursor moves with the group.
const (
	firstSyncBatches = 5
	firstSyncRows    = 5000
)

// commitGroup is the batches read but not yet committed, and their records, so a
// key read twice in one group is compared with its own earlier version.
type commitGroup struct {
	parts   []store.Batch
	batches int
	rows    int
	// entries point into the parts' snapshot entries, which no one appends to
	// once gathered.
	entries map[string]*store.SnapshotEntry
}

// finishFirstSync ends a first sync whose reader has caught up. Rows touched while
// it ran have moved past the reader's lag bound; with a pipeline.Horizon source they
// are read now, up to a mark, as part of the snapshot (the cursor stays where it is:
// the next run reads them again, unchanged), and the mark is kept so that a record
// first seen later but written before it is a snapshot record too. Only then is the
// first sync done.
func (j *Job) finishFirstSync(ctx context.Context, pos pipeline.Position, r *runState, st *RunStats) error {
	if r.bulk {
		if err := j.endBulk(ctx, r, "the first sync's end"); err != nil {
			return err
		}
	}
	b := store.Batch{Source: j.Name, InitialDone: true, At: j.Clock().UTC(), Fence: r.fence}
	if h, ok := j.Source.(pipeline.Horizon); ok {
		mark, err := h.Mark(ctx)
		if err != nil {
			return fmt.Errorf("mark the end of the first sync: %w", err)
		}
		r.until = mark
		for done := false; !done; {
			if pos, done, err = j.batch(ctx, pos, r, st); err != nil {
				return fmt.Errorf("read up to the end of the first sync: %w", err)
			}
		}
		r.until = nil
		b.Edge = mark
	}
	if err := j.Store.Commit(ctx, b); err != nil {
		return err
	}
	r.initialDone, r.edge = true, b.Edge
	return nil
}

// batch reads, maps and commits one batch: after pos under the source's own bound,
// or, while the first sync finishes (r.until set), up to that mark without moving
// the cursor.
func (j *Job) batch(ctx context.Context, pos pipeline.Position, r *runState, st *RunStats) (pipeline.Position, bool, error) {
	return j.process(ctx, j.read(ctx, pos, r.until), r, st)
}

// sourceBatch is what one read of the source returned.
type sourceBatch struct {
	got  collected
	next pipeline.Position
	done bool
	err  error
}

// read reads one batch after pos: under the source's own bound, or up to until.
func (j *Job) read(ctx context.Context, pos, until pipeline.Position) sourceBatch {
	var rb sourceBatch
	if until != nil {
		rb.next, rb.done, rb.err = j.Source.(pipeline.Horizon).ReadUntil(ctx, pos, until, &rb.got)
	} else {
		rb.next, rb.done, rb.err = j.Source.ReadBatch(ctx, pos, &rb.got)
	}
	return rb
}

// process maps, compares and commits (or gathers) one batch the source returned.
func (j *Job) process(ctx context.Context, rb sourceBatch, r *runState, st *RunStats) (pipeline.Position, bool, error) {
	got, next, done, err := rb.got, rb.next, rb.done, rb.err
	if err != nil {
		return nil, false, err
	}
	if r.until != nil && len(got.rows)+len(got.rejected) == 0 {
		return next, done, nil // nothing moved past the reader: nothing to commit
	}
	if len(got.rows) > 0 && j.columns != nil {
		// The columns were checked when the run began; a row without one of them
		// means the source changed under the run.
		var absent []string
		for _, c := range j.columns {
			if _, ok := got.rows[0][c]; !ok {
				absent = append(absent, c)
			}
		}
		if len(absent) > 0 {
			if err := missingColumns(j.Map.CheckColumns(slices.Collect(maps.Keys(got.rows[0])))); err != nil {
				return nil, false, err
			}
		}
	}
	rows := got.rows
	now := j.Clock().UTC()
	snapshotMode := !r.initialDone
	b := store.Batch{Source: j.Name, Position: next, At: now, Fence: r.fence}
	if r.until != nil || r.full {
		b.Position = nil // read again by the next run (under the lag bound, or whole)
	}
	rows, dels := j.softDeletes(rows, r, snapshotMode)
	for _, rj := range got.rejected {
		j.seeRow(r.pass, rj.row)
		b.Quarantine = append(b.Quarantine, store.QuarantineEntry{
			Source: j.Name, Entity: j.Map.Entity, RowKey: j.Map.RowKey(rj.row),
			Reason: rj.reason.Error(), Raw: rawRow(rj.row), FirstAt: now, LastAt: now, Snapshot: snapshotMode,
		})
	}

	// Outside a fresh first sync every record is looked up: the look-up, mostly
	// the store reading pages, runs while the rows are mapped, on their keys as
	// Apply will compute them.
	var early chan lookedUp
	if r.fresh == nil && (len(rows) > 0 || len(dels) > 0) {
		early = j.lookUpEarly(ctx, rows, dels)
		// Not left running past the batch (all rows rejected, or a failure).
		defer func() {
			if early != nil {
				<-early
			}
		}()
	}
	records := make([]pipeline.Record, 0, len(rows))
	var recRows []pipeline.Row
	var badFields []string
	mapped := j.apply(rows)
	di := 0 // the soft deletes placed among the records so far
	for i, row := range rows {
		for ; di < len(dels) && dels[di].at == i; di++ {
			dels[di].at = len(records)
		}
		rec, err := mapped[i].rec, mapped[i].err
		if err != nil {
			var re *mapping.RowError
			if !errors.As(err, &re) {
				return nil, false, err
			}
			for _, fe := range re.Fields {
				if !slices.Contains(badFields, fe.Field) {
					badFields = append(badFields, fe.Field)
				}
			}
			b.Quarantine = append(b.Quarantine, store.QuarantineEntry{
				Source: j.Name, Entity: j.Map.Entity, RowKey: j.Map.RowKey(row),
				Reason: re.Error(), Raw: rawRow(row), FirstAt: now, LastAt: now, Snapshot: snapshotMode,
			})
			j.seeRow(r.pass, row)
			continue
		}
		if r.pass != nil {
			r.pass.see(rec.Key)
		}
		for _, f := range rec.Dropped {
			j.Metrics.dropped.WithLabelValues(j.Name, f).Inc()
		}
		if r.clearQuarantine {
			b.Resolved = append(b.Resolved, j.Map.RowKey(row))
		}
		records = append(records, rec)
		recRows = append(recRows, row)
	}
	for ; di < len(dels); di++ {
		dels[di].at = len(records)
	}

	if len(records) > 0 || len(dels) > 0 {
		keys := make([]string, len(records), len(records)+len(dels))
		look := keys
		if r.fresh != nil {
			look = nil
			// A deleted row's record is live only if a row of it was read before:
			// earlier in this run (the filter is asked before this batch's keys
			// join it), or earlier in this batch (detect keeps that state).
			for _, d := range dels {
				if r.fresh.has(d.key) {
					look = append(look, d.key)
				}
			}
		}
		for i, rec := range records {
			keys[i] = rec.Key
			if r.fresh != nil && r.fresh.seen(rec.Key) {
				look = append(look, rec.Key) // read before in this run (or a hash collision)
			}
		}
		for _, d := range dels {
			keys = append(keys, d.key)
		}
		if r.bulk && len(look) > 0 {
			// A key read before is looked up, through the key index.
			if err := j.endBulk(ctx, r, "a key read twice"); err != nil {
				return nil, false, err
			}
		}
		var snap map[string]store.SnapshotEntry
		if early != nil {
			wait := early
			early = nil
			if snap, err = j.lookedUp(ctx, wait, keys); err != nil {
				return nil, false, err
			}
		} else if len(look) > 0 { // a fresh first sync's batch of keys never read before asks nothing
			if snap, err = j.Store.Snapshot(ctx, j.Name, j.Map.Entity, look); err != nil {
				return nil, false, err
			}
		}
		if snap == nil {
			// Nothing looked up: detect adds every record it compares, so the map is
			// sized for them rather than grown by doubling.
			snap = make(map[string]store.SnapshotEntry, len(records))
		}
		r.overlay(keys, snap)
		j.detect(records, dels, snap, j.snapshotFor(snapshotMode, r.edge, recRows), now, &b)
	}

	// A full-set pass counts misses per commit; it keeps its own commits.
	grouped := snapshotMode && r.until == nil && !r.full
	if grouped {
		j.gather(r, b, len(rows)+len(got.rejected))
		if r.group.batches >= firstSyncBatches || r.group.rows >= firstSyncRows || done {
			if err := j.flush(ctx, r); err != nil {
				return nil, false, err
			}
		}
		if done {
			// The first sync's last commit, or the run's end, comes next: every
			// group before it must be in the store.
			if err := j.settle(r); err != nil {
				return nil, false, err
			}
		}
	} else {
		if err := j.flush(ctx, r); err != nil {
			return nil, false, err
		}
		if err := j.settle(r); err != nil {
			return nil, false, err
		}
		if err := j.Store.Commit(ctx, b); err != nil {
			return nil, false, err
		}
		if len(b.Events) > 0 && j.OnCommit != nil {
			j.OnCommit()
		}
	}
	if r.pass != nil {
		if err := j.flushSeen(ctx, r.pass); err != nil {
			return nil, false, err
		}
	}
	if len(b.Quarantine) > 0 {
		r.clearQuarantine = true
	}
	st.Batches++
	st.Rows += len(rows) + len(got.rejected)
	st.Events += len(b.Events)
	st.Quarantined += len(b.Quarantine)
	j.Metrics.rowsRead.WithLabelValues(j.Name).Add(float64(len(rows) + len(got.rejected)))
	j.Metrics.quarantined.WithLabelValues(j.Name).Add(float64(len(b.Quarantine)))
	for _, e := range b.Events {
		j.Metrics.events.WithLabelValues(j.Name, e.Event.Type).Inc()
		if e.Event.Type == pipeline.EventDeleted {
			st.Deleted++ // soft deletes
		}
	}
	if len(b.Quarantine) > 0 {
		// Reasons can quote citizen data; the log names only the fields.
		j.Logger.Warn("rows quarantined; see 'egov-bridge quarantine'", "source", j.Name, "count", len(b.Quarantine), "fields", badFields)
	}
	return next, done, nil
}

// mappedRow is one row's Apply.
type mappedRow struct {
	rec pipeline.Record
	err error
}

// parallelMapRows is the batch size from which apply maps on two cores: mapping
// costs tens of microseconds a row, a goroutine far less.
const parallelMapRows = 256

// apply maps the rows, the second half in a goroutine of its own (a Mapping is
// safe for concurrent use), so an incremental poll's mapping takes half the
// time while the other core is free; the outcomes keep the rows' order.
func (j *Job) apply(rows []pipeline.Row) []mappedRow {
	out := make([]mappedRow, len(rows))
	mapAll := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i].rec, out[i].err = j.Map.Apply(rows[i], j.Agency)
		}
	}
	if len(rows) < parallelMapRows {
		mapAll(0, len(rows))
		return out
	}
	half := len(rows) / 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		mapAll(half, len(rows))
	}()
	mapAll(0, half)
	<-done
	return out
}

// lookedUp is an early look-up's outcome: the keys asked for and what the store
// holds of them.
type lookedUp struct {
	asked map[string]bool
	snap  map[string]store.SnapshotEntry
	err   error
}

// lookUpEarly starts the snapshot look-up of the rows' keys (mapping.Key), and
// of the soft-deleted rows' (taken out of rows), and
// delivers it on the returned channel. Every batch that starts one waits for it
// (lookedUp), or drains it when mapping fails.
func (j *Job) lookUpEarly(ctx context.Context, rows []pipeline.Row, dels []softDelete) chan lookedUp {
	out := make(chan lookedUp, 1)
	keys := make([]string, 0, len(rows)+len(dels))
	asked := make(map[string]bool, len(rows)+len(dels))
	for _, row := range rows {
		if k, ok := j.Map.Key(row); ok && !asked[k] {
			asked[k] = true
			keys = append(keys, k)
		}
	}
	for _, d := range dels {
		if !asked[d.key] {
			asked[d.key] = true
			keys = append(keys, d.key)
		}
	}
	go func() {
		l := lookedUp{asked: asked, snap: map[string]store.SnapshotEntry{}}
		if len(keys) > 0 {
			l.snap, l.err = j.Store.Snapshot(ctx, j.Name, j.Map.Entity, keys)
		}
		out <- l
	}()
	return out
}

// lookedUp waits for an early look-up and completes it with the keys it did not
// ask for (a key Apply computed otherwise than Key: never expected, but then
// looked up here rather than taken for new).
func (j *Job) lookedUp(ctx context.Context, early chan lookedUp, keys []string) (map[string]store.SnapshotEntry, error) {
	l := <-early
	if l.err != nil {
		return nil, l.err
	}
	var missed []string
	for _, k := range keys {
		if !l.asked[k] {
			missed = append(missed, k)
		}
	}
	if len(missed) > 0 {
		more, err := j.Store.Snapshot(ctx, j.Name, j.Map.Entity, missed)
		if err != nil {
			return nil, err
		}
		maps.Copy(l.snap, more)
	}
	return l.snap, nil
}

// gather adds a first sync's batch to the run's commit group.
func (j *Job) gather(r *runState, b store.Batch, rows int) {
	if r.group == nil {
		r.group = &commitGroup{parts: make([]store.Batch, 0, firstSyncBatches), entries: make(map[string]*store.SnapshotEntry, firstSyncRows)}
	}
	g := r.group
	g.batches++
	g.rows += rows
	g.parts = append(g.parts, b)
	for i := range b.Snapshot {
		g.entries[b.Snapshot[i].Key] = &b.Snapshot[i]
	}
}

// batch joins the group's parts into one commit, each list allocated once at its
// size (appending batch after batch copied them over and over). The cursor and
// time are the last part's.
func (g *commitGroup) batch() store.Batch {
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	return store.Batch{
		Source: first.Source, Fence: first.Fence, Position: last.Position, At: last.At,
		Snapshot:    joined(g.parts, func(b *store.Batch) []store.SnapshotEntry { return b.Snapshot }),
		Events:      joined(g.parts, func(b *store.Batch) []store.OutboxEvent { return b.Events }),
		Quarantine:  joined(g.parts, func(b *store.Batch) []store.QuarantineEntry { return b.Quarantine }),
		Resolved:    joined(g.parts, func(b *store.Batch) []string { return b.Resolved }),
		Facts:       joined(g.parts, func(b *store.Batch) []store.Fact { return b.Facts }),
		Timers:      joined(g.parts, func(b *store.Batch) []store.TimerArm { return b.Timers }),
		TimersFired: joined(g.parts, func(b *store.Batch) []store.TimerKey { return b.TimersFired }),
		Misses:      joined(g.parts, func(b *store.Batch) []store.MissCount { return b.Misses }),
	}
}

func joined[T any](parts []store.Batch, list func(*store.Batch) []T) []T {
	n := 0
	for i := range parts {
		n += len(list(&parts[i]))
	}
	if n == 0 {
		return nil
	}
	out := make([]T, 0, n)
	for i := range parts {
		out = append(out, list(&parts[i])...)
	}
	return out
}

// lastBy keeps the last of the items that share a key, in order.
func lastBy[T any](items []T, key func(T) [3]string) []T {
	last := make(map[[3]string]int, len(items))
	for i, it := range items {
		last[key(it)] = i
	}
	if len(last) == len(items) {
		return items
	}
	out := items[:0]
	for i, it := range items {
		if last[key(it)] == i {
			out = append(out, it)
		}
	}
	return out
}

// flush hands the run's commit group, if any, to a commit of its own, once the
// group before it is committed: the next batches are read, mapped and compared on
// the other core while this one is written, and at most one group is in flight,
// so groups commit in the order they were read and a failed commit stops the run
// before anything after it is committed.
func (j *Job) flush(ctx context.Context, r *runState) error {
	if err := j.settle(r); err != nil {
		return err
	}
	g := r.group
	if g == nil {
		return nil
	}
	r.group = nil
	b := g.batch()
	// A record read twice in the group keeps its last state, as one commit per
	// batch would have left it.
	b.Snapshot = lastPerKey(b.Snapshot)
	b.Facts = lastBy(b.Facts, func(f store.Fact) [3]string { return [3]string{f.Entity, f.Key} })
	b.Timers = lastBy(b.Timers, func(t store.TimerArm) [3]string { return [3]string{t.Entity, t.Key, t.Rule} })
	if r.committed == nil {
		r.committed = make(chan error, 1)
	}
	r.inflight = g
	go func() {
		err := j.Store.Commit(ctx, b)
		if err == nil && len(b.Events) > 0 && j.OnCommit != nil {
			j.OnCommit()
		}
		r.committed <- err
	}()
	return nil
}

// endBulk ends this run's bulk load: the store builds the indexes the load left
// out. Only then can a key be looked up. The groups in flight and being gathered
// are all new rows still: whether their commits land before the indexes are
// built or after, they are ordinary ones, and until they land overlay stands
// for them.
func (j *Job) endBulk(ctx context.Context, r *runState, why string) error {
	start := time.Now()
	if _, err := j.Store.(bulkLoader).EndBulkLoad(ctx); err != nil {
		return err
	}
	r.bulk = false
	j.Logger.Info("snapshot indexes built after a bulk load", "source", j.Name, "at", why, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// settle waits for the group in flight, if any, and returns its commit's error.
// Until it returns, that group's entries stand for the store (see overlay).
func (j *Job) settle(r *runState) error {
	if r.inflight == nil {
		return nil
	}
	err := <-r.committed
	r.inflight = nil
	return err
}

// overlay puts over what the store returned for the records' keys what this run
// has read but not seen committed: the group in flight, then the group being
// gathered, so a key read again is compared with its latest version. A look-up
// may run before or after the flight's commit lands; either way the group's own
// entry is that version. It will be in the store before the next group commits,
// so it is not New there.
func (r *runState) overlay(keys []string, snap map[string]store.SnapshotEntry) {
	for _, g := range []*commitGroup{r.inflight, r.group} {
		if g == nil {
			continue
		}
		for _, k := range keys {
			if e, ok := g.entries[k]; ok {
				v := *e
				if g == r.inflight {
					v.New = false
				}
				snap[k] = v
			}
		}
	}
}

// snapshotFor says, per record, whether its change is part of the snapshot: every
// change during the first sync, and afterwards a record new to the store whose row
// was written before the mark taken when the first sync ended (it existed before
// the sync finished, and was touched while it ran). A change of a known record
// after the first sync is news.
func (j *Job) snapshotFor(snapshotMode bool, edge pipeline.Position, rows []pipeline.Row) func(i int, known bool) bool {
	h, ok := j.Source.(pipeline.Horizon)
	if snapshotMode || edge == nil || !ok {
		return func(int, bool) bool { return snapshotMode }
	}
	return func(i int, known bool) bool { return !known && h.Before(edge, rows[i]) }
}

// stored reads what the snapshot holds for the records' keys; absent keys are
// absent from the map.
func (j *Job) stored(ctx context.Context, records []pipeline.Record) (map[string]store.SnapshotEntry, error) {
	keys := make([]string, len(records))
	for i, r := range records {
		keys[i] = r.Key
	}
	return j.Store.Snapshot(ctx, j.Name, j.Map.Entity, keys)
}

// detect compares records with their snapshot entries and appends events and
// snapshot updates to b. A key seen twice in one batch is compared with its own
// earlier version, so the second occurrence is not lost or doubled. dels, the
// batch's soft-deleted rows, are taken in their place among the records (in
// order of at), so each row of a key is compared with the state the row read
// before it left: a deletion and a live row of one record give events one
// version apart, in the order read.
func (j *Job) detect(records []pipeline.Record, dels []softDelete, snap map[string]store.SnapshotEntry, inSnapshot func(i int, known bool) bool, now time.Time, b *store.Batch) {
	var epoch int64
	if j.Store != nil { // nil in a preview without a store: nothing was ever stored
		epoch = j.Store.Epoch()
	}
	// Every record read is new or changed in a first sync: one snapshot entry,
	// one event and one fact each, so the lists are grown once.
	b.Snapshot = slices.Grow(b.Snapshot, len(records))
	b.Events = slices.Grow(b.Events, len(records))
	if j.Map.HasFigures() {
		b.Facts = slices.Grow(b.Facts, len(records))
	}
	routes := routeCache{router: j.Router}
	seenDay := j.factDay(now)
	di := 0
	for i, rec := range records {
		for ; di < len(dels) && dels[di].at == i; di++ {
			j.softDeleteIn(dels[di], snap, now, b)
		}
		hash := rec.Hash()
		var prior *pipeline.Prior
		prev, known := snap[rec.Key]
		if known {
			if prev.Hash == hash && !prev.Deleted {
				continue
			}
			// Stored values come back through JSON; type them like fresh ones.
			prior = &pipeline.Prior{Hash: prev.Hash, Version: prev.Version, Fields: j.Map.Typed(prev.Fields), Deleted: prev.Deleted}
		}
		ev := pipeline.Diff(j.Name, prior, rec, hash, inSnapshot(i, prior != nil), now)
		ev.Epoch = epoch
		// snap holds what the store returned and what this run has not committed
		// yet; a key in neither, or only in the latter, is not in the store.
		entry := store.SnapshotEntry{Entity: rec.Entity, Key: rec.Key, Hash: hash, Version: ev.Version, Fields: rec.Fields,
			New: !known || prev.New}
		snap[rec.Key] = entry
		b.Snapshot = append(b.Snapshot, entry)
		j.factsOfSeen(rec, prior, ev.Snapshot, now, seenDay, b)
		b.Events = append(b.Events, store.OutboxEvent{Event: ev, Sinks: routes.sinks(ev)})
		fired := j.Map.Fire(ev)
		j.countTooOld(fired)
		for _, re := range fired.Events {
			re.Epoch = epoch
			b.Events = append(b.Events, store.OutboxEvent{Event: re, Sinks: routes.sinks(re)})
		}
		for _, f := range fired.Failed {
			// The record is stored; only the rule could not be evaluated. The operator
			// sees the failed notice in quarantine and retries it after the fix.
			b.Quarantine = append(b.Quarantine, j.failedNotice(ev, f.Rule, f, now, now))
		}
	}
	for ; di < len(dels); di++ {
		j.softDeleteIn(dels[di], snap, now, b)
	}
	// A key updated twice in one batch leaves two snapshot rows; keep the last.
	b.Snapshot = lastPerKey(b.Snapshot)
}

func lastPerKey(entries []store.SnapshotEntry) []store.SnapshotEntry {
	if len(entries) < 2 {
		return entries
	}
	last := make(map[string]int, len(entries))
	for i, e := range entries {
		last[e.Key] = i
	}
	if len(last) == len(entries) {
		return entries
	}
	out := entries[:0]
	for i, e := range entries {
		if last[e.Key] == i {
			out = append(out, e)
		}
	}
	return out
}

// collected is the Emitter a batch reads into.
type collected struct {
	rows     []pipeline.Row
	rejected []rejectedRow
}

type rejectedRow struct {
	row    pipeline.Row
	reason error
}

func (c *collected) Emit(r pipeline.Row) error {
	c.rows = append(c.rows, r)
	return nil
}

func (c *collected) Reject(r pipeline.Row, reason error) error {
	c.rejected = append(c.rejected, rejectedRow{r, reason})
	return nil
}

func rawRow(row pipeline.Row) map[string]string { return row.Text() }

// failedNotice records a rule that failed at run time on ev, to be retried by
// `quarantine reprocess` once the mapping is fixed.
func (j *Job) failedNotice(ev *pipeline.Event, rule string, err error, firstAt, now time.Time) store.QuarantineEntry {
	return store.QuarantineEntry{
		Source: j.Name, Entity: ev.Entity, RowKey: ev.Key, Reason: err.Error(),
		Raw: rawRow(pipeline.Row(ev.After)), FirstAt: firstAt, LastAt: now, Rule: rule, Event: ev,
	}
}

// fireRule evaluates one rule on a change again.
func (j *Job) fireRule(ev *pipeline.Event, rule string) ([]*pipeline.Event, error) {
	fired := j.Map.FireRule(ev, rule)
	j.countTooOld(fired)
	if len(fired.Failed) > 0 {
		return nil, fired.Failed[0]
	}
	return fired.Events, nil
}

// countTooOld counts the notices that rules held back because the change was older
// than their max_age: the record and the dashboards are updated, no citizen hears.
func (j *Job) countTooOld(f mapping.Firing) {
	for _, rule := range f.TooOld {
		j.Metrics.noticesSkipped.WithLabelValues(j.Name, rule, "too_old").Inc()
	}
}

// readAhead is the source's next batch, being read in a goroutine of its own.
type readAhead struct {
	pos    pipeline.Position
	cancel context.CancelFunc
	done   chan sourceBatch
}

// readAhead starts reading the batch after pos. The source reads one batch at a
// time as before; only the engine's work on the previous batch overlaps it.
func (j *Job) readAhead(ctx context.Context, pos pipeline.Position) *readAhead {
	ctx, cancel := context.WithCancel(ctx)
	a := &readAhead{pos: pos, cancel: cancel, done: make(chan sourceBatch, 1)}
	go func() { a.done <- j.read(ctx, pos, nil) }()
	return a
}

// take returns the batch read ahead when it starts at pos, after it has been
// read; nil when there is none (or it was read from elsewhere).
func (a *readAhead) take(pos pipeline.Position) *sourceBatch {
	if a == nil {
		return nil
	}
	rb := <-a.done
	a.cancel()
	if !bytes.Equal(a.pos, pos) {
		return nil
	}
	return &rb
}

// stop abandons a read ahead and waits for it to end.
func (a *readAhead) stop() {
	if a == nil {
		return
	}
	a.cancel()
	<-a.done
}
