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

// factsOf adds a changed record's figures facts and timer arms to the batch (see
// store.Fact, store.TimerArm). prior is the record as stored before (nil when new).
// Only thresholds that can still fire are written: one that passed before the
// record was first seen during the first sync is history, not news, and is not
// stored at all (a million-record first sync would otherwise store a spent timer
// per record and rule); one the change did not move is left as it is stored, or
// as it is absent. A moved threshold is re-armed.
func (j *Job) factsOf(rec pipeline.Record, prior *pipeline.Prior, snapshot bool, now time.Time, b *store.Batch) {
	j.factsOfSeen(rec, prior, snapshot, now, j.factDay(now), b)
}

// factsOfSeen is factsOf with now's day already written (seenDay), as detect
// writes it once for a whole batch.
func (j *Job) factsOfSeen(rec pipeline.Record, prior *pipeline.Prior, snapshot bool, now time.Time, seenDay string, b *store.Batch) {
	if f, ok := j.fact(rec.Entity, rec.Key, rec.Agency, rec.Fields, seenDay); ok {
		b.Facts = append(b.Facts, f)
	}
	var buf [4]mapping.TimerArm
	arms := j.Map.AppendTimers(buf[:0], rec.Fields)
	if len(arms) == 0 {
		return
	}
	var before map[string]time.Time // a new record has no thresholds before
	if prior != nil && !prior.Deleted {
		before = map[string]time.Time{}
		for _, arm := range j.Map.Timers(prior.Fields) {
			before[arm.Rule] = arm.At
		}
	}
	for _, arm := range arms {
		if at, ok := before[arm.Rule]; ok && at.Equal(arm.At) {
			continue
		}
		if snapshot && !arm.At.IsZero() && !arm.At.After(now) {
			continue
		}
		b.Timers = append(b.Timers, store.TimerArm{Entity: rec.Entity, Key: rec.Key, Rule: arm.Rule, At: arm.At})
	}
}

// fact extracts one record's facts; ok is false when its mapping declares no
// figures. seenDay is the day the record is seen (factDay of now).
func (j *Job) fact(entity, key, agency string, fields map[string]any, seenDay string) (store.Fact, bool) {
	mf, ok := j.Map.Facts(fields)
	if !ok {
		return store.Fact{}, false
	}
	f := store.Fact{
		Entity: entity, Key: key, Kind: mf.Kind, Agency: agency, State: mf.State, Supplement: mf.Supplement,
		ReceivedAt: mf.ReceivedAt, ReceivedDay: j.factDay(mf.ReceivedAt), DueAt: mf.DueAt, DueDay: j.factDay(mf.DueAt), SeenDay: seenDay,
		FinishedAt: mf.FinishedAt, OnTime: mf.OnTime, Online: mf.Online, Digitised: mf.Digitised,
	}
	if mf.State == mapping.FactFinished {
		f.FinishedDay = j.factDay(mf.FinishedAt)
	}
	return f, true
}

// factDay is t's calendar day in the job's zone as the facts keep it,
// time.DateOnly ("" for no time). It writes the digits itself: Format parsed its
// layout three times a row.
func (j *Job) factDay(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	zone := j.Zone
	if zone == nil {
		zone = time.UTC
	}
	t = t.In(zone)
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return t.Format(time.DateOnly) // Format's own way with such years
	}
	b := [10]byte{
		byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
		byte('0' + int(m)/10), byte('0' + int(m)%10), '-',
		byte('0' + d/10), byte('0' + d%10),
	}
	return string(b[:])
}

// rebuildPage is how many snapshot entries a facts rebuild reads and writes at once.
const rebuildPage = 2000

