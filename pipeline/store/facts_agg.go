package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Measures of fact_days, its count columns in this order: what one record adds
// to its days.
const (
	mReceived = iota
	mOnline
	mOnlineKnown
	mDigitised
	mDigitisedKnown
	mFinished
	mOnTime
	mLate
	mSupplement
	nMeasures
)

// measureCols are fact_days' count columns, by measure.
var measureCols = [nMeasures]string{"received", "online", "online_known", "digitised", "digitised_known",
	"finished", "on_time", "late", "supplement"}

type dayKey struct {
	kind, agency string
	day          int64 // days since 1970-01-01
}
type openKey struct {
	kind, agency string
	due          int64 // days since 1970-01-01; noDueDay when none
}

// noDueDay keys the open records without a due day.
const noDueDay = -1 << 62

// aggDelta is what a batch adds to and removes from the aggregates.
type aggDelta struct {
	days map[dayKey]*[nMeasures]int64
	open map[openKey][2]int64 // open, supplement
}

func newAggDelta() aggDelta {
	return aggDelta{days: map[dayKey]*[nMeasures]int64{}, open: map[openKey][2]int64{}}
}

// add adds (sign +1) or removes (-1) a row's contributions; a row without facts
// has none.
func (a *aggDelta) add(r *factColumns, sign int64) {
	if !r.has() {
		return
	}
	kind, agency, flags := r.Kind, r.Agency, r.Flags.Int64
	day := func(d sql.NullInt64, m int) {
		if !d.Valid {
			return
		}
		k := dayKey{kind, agency, d.Int64}
		v := a.days[k]
		if v == nil {
			v = new([nMeasures]int64)
			a.days[k] = v
		}
		v[m] += sign
	}
	day(r.ReceivedDay, mReceived)
	if flags&flagOnlineKnown != 0 {
		day(r.ReceivedDay, mOnlineKnown)
		if flags&flagOnline != 0 {
			day(r.ReceivedDay, mOnline)
		}
	}
	if flags&flagDigitisedKnown != 0 {
		day(r.ReceivedDay, mDigitisedKnown)
		if flags&flagDigitised != 0 {
			day(r.ReceivedDay, mDigitised)
		}
	}
	switch r.State.Int64 {
	case stateFinished:
		day(r.FinishedDay, mFinished)
		if flags&flagOnTimeKnown != 0 {
			if flags&flagOnTime != 0 {
				day(r.FinishedDay, mOnTime)
			} else {
				day(r.FinishedDay, mLate)
			}
		}
	case stateOpen:
		due := int64(noDueDay)
		if r.DueDay.Valid {
			due = r.DueDay.Int64
		}
		k := openKey{kind, agency, due}
		v := a.open[k]
		v[0] += sign
		if flags&flagSupplement != 0 {
			v[1] += sign
		}
		a.open[k] = v
	}
	day(r.SupplementDay, mSupplement)
}

// factWrite is what a batch's facts change beyond the snapshot rows the batch
// stores (which carry their own facts; see prepareFacts).
type factWrite struct {
	loose [][]any     // facts of records the batch stores no row for: rows for writeFacts
	gone  [][2]string // entity and key of records whose facts went: their timers go too
	delta aggDelta
	added map[[2]string]int64 // fact groups added (see factGroupID)
}

