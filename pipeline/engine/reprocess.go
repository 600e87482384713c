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
	Superseded int // of those, stored copies whose record was synced since: not replayed
	StillBad   int // rows still rejected (with their current reason)
	Gone       int // rows no longer in the source: their entries are removed
	Notices    int // failed notices whose rule now ran
	Events     int
	// FromSource says whether rows were re-read from the source (a Refetcher) or
	// taken from the quarantined copies.
	FromSource bool
}

// reprocessChunk bounds one re-read and one commit.
const reprocessChunk = 500

// Reprocess tries the source's quarantine again, after a mapping or data fix.
//
// Bad rows are re-read from the source when it can (pipeline.Refetcher), so the
// record reflects what the agency holds now; otherwise their stored copies are used,
// skipping any whose record was synced since. Rows that now map cleanly go through
// change detection and are committed like a batch (the cursor does not move); a
// record first seen this way from a row rejected during the first sync is a
// snapshot record, so repairing data never tells citizens about the past. Rows gone
// from the source are removed; rows still rejected stay with the current reason.
//
// Failed notices (a rule that failed at run time) are evaluated again on the change
// they failed on; the rule's own max_age still applies.
func (j *Job) Reprocess(ctx context.Context) (ReprocessResult, error) {
	var res ReprocessResult
	lock, err := j.lockSource(ctx)
	if err != nil {
		return res, fmt.Errorf("reprocess %s: %w (try again when the run has finished)", j.Name, err)
	}
	defer lock.Unlock()
	fence := lock.Fence()
	entries, err := j.Store.Quarantined(ctx, j.Name, 0)
	if err != nil {
		return res, err
	}
	cur, err := j.Store.Cursor(ctx, j.Name)
	if err != nil {
		return res, err
	}
	// Rows without a key (a NULL key) cannot be looked up in the source: their stored
	// copies are used.
	var rows, keyless, notices []store.QuarantineEntry
	for _, e := range entries {
		switch {
		case e.Rule != "":
			notices = append(notices, e)
		case e.RowKey == "":
			keyless = append(keyless, e)
		default:
			rows = append(rows, e)
		}
	}
	var refetch pipeline.Refetcher
	if len(rows) > 0 {
		if refetch, err = j.refetcher(ctx); err != nil {
			return res, fmt.Errorf("reprocess %s: %w", j.Name, err)
		}
	}
	res.FromSource = refetch != nil
	for _, part := range []struct {
		entries []store.QuarantineEntry
		refetch pipeline.Refetcher
	}{{rows, refetch}, {keyless, nil}} {
		for len(part.entries) > 0 {
			if !lock.Held(ctx) {
				return res, fmt.Errorf("reprocess %s: %w", j.Name, ErrLockLost)
			}
			chunk := part.entries[:min(len(part.entries), reprocessChunk)]
			part.entries = part.entries[len(chunk):]
			if err := j.reprocessRows(ctx, chunk, part.refetch, cur, &fence, &res); err != nil {
				return res, fmt.Errorf("reprocess %s: %w", j.Name, err)
			}
		}
	}
	for len(notices) > 0 {
		if !lock.Held(ctx) {
			return res, fmt.Errorf("reprocess %s: %w", j.Name, ErrLockLost)
		}
		chunk := notices[:min(len(notices), reprocessChunk)]
		notices = notices[len(chunk):]
		if err := j.reprocessNotices(ctx, chunk, &fence, &res); err != nil {
			return res, fmt.Errorf("reprocess %s: %w", j.Name, err)
		}
	}
	return res, nil
}

// refetcher opens the source when it can re-read rows; nil means it cannot.
func (j *Job) refetcher(ctx context.Context) (pipeline.Refetcher, error) {
	if j.Source == nil {
		if j.Open == nil {
			return nil, nil
		}
		src, err := j.Open(ctx)
		if err != nil {
			return nil, fmt.Errorf("open the source to re-read quarantined rows: %w", err)
		}
		j.Source = src
	}
	rf, _ := j.Source.(pipeline.Refetcher)
	return rf, nil
}

