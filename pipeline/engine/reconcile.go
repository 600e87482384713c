package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// ErrCannotList is returned by Reconcile for a source that cannot list its keys.
var ErrCannotList = errors.New("the source cannot list its keys (only sources such as sql can be reconciled)")

// ReconcileStats counts what one reconcile did.
type ReconcileStats struct {
	Pages   int // pages of keys read from the source
	Keys    int // keys read
	Deleted int // records found gone: deleted events committed
}

// Reconcile lists every key the source holds now, page by page, and commits a
// deleted event for each live record whose row is gone (decision 0017). It runs
// under the source's lock, so a sync never interleaves with it, and holds one
// page of keys in memory at a time: the keys it has read are marked in the store.
// A listing that fails, or meets a row whose key does not map, deletes nothing.
func (j *Job) Reconcile(ctx context.Context) (ReconcileStats, error) {
	var rs ReconcileStats
	if !j.running.CompareAndSwap(false, true) {
		return rs, ErrAlreadyRunning
	}
	defer j.running.Store(false)
	work := context.WithoutCancel(ctx)
	lock, err := j.lockSource(work)
	if err != nil {
		return rs, err
	}
	defer lock.Unlock()
	fence := lock.Fence()
	if j.Source == nil {
		src, err := j.Open(work)
		if err != nil {
			return rs, fmt.Errorf("source %s: open: %w", j.Name, err)
		}
		j.Source = src
	}
	lister, ok := j.Source.(pipeline.KeyLister)
	if !ok {
		return rs, fmt.Errorf("source %s: reconcile: %w", j.Name, ErrCannotList)
	}
	start := time.Now()
	p, err := j.startPass(work)
	if err != nil {
		return rs, fmt.Errorf("source %s: reconcile: %w", j.Name, err)
	}
	cfg := j.deletes()
	cols := j.Map.KeyColumns()
	var pos pipeline.Position
	complete := false
	for ctx.Err() == nil {
		if !lock.Held(work) {
			return rs, fmt.Errorf("source %s: reconcile: %w", j.Name, ErrLockLost)
		}
		var got collected
		next, done, err := lister.ReadKeys(work, cols, pos, cfg.PageSize, &got)
		if err != nil {
			_ = j.finishPass(work, p, false, 1, &fence, &RunStats{})
			return rs, fmt.Errorf("source %s: reconcile: list keys: %w", j.Name, err)
		}
		rs.Pages++
		rs.Keys += len(got.rows) + len(got.rejected)
		for _, row := range got.rows {
			j.seeRow(p, row)
		}
		for _, rj := range got.rejected {
			j.seeRow(p, rj.row)
		}
		if err := j.flushSeen(work, p); err != nil {
			return rs, fmt.Errorf("source %s: reconcile: %w", j.Name, err)
		}
		if done {
			complete = true
			break
		}
		pos = next
	}
	// A listing is the source's own word on what exists: a record it lacks is
	// gone at once (no second miss needed), unless it has ended.
	var st RunStats
	err = j.finishPass(work, p, complete, 1, &fence, &st)
	rs.Deleted = st.Deleted
	j.Logger.Debug("reconcile finished", "source", j.Name, "keys", rs.Keys, "deleted", rs.Deleted, "took", time.Since(start))
	if err != nil {
		return rs, fmt.Errorf("source %s: reconcile: %w", j.Name, err)
	}
	return rs, nil
}

// reconcileJob runs a scheduled reconcile. A sync in flight holds the source: the
// reconcile waits for it (a nightly pass must not be lost to a 30-second tick).
func (d *Daemon) reconcileJob(ctx context.Context, j *Job) {
	wait := time.Second
	for ctx.Err() == nil {
		rs, err := j.Reconcile(ctx)
		switch {
		case errors.Is(err, ErrAlreadyRunning):
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, time.Minute)
			continue
		case err != nil:
			j.Metrics.syncErrors.WithLabelValues(j.Name).Inc()
			d.Logger.Error("reconcile failed", "source", j.Name, "err", err)
		default:
			d.Logger.Info("reconciled", "source", j.Name, "keys", rs.Keys, "deleted", rs.Deleted)
		}
		return
	}
}