// prepareFacts computes the batch's facts as their rows will keep them: a fact of
// a record whose snapshot row the batch stores goes into that row (its prior
// facts came with priorRows, or there are none: a new record); any other fact
// is read and kept for writeFacts. It also computes the aggregates' delta.
func (s *sqlStore) prepareFacts(ctx context.Context, tx *sqlx.Tx, source string, facts []Fact, snap snapshotRows, at time.Time) (factWrite, error) {
	w := factWrite{delta: newAggDelta(), added: map[[2]string]int64{}}
	if len(facts) == 0 {
		return w, nil
	}
	type id struct{ entity, key string }
	// The last fact of a key wins, as sequential upserts would.
	last := make(map[id]int, len(facts))
	for i, f := range facts {
		last[id{f.Entity, f.Key}] = i
	}
	// Keys seen once (a first sync's facts) need no second look at last.
	unique := len(last) == len(facts)
	isLast := func(i int, f *Fact) bool { return unique || last[id{f.Entity, f.Key}] == i }
	// rows[i] is the snapshot row of the batch that fact i rides on, if any.
	rows := make([]*pendingSnapshot, len(facts))
	// The facts of records not in the batch's snapshot rows, as stored now.
	old := map[id]*factColumns{}
	byEntity := map[string][]string{}
	for i := range facts {
		f := &facts[i]
		if !isLast(i, f) {
			continue
		}
		if rows[i] = snap.byKey[[2]string{f.Entity, f.Key}]; rows[i] == nil {
			byEntity[f.Entity] = append(byEntity[f.Entity], f.Key)
		}
	}
	for _, entity := range slices.Sorted(maps.Keys(byEntity)) {
		err := forEachIn(s.d, "key", byEntity[entity], func(cond string, args []any) error {
			return queryEach(ctx, tx, s.q(`SELECT key, `+factColumnList+` FROM snapshot
				WHERE source = ? AND entity = ? AND `+cond), append([]any{source, entity}, args...), func(r *sqlx.Rows) error {
				var row struct {
					Key string `db:"key"`
					factColumns
				}
				if err := r.StructScan(&row); err != nil {
					return err
				}
				old[id{entity, row.Key}] = &row.factColumns
				return nil
			})
		})
		if err != nil {
			return w, fmt.Errorf("read stored facts: %w", err)
		}
	}
	updatedAt := s.d.rowTimeArg(at)
	for i := range facts {
		f := &facts[i]
		if !isLast(i, f) {
			continue
		}
		row := rows[i]
		var prior *factColumns
		if row != nil {
			if row.prior != nil {
				prior = &row.prior.factColumns
			}
		} else {
			prior = old[id{f.Entity, f.Key}]
		}
		if err := s.resolveGroup(ctx, tx, prior, w.added); err != nil {
			return w, err
		}
		next, err := storedFact(*f, prior, at)
		if err != nil {
			return w, fmt.Errorf("%s %q: %w", f.Entity, f.Key, err)
		}
		if !f.Deleted {
			g, err := s.factGroupID(ctx, tx, next.Kind, next.Agency, w.added)
			if err != nil {
				return w, err
			}
			next.Group = sql.NullInt64{Int64: g, Valid: true}
		}
		w.delta.add(prior, -1)
		w.delta.add(&next, +1)
		if f.Deleted && prior.has() {
			w.gone = append(w.gone, [2]string{f.Entity, f.Key})
		}
		switch {
		case row != nil:
			row.fact = &next
		case prior != nil || !f.Deleted:
			// A record without a snapshot row (facts committed without their
			// records) gets a placeholder row: deleted, version 0, no fields.
			w.loose = append(w.loose, next.appendArgs([]any{source, f.Entity, f.Key, "", 0, "{}", true, updatedAt}))
		}
	}
	return w, nil
}