// ensureFacts rebuilds the source's facts and timers from its snapshot when they
// were built for another figures: block or other timer rules (or never: a store
// that synced before figures existed). It runs under the source's lock, before a
// run reads anything, once per process.
func (j *Job) ensureFacts(ctx context.Context) error {
	if j.factsReady {
		return nil
	}
	fs, ok := j.Store.(store.FactStore)
	want := j.Map.FactsVersion()
	if !ok || want == "" {
		j.factsReady = true
		return nil
	}
	have, err := fs.FactsVersion(ctx, j.Name)
	if err != nil {
		return err
	}
	if have == want {
		j.factsReady = true
		return nil
	}
	now := j.Clock().UTC()
	after, n := "", 0
	for first := true; ; first = false {
		page, err := fs.SnapshotPage(ctx, j.Name, j.Map.Entity, after, rebuildPage)
		if err != nil {
			return err
		}
		var b store.Batch
		for _, e := range page {
			if e.Deleted {
				continue
			}
			fields := j.Map.Typed(e.Fields)
			rec := pipeline.Record{Entity: e.Entity, Key: e.Key, Agency: j.Map.Agency(fields, j.Agency), Fields: fields}
			// Thresholds already passed are history: a rebuild announces nothing old.
			j.factsOf(rec, nil, true, now, &b)
		}
		if err := fs.RebuildFacts(ctx, j.Name, j.Map.Entity, first, b.Facts, b.Timers, now); err != nil {
			return err
		}
		n += len(page)
		if len(page) < rebuildPage {
			break
		}
		after = page[len(page)-1].Key
	}
	if err := fs.SetFactsVersion(ctx, j.Name, want); err != nil {
		return err
	}
	if n > 0 {
		j.Logger.Info("figures facts and deadline timers rebuilt from the snapshot", "source", j.Name, "records", n)
	}
	j.factsReady = true
	return nil
}

// TimerStats counts what one pass over a source's due timers did.
type TimerStats struct {
	Fired   int // rule events committed
	Skipped int // timers whose condition did not hold (a finished dossier) or whose record is gone
	Failed  int // timers whose condition or template failed: kept in quarantine as failed notices
}

// timerPage bounds the timers fired per transaction.
const timerPage = 500

// FireTimers fires the source's timer rules whose thresholds have passed: each is
// evaluated once on the record as the store holds it now; when its condition holds
// its rule event is routed and committed like any other, and either way the timer
// is marked fired in the same transaction. It runs under a store-wide lock of its
// own, so one replica fires each source's timers.
func (j *Job) FireTimers(ctx context.Context) (TimerStats, error) {
	var st TimerStats
	fs, ok := j.Store.(store.FactStore)
	if !ok || !j.Map.HasTimers() {
		return st, nil
	}
	lock, ok, err := j.Store.TryLock(ctx, "timers/"+j.Name)
	if err != nil {
		return st, err
	}
	if !ok {
		return st, ErrAlreadyRunning
	}
	defer lock.Unlock()
	fence := lock.Fence()
	for {
		now := j.Clock().UTC()
		due, err := fs.DueTimers(ctx, j.Name, now, timerPage)
		if err != nil {
			return st, err
		}
		if len(due) == 0 {
			return st, nil
		}
		b := store.Batch{Source: j.Name, At: now, Fence: &fence}
		epoch := j.Store.Epoch()
		for _, t := range due {
			b.TimersFired = append(b.TimersFired, t.TimerKey)
			if t.Record.Deleted {
				st.Skipped++
				continue
			}
			fields := j.Map.Typed(t.Record.Fields)
			rec := pipeline.Record{Entity: t.Entity, Key: t.Key, Agency: j.Map.Agency(fields, j.Agency), Fields: fields}
			ev, err := j.Map.FireTimer(rec, j.Name, t.Record.Version, t.Rule, t.At, now)
			var rf mapping.RuleFailure
			switch {
			case errors.As(err, &rf):
				st.Failed++
				change := &pipeline.Event{ID: mapping.TimerEventID(j.Name, t.Entity, t.Key, t.Rule, t.At), Type: mapping.EventTimer,
					Source: j.Name, Entity: t.Entity, Key: t.Key, Agency: rec.Agency, Version: t.Record.Version, After: fields, DetectedAt: now}
				b.Quarantine = append(b.Quarantine, j.failedNotice(change, t.Rule, err, now, now))
				continue
			case err != nil:
				return st, fmt.Errorf("source %s: timer %s of %q: %w", j.Name, t.Rule, t.Key, err)
			case ev == nil:
				st.Skipped++
				continue
			}
			ev.Epoch = epoch
			b.Events = append(b.Events, store.OutboxEvent{Event: ev, Sinks: j.Router.Sinks(ev)})
			st.Fired++
		}
		if len(b.Quarantine) > 0 {
			// Failed notices go through a normal commit, which only adds quarantine.
			if err := j.Store.Commit(ctx, store.Batch{Source: j.Name, At: now, Fence: &fence, Quarantine: b.Quarantine}); err != nil {
				return st, err
			}
		}
		if err := fs.FireTimers(ctx, b); err != nil {
			return st, err
		}
		for _, e := range b.Events {
			j.Metrics.events.WithLabelValues(j.Name, e.Event.Type).Inc()
		}
		if len(b.Events) > 0 && j.OnCommit != nil {
			j.OnCommit()
		}
		if len(due) < timerPage {
			return st, nil
		}
	}
}
