package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// ReprocessResult counts what a quarantine reprocess did.
type ReprocessResult struct {
	Fixed      int // rows that now map cleanly
	Superseded int // of those, rows whose record was synced since: not replayed
	StillBad   int // rows still rejected (with their current reason)
	Events     int
}

// Reprocess maps the source's quarantined rows again, after a mapping fix: rows
// that now pass go through change detection and are committed like a batch (the
// cursor does not move), and their quarantine entries are removed. Rows that still
// fail stay, with the current reason.
func (j *Job) Reprocess(ctx context.Context) (ReprocessResult, error) {
	var res ReprocessResult
	lock, err := j.lockSource(ctx)
	if err != nil {
		return res, fmt.Errorf("reprocess %s: %w (try again when the run has finished)", j.Name, err)
	}
	defer lock.Unlock()
	entries, err := j.Store.Quarantined(ctx, j.Name, 0)
	if err != nil {
		return res, err
	}
	cur, err := j.Store.Cursor(ctx, j.Name)
	if err != nil {
		return res, err
	}
	now := j.Clock().UTC()
	for len(entries) > 0 {
		if !lock.Held(ctx) {
			return res, fmt.Errorf("reprocess %s: %w", j.Name, ErrLockLost)
		}
		chunk := entries[:min(len(entries), 500)]
		entries = entries[len(chunk):]
		b := store.Batch{Source: j.Name, At: now}
		var records []pipeline.Record
		var lastSeen []time.Time
		var resolved []int64
		for _, e := range chunk {
			row := pipeline.Row{}
			for k, v := range e.Raw {
				row[k] = v
			}
			rec, err := j.Map.Apply(row, j.Agency)
			var re *mapping.RowError
			switch {
			case errors.As(err, &re):
				res.StillBad++
				if re.Error() != e.Reason { // the mapping changed: keep the current reason only
					resolved = append(resolved, e.ID)
					b.Quarantine = append(b.Quarantine, store.QuarantineEntry{
						Source: j.Name, Entity: j.Map.Entity, RowKey: j.Map.RowKey(row), Reason: re.Error(),
						Raw: e.Raw, FirstAt: e.FirstAt, LastAt: now,
					})
				}
				continue
			case err != nil:
				return res, err
			}
			res.Fixed++
			records = append(records, rec)
			lastSeen = append(lastSeen, e.LastAt)
			resolved = append(resolved, e.ID)
		}
		if len(records) > 0 {
			keys := make([]string, len(records))
			for i, r := range records {
				keys[i] = r.Key
			}
			snap, err := j.Store.Snapshot(ctx, j.Name, j.Map.Entity, keys)
			if err != nil {
				return res, err
			}
			// A record synced since its row was quarantined is newer than the stored
			// raw row: replaying the old row would move it backwards.
			fresh := records[:0]
			for i, r := range records {
				if s, ok := snap[r.Key]; ok && s.UpdatedAt.After(lastSeen[i]) {
					res.Superseded++
					continue
				}
				fresh = append(fresh, r)
			}
			j.detect(fresh, snap, !cur.InitialDone, now, &b)
		}
		if err := j.Store.Commit(ctx, b); err != nil {
			return res, fmt.Errorf("reprocess %s: %w", j.Name, err)
		}
		if _, err := j.Store.ResolveQuarantine(ctx, resolved); err != nil {
			return res, err
		}
		res.Events += len(b.Events)
	}
	return res, nil
}