// writeFacts writes what prepareFacts left beside the snapshot rows: the facts of
// records without a row in the batch, the timers of records gone, the
// aggregates, and the timer arms.
func (s *sqlStore) writeFacts(ctx context.Context, tx *sqlx.Tx, source string, w factWrite, arms []TimerArm) error {
	if err := s.insertRows(ctx, tx, `INSERT INTO snapshot (source, entity, key, hash, version, fields, deleted, updated_at, `+
		factColumnList+`) VALUES `, ` ON CONFLICT (source, entity, key) DO UPDATE SET `+factConflict, w.loose, nil); err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	for _, g := range w.gone {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM timers WHERE source = ? AND entity = ? AND key = ?`), source, g[0], g[1]); err != nil {
			return fmt.Errorf("timers: %w", err)
		}
	}
	if err := s.applyDelta(ctx, tx, source, w.delta); err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	return s.armTimers(ctx, tx, source, arms)
}

// applyDelta adds a batch's contributions to the aggregates.
func (s *sqlStore) applyDelta(ctx context.Context, tx *sqlx.Tx, source string, delta aggDelta) error {
	var days [][]any
	for _, k := range slices.SortedFunc(maps.Keys(delta.days), func(a, b dayKey) int {
		return cmp.Or(strings.Compare(a.kind, b.kind), cmp.Compare(a.day, b.day), strings.Compare(a.agency, b.agency))
	}) {
		v := delta.days[k]
		if *v == ([nMeasures]int64{}) {
			continue
		}
		row := []any{source, k.kind, k.agency, dayString(k.day)}
		for _, n := range v {
			row = append(row, n)
		}
		days = append(days, row)
	}
	set := ""
	for i, c := range measureCols {
		if i > 0 {
			set += ", "
		}
		set += c + " = fact_days." + c + " + excluded." + c
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO fact_days (source, kind, agency, day, `+strings.Join(measureCols[:], ", ")+`) VALUES `,
		` ON CONFLICT (kind, day, agency, source) DO UPDATE SET `+set, days, nil); err != nil {
		return fmt.Errorf("per-day counts: %w", err)
	}
	var open [][]any
	for _, k := range slices.SortedFunc(maps.Keys(delta.open), func(a, b openKey) int {
		return cmp.Or(strings.Compare(a.kind, b.kind), cmp.Compare(a.due, b.due), strings.Compare(a.agency, b.agency))
	}) {
		if v := delta.open[k]; v != [2]int64{} {
			due := ""
			if k.due != noDueDay {
				due = dayString(k.due)
			}
			open = append(open, []any{source, k.kind, k.agency, due, v[0], v[1]})
		}
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO fact_open (source, kind, agency, due_day, n, supplement) VALUES `,
		` ON CONFLICT (kind, due_day, agency, source) DO UPDATE SET n = fact_open.n + excluded.n,
		supplement = fact_open.supplement + excluded.supplement`, open, nil); err != nil {
		return fmt.Errorf("open counts: %w", err)
	}
	return nil
}

// armTimers upserts timer arms; see TimerArm.
func (s *sqlStore) armTimers(ctx context.Context, tx *sqlx.Tx, source string, arms []TimerArm) error {
	var armRows [][]any
	for _, a := range arms {
		if a.At.IsZero() {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM timers WHERE source = ? AND entity = ? AND key = ? AND rule = ?`),
				source, a.Entity, a.Key, a.Rule); err != nil {
				return fmt.Errorf("timers: %w", err)
			}
			continue
		}
		armRows = append(armRows, []any{source, a.Entity, a.Key, a.Rule, s.d.timeArg(a.At), nil})
	}
	// The same threshold keeps its state (fired or not) and is not rewritten; a
	// moved one is re-armed.
	if err := s.insertRows(ctx, tx, `INSERT INTO timers (source, entity, key, rule, fire_at, fired_at) VALUES `,
		` ON CONFLICT (source, entity, key, rule) DO UPDATE SET fire_at = excluded.fire_at, fired_at = excluded.fired_at
		WHERE timers.fire_at <> excluded.fire_at`, armRows, nil); err != nil {
		return fmt.Errorf("timers: %w", err)
	}
	return nil
}

// zoneDay is the day (YYYY-MM-DD) of t in zone, and the instant that day starts.
func zoneDay(t time.Time, zone *time.Location) (string, time.Time) {
	l := t.In(zone)
	start := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, zone)
	return start.Format(time.DateOnly), start
}