// reprocessRows handles one chunk of quarantined bad rows.
func (j *Job) reprocessRows(ctx context.Context, chunk []store.QuarantineEntry, refetch pipeline.Refetcher, cur store.CursorState, fence *store.Fence, res *ReprocessResult) error {
	now := j.Clock().UTC()
	b := store.Batch{Source: j.Name, At: now, Fence: fence}
	byKey := map[string][]store.QuarantineEntry{}
	raws := make([]pipeline.Row, 0, len(chunk))
	for _, e := range chunk {
		row := pipeline.Row{}
		for k, v := range e.Raw {
			row[k] = v
		}
		raws = append(raws, row)
		byKey[e.RowKey] = append(byKey[e.RowKey], e)
	}
	current := raws
	seen := map[string]bool{}
	if refetch != nil {
		var got collected
		if err := refetch.Refetch(ctx, raws, &got); err != nil {
			return fmt.Errorf("re-read quarantined rows: %w", err)
		}
		current = got.rows
		for _, rj := range got.rejected {
			res.StillBad++
			key := j.Map.RowKey(rj.row)
			seen[key] = true
			b.ResolvedIDs = append(b.ResolvedIDs, ids(byKey[key])...)
			b.Quarantine = append(b.Quarantine, store.QuarantineEntry{
				Source: j.Name, Entity: j.Map.Entity, RowKey: key, Reason: rj.reason.Error(),
				Raw: rawRow(rj.row), FirstAt: now, LastAt: now, Snapshot: snapshotOf(byKey[key]),
			})
		}
	}
	var records []pipeline.Record
	var origin [][]store.QuarantineEntry
	for i, row := range current {
		key := j.Map.RowKey(row)
		entries := byKey[key]
		if refetch == nil {
			entries = []store.QuarantineEntry{chunk[i]}
		}
		seen[key] = true
		rec, err := j.Map.Apply(row, j.Agency)
		var re *mapping.RowError
		switch {
		case errors.As(err, &re):
			res.StillBad++
			if refetch == nil && re.Error() == entries[0].Reason {
				continue // the same copy, the same reason: nothing new to record
			}
			// Keep one entry with the current row and reason.
			b.ResolvedIDs = append(b.ResolvedIDs, ids(entries)...)
			b.Quarantine = append(b.Quarantine, store.QuarantineEntry{
				Source: j.Name, Entity: j.Map.Entity, RowKey: key, Reason: re.Error(), Raw: rawRow(row),
				FirstAt: firstSeen(entries, now), LastAt: now, Snapshot: snapshotOf(entries),
			})
			continue
		case err != nil:
			return err
		}
		res.Fixed++
		b.ResolvedIDs = append(b.ResolvedIDs, ids(entries)...)
		records = append(records, rec)
		origin = append(origin, entries)
	}
	if refetch != nil {
		for key, entries := range byKey {
			if seen[key] {
				continue
			}
			// The agency no longer has the row: there is nothing left to repair.
			res.Gone += len(entries)
			b.ResolvedIDs = append(b.ResolvedIDs, ids(entries)...)
		}
	}
	if len(records) > 0 {
		snap, err := j.stored(ctx, records)
		if err != nil {
			return err
		}
		fresh, freshOrigin := records[:0], origin[:0]
		for i, r := range records {
			// A stored copy older than the record's last sync would move it backwards.
			if s, ok := snap[r.Key]; ok && refetch == nil && s.UpdatedAt.After(lastSeen(origin[i])) {
				res.Superseded++
				continue
			}
			fresh, freshOrigin = append(fresh, r), append(freshOrigin, origin[i])
		}
		j.detect(fresh, nil, snap, func(i int, known bool) bool {
			// Rows rejected during the first sync would have been snapshot records.
			return !cur.InitialDone || (!known && snapshotOf(freshOrigin[i]))
		}, now, &b)
	}
	if err := j.Store.Commit(ctx, b); err != nil {
		return err
	}
	res.Events += len(b.Events)
	return nil
}

// reprocessNotices evaluates failed rules again on the changes they failed on.
func (j *Job) reprocessNotices(ctx context.Context, chunk []store.QuarantineEntry, fence *store.Fence, res *ReprocessResult) error {
	now := j.Clock().UTC()
	b := store.Batch{Source: j.Name, At: now, Fence: fence}
	for _, e := range chunk {
		if e.Event == nil {
			continue
		}
		ev := *e.Event
		ev.Before = j.Map.Typed(ev.Before)
		ev.After, ev.AfterJSON = j.Map.Typed(ev.After), nil
		fired, err := j.fireRule(&ev, e.Rule)
		if err != nil {
			res.StillBad++
			if err.Error() != e.Reason {
				b.ResolvedIDs = append(b.ResolvedIDs, e.ID)
				b.Quarantine = append(b.Quarantine, j.failedNotice(&ev, e.Rule, err, e.FirstAt, now))
			}
			continue
		}
		res.Notices++
		b.ResolvedIDs = append(b.ResolvedIDs, e.ID)
		for _, re := range fired {
			re.Epoch = ev.Epoch
			b.Events = append(b.Events, store.OutboxEvent{Event: re, Sinks: j.Router.Sinks(re)})
		}
	}
	if err := j.Store.Commit(ctx, b); err != nil {
		return err
	}
	res.Events += len(b.Events)
	return nil
}

func ids(entries []store.QuarantineEntry) []int64 {
	out := make([]int64, len(entries))
	for i, e := range entries {
		out[i] = e.ID
	}
	return out
}

func snapshotOf(entries []store.QuarantineEntry) bool {
	for _, e := range entries {
		if e.Snapshot {
			return true
		}
	}
	return false
}

// firstSeen is when the oldest of entries was first quarantined; now when there is
// none (the row's key changed at the source since).
func firstSeen(entries []store.QuarantineEntry, now time.Time) time.Time {
	t := now
	for _, e := range entries {
		if e.FirstAt.Before(t) {
			t = e.FirstAt
		}
	}
	return t
}

func lastSeen(entries []store.QuarantineEntry) time.Time {
	var t time.Time
	for _, e := range entries {
		if e.LastAt.After(t) {
			t = e.LastAt
		}
	}
	return t
}
