package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
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

// factRow is a facts row as far as the aggregates depend on it.
type factRow struct {
	Entity        string  `db:"entity"`
	Key           string  `db:"key"`
	Kind          string  `db:"kind"`
	Agency        string  `db:"agency"`
	State         string  `db:"state"`
	Supplement    bool    `db:"supplement"`
	ReceivedDay   *string `db:"received_day"`
	FinishedDay   *string `db:"finished_day"`
	DueDay        *string `db:"due_day"`
	SupplementDay *string `db:"supplement_day"`
	OnTime        *bool   `db:"on_time"`
	Online        *bool   `db:"online"`
	Digitised     *bool   `db:"digitised"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

type dayKey struct{ kind, agency, day string }
type openKey struct{ kind, agency, due string }

// aggDelta is what a batch adds to and removes from the aggregates.
type aggDelta struct {
	days map[dayKey]*[nMeasures]int64
	open map[openKey][2]int64 // open, supplement
}

// add adds (sign +1) or removes (-1) a row's contributions.
func (a *aggDelta) add(r *factRow, sign int64) {
	day := func(d string, m int) {
		if d == "" {
			return
		}
		k := dayKey{r.Kind, r.Agency, d}
		v := a.days[k]
		if v == nil {
			v = new([nMeasures]int64)
			a.days[k] = v
		}
		v[m] += sign
	}
	rd := str(r.ReceivedDay)
	day(rd, mReceived)
	if r.Online != nil {
		day(rd, mOnlineKnown)
		if *r.Online {
			day(rd, mOnline)
		}
	}
	if r.Digitised != nil {
		day(rd, mDigitisedKnown)
		if *r.Digitised {
			day(rd, mDigitised)
		}
	}
	if r.State == "finished" {
		fd := str(r.FinishedDay)
		day(fd, mFinished)
		if r.OnTime != nil {
			if *r.OnTime {
				day(fd, mOnTime)
			} else {
				day(fd, mLate)
			}
		}
	}
	day(str(r.SupplementDay), mSupplement)
	if r.State == "open" {
		k := openKey{r.Kind, r.Agency, str(r.DueDay)}
		v := a.open[k]
		v[0] += sign
		if r.Supplement {
			v[1] += sign
		}
		a.open[k] = v
	}
}

// writeFacts upserts the batch's facts and timers and keeps the aggregates in
// step: the rows it replaces are read first, their contributions removed and the
// new rows' added, all in the commit's transaction.
func (s *sqlStore) writeFacts(ctx context.Context, tx *sqlx.Tx, source string, facts []Fact, arms []TimerArm, at time.Time) error {
	if len(facts) > 0 {
		if err := s.upsertFacts(ctx, tx, source, facts, at); err != nil {
			return fmt.Errorf("facts: %w", err)
		}
	}
	return s.armTimers(ctx, tx, source, arms)
}

func (s *sqlStore) upsertFacts(ctx context.Context, tx *sqlx.Tx, source string, facts []Fact, at time.Time) error {
	// The rows as they are before this batch, by entity and key.
	type id struct{ entity, key string }
	old := map[id]*factRow{}
	byEntity := map[string][]string{}
	for _, f := range facts {
		byEntity[f.Entity] = append(byEntity[f.Entity], f.Key)
	}
	for _, entity := range slices.Sorted(maps.Keys(byEntity)) {
		keys := byEntity[entity]
		err := forEachIn(s.d, "key", keys, func(cond string, args []any) error {
			var rows []factRow
			if err := tx.SelectContext(ctx, &rows, s.q(`SELECT entity, key, kind, agency, state, supplement, received_day,
				finished_day, due_day, supplement_day, on_time, online, digitised FROM facts
				WHERE source = ? AND entity = ? AND `+cond), append([]any{source, entity}, args...)...); err != nil {
				return err
			}
			for i := range rows {
				old[id{rows[i].Entity, rows[i].Key}] = &rows[i]
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	delta := aggDelta{days: map[dayKey]*[nMeasures]int64{}, open: map[openKey][2]int64{}}
	// The last fact of a key wins, as sequential upserts would.
	last := map[id]int{}
	for i, f := range facts {
		last[id{f.Entity, f.Key}] = i
	}
	var rows [][]any
	var gone [][2]string
	for i, f := range facts {
		k := id{f.Entity, f.Key}
		if last[k] != i {
			continue
		}
		prev := old[k]
		if prev != nil {
			delta.add(prev, -1)
		}
		if f.Deleted {
			if prev != nil {
				gone = append(gone, [2]string{f.Entity, f.Key})
			}
			continue
		}
		if f.State != "finished" {
			// A reopened dossier is not counted as finished in any period.
			f.FinishedAt, f.FinishedDay, f.OnTime = time.Time{}, "", nil
		}
		// A supplement is counted on the day it was first seen asked for.
		supDay := ""
		if prev != nil {
			supDay = str(prev.SupplementDay)
		}
		var supAt any
		if supDay == "" && f.Supplement {
			supDay = f.SeenDay
			if supDay == "" {
				supDay = at.UTC().Format(time.DateOnly)
			}
			supAt = s.d.timeArg(at)
		}
		next := &factRow{Entity: f.Entity, Key: f.Key, Kind: f.Kind, Agency: f.Agency, State: f.State, Supplement: f.Supplement,
			ReceivedDay: optStr(f.ReceivedDay), FinishedDay: optStr(f.FinishedDay), DueDay: optStr(f.DueDay),
			SupplementDay: optStr(supDay), OnTime: f.OnTime, Online: f.Online, Digitised: f.Digitised}
		delta.add(next, +1)
		rows = append(rows, []any{source, f.Entity, f.Key, f.Kind, f.Agency, f.State, f.Supplement,
			s.optTime(f.ReceivedAt), optText(f.ReceivedDay), s.optTime(f.DueAt), optText(f.DueDay), s.optTime(f.FinishedAt),
			optText(f.FinishedDay), supAt, optText(supDay), optBool(f.OnTime), optBool(f.Online), optBool(f.Digitised)})
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO facts (source, entity, key, kind, agency, state, supplement,
		received_at, received_day, due_at, due_day, finished_at, finished_day, supplement_at, supplement_day, on_time, online, digitised) VALUES `,
		` ON CONFLICT (source, entity, key) DO UPDATE SET kind = excluded.kind, agency = excluded.agency,
		state = excluded.state, supplement = excluded.supplement, received_at = excluded.received_at,
		received_day = excluded.received_day, due_at = excluded.due_at, due_day = excluded.due_day,
		finished_at = excluded.finished_at, finished_day = excluded.finished_day,
		supplement_at = coalesce(facts.supplement_at, excluded.supplement_at),
		supplement_day = coalesce(facts.supplement_day, excluded.supplement_day),
		on_time = excluded.on_time, online = excluded.online, digitised = excluded.digitised`, rows, nil); err != nil {
		return err
	}
	for _, g := range gone {
		for _, table := range []string{"facts", "timers"} {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+table+` WHERE source = ? AND entity = ? AND key = ?`), source, g[0], g[1]); err != nil {
				return err
			}
		}
	}
	return s.applyDelta(ctx, tx, source, delta)
}