// FactCounts counts per agency: whole days of the period from fact_days, its
// partial first and last days exactly from facts (short indexed ranges), the open
// records from fact_open, and today's part of "overdue now" and the "due soon"
// window from facts.
func (s *sqlStore) FactCounts(ctx context.Context, q FactQuery) ([]FactCount, error) {
	zone := q.Zone
	if zone == nil {
		zone = time.UTC
	}
	by := map[string]*FactCount{}
	get := func(agency string) *FactCount {
		c := by[agency]
		if c == nil {
			c = &FactCount{Agency: agency}
			by[agency] = c
		}
		return c
	}
	// Whole days: [fullFrom, fullTo); the rest of [From, To) is counted exactly.
	var fullFrom, fullTo time.Time
	var fromDay, toDay string
	if !q.From.IsZero() {
		day, start := zoneDay(q.From, zone)
		fromDay, fullFrom = day, start
		if !start.Equal(q.From) {
			fullFrom = start.AddDate(0, 0, 1)
			fromDay = fullFrom.Format(time.DateOnly)
		}
	}
	if !q.To.IsZero() {
		toDay, fullTo = zoneDay(q.To, zone)
	}
	var exact [][2]time.Time // ranges counted from facts; zero bounds are open
	switch {
	case !q.From.IsZero() && !q.To.IsZero() && !fullFrom.Before(fullTo):
		exact = append(exact, [2]time.Time{q.From, q.To}) // less than a whole day
		fromDay, toDay = "", ""
	default:
		if !q.From.IsZero() && fullFrom.After(q.From) {
			exact = append(exact, [2]time.Time{q.From, fullFrom})
		}
		if !q.To.IsZero() && fullTo.Before(q.To) {
			exact = append(exact, [2]time.Time{fullTo, q.To})
		}
	}
	if fromDay != "" || toDay != "" || (q.From.IsZero() && q.To.IsZero()) {
		if err := s.dayTotals(ctx, q.Kind, fromDay, toDay, get); err != nil {
			return nil, err
		}
	}
	for _, r := range exact {
		if err := s.exactFlows(ctx, q.Kind, r[0], r[1], get); err != nil {
			return nil, err
		}
	}
	if err := s.openCounts(ctx, q, zone, get); err != nil {
		return nil, err
	}
	out := make([]FactCount, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	sortBy(out, func(c FactCount) string { return c.Agency })
	return out, nil
}

// dayTotals adds the per-day aggregates of days in [from, to) ("" is open).
func (s *sqlStore) dayTotals(ctx context.Context, kind, from, to string, get func(string) *FactCount) error {
	cond, args := ``, []any{kind}
	if from != "" {
		cond += ` AND day >= ?`
		args = append(args, from)
	}
	if to != "" {
		cond += ` AND day < ?`
		args = append(args, to)
	}
	sums := ""
	for _, c := range measureCols {
		sums += ", SUM(" + c + ")"
	}
	err := queryEach(ctx, s.db, s.q(`SELECT agency`+sums+` FROM fact_days WHERE kind = ?`+cond+` GROUP BY agency`), args,
		func(r *sqlx.Rows) error {
			var agency string
			var v [nMeasures]int
			dest := []any{&agency}
			for i := range v {
				dest = append(dest, &v[i])
			}
			if err := r.Scan(dest...); err != nil {
				return err
			}
			c := get(agency)
			c.Received += v[mReceived]
			c.Online += v[mOnline]
			c.OnlineKnown += v[mOnlineKnown]
			c.Digitised += v[mDigitised]
			c.DigitisedKnown += v[mDigitisedKnown]
			c.Finished += v[mFinished]
			c.OnTime += v[mOnTime]
			c.Late += v[mLate]
			c.Supplement += v[mSupplement]
			return nil
		})
	if err != nil {
		return fmt.Errorf("store: per-day counts: %w", err)
	}
	return nil
}

// exactFlows counts the flows of [from, to) from facts, for a period's partial days.
func (s *sqlStore) exactFlows(ctx context.Context, kind string, from, to time.Time, get func(string) *FactCount) error {
	rng := func(col string) (string, []any) {
		col = "n." + col
		cond, args := ` AND `+col+` IS NOT NULL`, []any{}
		if !from.IsZero() {
			cond += ` AND ` + col + ` >= ?`
			args = append(args, unixBound(from))
		}
		if !to.IsZero() {
			cond += ` AND ` + col + ` < ?`
			args = append(args, unixBound(to))
		}
		return cond, args
	}
	cond, args := rng("fact_received_at")
	err := queryEach(ctx, s.db, s.q(`SELECT g.agency, COUNT(*), `+countFlag(flagOnline)+`, `+countFlag(flagOnlineKnown)+`,
		`+countFlag(flagDigitised)+`, `+countFlag(flagDigitisedKnown)+`
		FROM snapshot n JOIN fact_groups g ON g.id = n.fact_group WHERE g.kind = ?`+cond+` GROUP BY g.agency`), append([]any{kind}, args...), func(r *sqlx.Rows) error {
		var a string
		var n, on, onK, dig, digK int
		if err := r.Scan(&a, &n, &on, &onK, &dig, &digK); err != nil {
			return err
		}
		c := get(a)
		c.Received += n
		c.Online += on
		c.OnlineKnown += onK
		c.Digitised += dig
		c.DigitisedKnown += digK
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: count received: %w", err)
	}
	cond, args = rng("fact_finished_at")
	err = queryEach(ctx, s.db, s.q(`SELECT g.agency, COUNT(*), `+countFlag(flagOnTime)+`,
		COUNT(CASE WHEN n.fact_flags & `+strconv.Itoa(flagOnTimeKnown|flagOnTime)+` = `+strconv.Itoa(flagOnTimeKnown)+` THEN 1 END)
		FROM snapshot n JOIN fact_groups g ON g.id = n.fact_group WHERE g.kind = ?`+cond+` GROUP BY g.agency`), append([]any{kind}, args...), func(r *sqlx.Rows) error {
		var a string
		var n, ok, late int
		if err := r.Scan(&a, &n, &ok, &late); err != nil {
			return err
		}
		c := get(a)
		c.Finished += n
		c.OnTime += ok
		c.Late += late
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: count finished: %w", err)
	}
	cond, args = rng("fact_supplement_at")
	err = queryEach(ctx, s.db, s.q(`SELECT g.agency, COUNT(*) FROM snapshot n JOIN fact_groups g ON g.id = n.fact_group
		WHERE g.kind = ?`+cond+` GROUP BY g.agency`), append([]any{kind}, args...),
		func(r *sqlx.Rows) error {
			var a string
			var n int
			if err := r.Scan(&a, &n); err != nil {
				return err
			}
			get(a).Supplement += n
			return nil
		})
	if err != nil {
		return fmt.Errorf("store: count supplements: %w", err)
	}
	return nil
}

// countFlag counts the rows with the fact_flags bit set.
func countFlag(bit int) string {
	return `COUNT(CASE WHEN n.fact_flags & ` + strconv.Itoa(bit) + ` <> 0 THEN 1 END)`
}

// openCounts adds the open records: in progress and awaiting a supplement from
// fact_open; overdue now from fact_open's days before today plus today's part
// from facts; due soon from facts.
func (s *sqlStore) openCounts(ctx context.Context, q FactQuery, zone *time.Location, get func(string) *FactCount) error {
	today, todayStart := zoneDay(q.Now, zone)
	err := queryEach(ctx, s.db, s.q(`SELECT agency, SUM(n), SUM(supplement), SUM(CASE WHEN due_day <> '' AND due_day < ? THEN n ELSE 0 END)
		FROM fact_open WHERE kind = ? GROUP BY agency`), []any{today, q.Kind}, func(r *sqlx.Rows) error {
		var a string
		var n, sup, over int
		if err := r.Scan(&a, &n, &sup, &over); err != nil {
			return err
		}
		c := get(a)
		c.Open += n
		c.AwaitingSupplement += sup
		c.OverdueNow += over
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: count open: %w", err)
	}
	for _, part := range []struct {
		from, to time.Time
		add      func(c *FactCount, n int)
	}{
		{todayStart, q.Now, func(c *FactCount, n int) { c.OverdueNow += n }},
		{q.Now, q.DueUntil, func(c *FactCount, n int) { c.DueSoon += n }},
	} {
		if !part.from.Before(part.to) {
			continue
		}
		// fact_state = 1 (open) literally: the partial index on the due time is for it.
		err := queryEach(ctx, s.db, s.q(`SELECT g.agency, COUNT(*) FROM snapshot n JOIN fact_groups g ON g.id = n.fact_group
			WHERE g.kind = ? AND n.fact_state = 1 AND n.fact_due_at >= ? AND n.fact_due_at < ? GROUP BY g.agency`),
			[]any{q.Kind, unixBound(part.from), unixBound(part.to)}, func(r *sqlx.Rows) error {
				var a string
				var n int
				if err := r.Scan(&a, &n); err != nil {
					return err
				}
				part.add(get(a), n)
				return nil
			})
		if err != nil {
			return fmt.Errorf("store: count due: %w", err)
		}
	}
	return nil
}

// DayCounts reads received and finished per day and agency from the aggregates.
func (s *sqlStore) DayCounts(ctx context.Context, kind, from, to string) ([]DayCount, error) {
	type k struct{ day, agency string }
	by := map[k]*DayCount{}
	err := queryEach(ctx, s.db, s.q(`SELECT day, agency, SUM(received), SUM(finished) FROM fact_days
		WHERE kind = ? AND day >= ? AND day < ? GROUP BY day, agency`), []any{kind, from, to},
		func(r *sqlx.Rows) error {
			var c DayCount
			if err := r.Scan(&c.Day, &c.Agency, &c.Received, &c.Finished); err != nil {
				return err
			}
			if prev := by[k{c.Day, c.Agency}]; prev != nil {
				prev.Received += c.Received
				prev.Finished += c.Finished
				return nil
			}
			by[k{c.Day, c.Agency}] = &c
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("store: count per day: %w", err)
	}
	out := make([]DayCount, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	sortBy(out, func(c DayCount) string { return c.Day + "\x00" + c.Agency })
	return out, nil
}
