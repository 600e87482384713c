package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	Store   store.Store
	Router  *Router
	Clock   pipeline.Clock
	Logger  *slog.Logger
	Metrics *Metrics
	// OnCommit is called after each committed batch that produced events, to wake
	// the dispatcher without waiting for its poll.
	OnCommit func()
	// Progress, when set, is told the running totals after every batch.
	Progress func(RunStats)

	running atomic.Bool
}

// RunStats counts what one run did.
type RunStats struct {
	Batches     int
	Rows        int
	Events      int
	Quarantined int
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

// Run syncs until the source has nothing more. Cancelling ctx stops the run after the
// batch in flight has been committed: the batch's own work is not interrupted, so a
// shutdown never throws away rows that were already read.
func (j *Job) Run(ctx context.Context) (RunStats, error) {
	var st RunStats
	if !j.running.CompareAndSwap(false, true) {
		return st, ErrAlreadyRunning
	}
	defer j.running.Store(false)
	start := time.Now()
	work := context.WithoutCancel(ctx)
	lock, err := j.lockSource(work)
	if err != nil {
		return st, err
	}
	defer lock.Unlock()
	if j.Source == nil {
		src, err := j.Open(work)
		if err != nil {
			j.Metrics.syncErrors.WithLabelValues(j.Name).Inc()
			return st, fmt.Errorf("source %s: open: %w", j.Name, err)
		}
		j.Source = src
	}

	cur, err := j.Store.Cursor(work, j.Name)
	if err != nil {
		return st, err
	}
	pos := cur.Position
	if rw, ok := j.Source.(pipeline.Rewinder); ok && pos != nil {
		pos = rw.Rewind(pos)
	}
	st.Snapshot = !cur.InitialDone
	for {
		if ctx.Err() != nil {
			j.Logger.Info("run stopped between batches", "source", j.Name, "batches", st.Batches)
			break
		}
		if !lock.Held(work) {
			return st, fmt.Errorf("source %s: %w", j.Name, ErrLockLost)
		}
		next, done, err := j.batch(work, pos, cur.InitialDone, &st)
		if err != nil {
			j.Metrics.syncErrors.WithLabelValues(j.Name).Inc()
			return st, fmt.Errorf("source %s: %w", j.Name, err)
		}
		pos = next
		if j.Progress != nil {
			j.Progress(st)
		}
		if done {
			break
		}
	}
	j.Metrics.syncDuration.WithLabelValues(j.Name).Observe(time.Since(start).Seconds())
	j.Metrics.lastSync.WithLabelValues(j.Name).Set(float64(j.Clock().Unix()))
	return st, nil
}

// batch reads, maps and commits one batch.
func (j *Job) batch(ctx context.Context, pos pipeline.Position, initialDone bool, st *RunStats) (pipeline.Position, bool, error) {
	var rows []pipeline.Row
	next, done, err := j.Source.ReadBatch(ctx, pos, func(r pipeline.Row) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	now := j.Clock().UTC()
	b := store.Batch{Source: j.Name, Position: next, InitialDone: done && !initialDone, At: now}

	records := make([]pipeline.Record, 0, len(rows))
	var badFields []string
	for _, row := range rows {
		rec, err := j.Map.Apply(row, j.Agency)
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
				Reason: re.Error(), Raw: rawRow(row), FirstAt: now, LastAt: now,
			})
			continue
		}
		for _, f := range rec.Dropped {
			j.Metrics.dropped.WithLabelValues(j.Name, f).Inc()
		}
		records = append(records, rec)
	}

	if len(records) > 0 {
		keys := make([]string, len(records))
		for i, r := range records {
			keys[i] = r.Key
		}
		snap, err := j.Store.Snapshot(ctx, j.Name, j.Map.Entity, keys)
		if err != nil {
			return nil, false, err
		}
		j.detect(records, snap, !initialDone, now, &b)
	}

	if err := j.Store.Commit(ctx, b); err != nil {
		return nil, false, err
	}
	st.Batches++
	st.Rows += len(rows)
	st.Events += len(b.Events)
	st.Quarantined += len(b.Quarantine)
	j.Metrics.rowsRead.WithLabelValues(j.Name).Add(float64(len(rows)))
	j.Metrics.quarantined.WithLabelValues(j.Name).Add(float64(len(b.Quarantine)))
	for _, e := range b.Events {
		j.Metrics.events.WithLabelValues(j.Name, e.Event.Type).Inc()
	}
	if len(b.Quarantine) > 0 {
		// Reasons can quote citizen data; the log names only the fields.
		j.Logger.Warn("rows quarantined; see 'egov-bridge quarantine'", "source", j.Name, "count", len(b.Quarantine), "fields", badFields)
	}
	if len(b.Events) > 0 && j.OnCommit != nil {
		j.OnCommit()
	}
	return next, done, nil
}

// detect compares records with their snapshot entries and appends events and
// snapshot updates to b. A key seen twice in one batch is compared with its own
// earlier version, so the second occurrence is not lost or doubled.
func (j *Job) detect(records []pipeline.Record, snap map[string]store.SnapshotEntry, snapshotMode bool, now time.Time, b *store.Batch) {
	for _, rec := range records {
		hash := rec.Hash()
		var prior *pipeline.Prior
		if prev, known := snap[rec.Key]; known {
			if prev.Hash == hash && !prev.Deleted {
				continue
			}
			// Stored values come back through JSON; type them like fresh ones.
			prior = &pipeline.Prior{Hash: prev.Hash, Version: prev.Version, Fields: j.Map.Typed(prev.Fields), Deleted: prev.Deleted}
		}
		ev := pipeline.Diff(j.Name, prior, rec, hash, snapshotMode, now)
		entry := store.SnapshotEntry{Entity: rec.Entity, Key: rec.Key, Hash: hash, Version: ev.Version, Fields: rec.Fields}
		snap[rec.Key] = entry
		b.Snapshot = append(b.Snapshot, entry)
		b.Events = append(b.Events, store.OutboxEvent{Event: ev, Sinks: j.Router.Sinks(ev)})
		fired := j.Map.Fire(ev)
		for _, re := range fired.Events {
			b.Events = append(b.Events, store.OutboxEvent{Event: re, Sinks: j.Router.Sinks(re)})
		}
		for _, f := range fired.Failed {
			// The record is stored; only the rule could not be evaluated. The operator
			// sees it in quarantine with the reason.
			b.Quarantine = append(b.Quarantine, store.QuarantineEntry{
				Source: j.Name, Entity: rec.Entity, RowKey: rec.Key, Reason: f.Error(),
				Raw: rawRow(pipeline.Row(rec.Fields)), FirstAt: now, LastAt: now,
			})
		}
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

func rawRow(row pipeline.Row) map[string]string {
	out := make(map[string]string, len(row))
	for k, v := range row {
		switch x := v.(type) {
		case nil:
			out[k] = ""
		case []byte:
			out[k] = string(x)
		case time.Time:
			out[k] = x.UTC().Format(time.RFC3339Nano)
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}