// applyDelta adds a batch's contributions to the aggregates.
func (s *sqlStore) applyDelta(ctx context.Context, tx *sqlx.Tx, source string, delta aggDelta) error {
	var days [][]any
	for _, k := range slices.SortedFunc(maps.Keys(delta.days), func(a, b dayKey) int {
		return cmpKeys(a.kind+a.day+a.agency, b.kind+b.day+b.agency)
	}) {
		v := delta.days[k]
		if *v == ([nMeasures]int64{}) {
			continue
		}
		row := []any{source, k.kind, k.agency, k.day}
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
		return cmpKeys(a.kind+a.due+a.agency, b.kind+b.due+b.agency)
	}) {
		if v := delta.open[k]; v != [2]int64{} {
			open = append(open, []any{source, k.kind, k.agency, k.due, v[0], v[1]})
		}
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO fact_open (source, kind, agency, due_day, n, supplement) VALUES `,
		` ON CONFLICT (kind, due_day, agency, source) DO UPDATE SET n = fact_open.n + excluded.n,
		supplement = fact_open.supplement + excluded.supplement`, open, nil); err != nil {
		return fmt.Errorf("open counts: %w", err)
	}
	return nil
}

func cmpKeys(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func optBool(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
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
		cond, args := ` AND `+col+` IS NOT NULL`, []any{}
		if !from.IsZero() {
			cond += ` AND ` + col + ` >= ?`
			args = append(args, s.d.timeArg(from))
		}
		if !to.IsZero() {
			cond += ` AND ` + col + ` < ?`
			args = append(args, s.d.timeArg(to))
		}
		return cond, args
	}
	cond, args := rng("received_at")
	err := queryEach(ctx, s.db, s.q(`SELECT agency, COUNT(*), COUNT(CASE WHEN online = ? THEN 1 END), COUNT(online),
		COUNT(CASE WHEN digitised = ? THEN 1 END), COUNT(digitised)
		FROM facts WHERE kind = ?`+cond+` GROUP BY agency`), append([]any{true, true, kind}, args...), func(r *sqlx.Rows) error {
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
	cond, args = rng("finished_at")
	err = queryEach(ctx, s.db, s.q(`SELECT agency, COUNT(*), COUNT(CASE WHEN on_time = ? THEN 1 END), COUNT(CASE WHEN on_time = ? THEN 1 END)
		FROM facts WHERE kind = ?`+cond+` GROUP BY agency`), append([]any{true, false, kind}, args...), func(r *sqlx.Rows) error {
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
	cond, args = rng("supplement_at")
	err = queryEach(ctx, s.db, s.q(`SELECT agency, COUNT(*) FROM facts WHERE kind = ?`+cond+` GROUP BY agency`), append([]any{kind}, args...),
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
		err := queryEach(ctx, s.db, s.q(`SELECT agency, COUNT(*) FROM facts
			WHERE kind = ? AND state = 'open' AND due_at >= ? AND due_at < ? GROUP BY agency`),
			[]any{q.Kind, s.d.timeArg(part.from), s.d.timeArg(part.to)}, func(r *sqlx.Rows) error {
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
