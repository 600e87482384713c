package store

import (
	"database/sql"
	"fmt"
	"time"
)

// A record's facts live on its snapshot row (migration 0014, decision 0022): the
// commit writes one row per record, and the facts a change replaces come back
// with the look-up Commit does anyway (priorRows).

// Fact states as stored (fact_state).
const (
	stateOther    = 0
	stateOpen     = 1 // the figures' partial index on the due time is for these
	stateFinished = 2
)

// fact_flags bits: each optional bool is a known bit and a value bit.
const (
	flagSupplement     = 1 << iota
	flagOnlineKnown    // 2
	flagOnline         // 4
	flagDigitisedKnown // 8
	flagDigitised      // 16
	flagOnTimeKnown    // 32
	flagOnTime         // 64
)

// factColumns are a snapshot row's fact columns; Group is NULL when the row has
// no facts. Group names the facts' kind and agency (fact_groups; Kind and Agency
// hold them once resolved). Times are unix seconds, days are days since
// 1970-01-01 (the province's date, as the engine computed it).
type factColumns struct {
	Group         sql.NullInt64 `db:"fact_group"`
	Kind, Agency  string        `db:"-"`
	State         sql.NullInt64 `db:"fact_state"`
	Flags         sql.NullInt64 `db:"fact_flags"`
	ReceivedAt    sql.NullInt64 `db:"fact_received_at"`
	DueAt         sql.NullInt64 `db:"fact_due_at"`
	FinishedAt    sql.NullInt64 `db:"fact_finished_at"`
	SupplementAt  sql.NullInt64 `db:"fact_supplement_at"`
	ReceivedDay   sql.NullInt64 `db:"fact_received_day"`
	DueDay        sql.NullInt64 `db:"fact_due_day"`
	FinishedDay   sql.NullInt64 `db:"fact_finished_day"`
	SupplementDay sql.NullInt64 `db:"fact_supplement_day"`
}

// factColumnList names factColumns' columns in the order of factColumns.args.
const factColumnList = `fact_group, fact_state, fact_flags, fact_received_at, fact_due_at, fact_finished_at,
	fact_supplement_at, fact_received_day, fact_due_day, fact_finished_day, fact_supplement_day`

// factConflict sets a row's facts to the inserted ones.
const factConflict = `fact_group = excluded.fact_group, fact_state = excluded.fact_state,
	fact_flags = excluded.fact_flags, fact_received_at = excluded.fact_received_at, fact_due_at = excluded.fact_due_at,
	fact_finished_at = excluded.fact_finished_at, fact_supplement_at = excluded.fact_supplement_at,
	fact_received_day = excluded.fact_received_day, fact_due_day = excluded.fact_due_day,
	fact_finished_day = excluded.fact_finished_day, fact_supplement_day = excluded.fact_supplement_day`

func (c *factColumns) has() bool { return c != nil && c.Group.Valid }

// values are the columns in factColumnList's order.
func (c *factColumns) values() [11]sql.NullInt64 {
	return [11]sql.NullInt64{c.Group, c.State, c.Flags, c.ReceivedAt, c.DueAt, c.FinishedAt, c.SupplementAt,
		c.ReceivedDay, c.DueDay, c.FinishedDay, c.SupplementDay}
}

// appendArgs appends the columns' bind values (nil for NULL) in factColumnList's order.
func (c *factColumns) appendArgs(args []any) []any {
	for _, v := range c.values() {
		if v.Valid {
			args = append(args, v.Int64)
		} else {
			args = append(args, nil)
		}
	}
	return args
}

// storedFact turns a batch's fact into the columns its row keeps, but for Group,
// which the caller resolves from Kind and Agency. prior is the row's facts before
// the batch (nil or without Group: none): the day a supplement was first asked
// for is kept from it. A deleted fact has no columns.
func storedFact(f Fact, prior *factColumns, at time.Time) (factColumns, error) {
	var c factColumns
	if f.Deleted {
		return c, nil
	}
	c.Kind, c.Agency = f.Kind, f.Agency
	var flags int64
	switch f.State {
	case "open":
		c.State.Int64 = stateOpen
	case "finished":
		c.State.Int64 = stateFinished
	default:
		c.State.Int64 = stateOther
	}
	c.State.Valid = true
	if f.Supplement {
		flags |= flagSupplement
	}
	bit := func(b *bool, known, value int64) {
		if b != nil {
			flags |= known
			if *b {
				flags |= value
			}
		}
	}
	bit(f.Online, flagOnlineKnown, flagOnline)
	bit(f.Digitised, flagDigitisedKnown, flagDigitised)
	c.ReceivedAt, c.DueAt = unixTime(f.ReceivedAt), unixTime(f.DueAt)
	var err error
	if c.ReceivedDay, err = dayNumber(f.ReceivedDay); err != nil {
		return c, err
	}
	if c.DueDay, err = dayNumber(f.DueDay); err != nil {
		return c, err
	}
	// A reopened dossier is not counted as finished in any period.
	if f.State == "finished" {
		bit(f.OnTime, flagOnTimeKnown, flagOnTime)
		c.FinishedAt = unixTime(f.FinishedAt)
		if c.FinishedDay, err = dayNumber(f.FinishedDay); err != nil {
			return c, err
		}
	}
	c.Flags = sql.NullInt64{Int64: flags, Valid: true}
	// A supplement is counted on the day it was first seen asked for.
	switch {
	case prior.has() && prior.SupplementDay.Valid:
		c.SupplementAt, c.SupplementDay = prior.SupplementAt, prior.SupplementDay
	case f.Supplement:
		c.SupplementAt = unixTime(at)
		if f.SeenDay == "" {
			c.SupplementDay = sql.NullInt64{Int64: civilDays(at.UTC().Date()), Valid: true}
		} else if c.SupplementDay, err = dayNumber(f.SeenDay); err != nil {
			return c, err
		}
	}
	return c, nil
}

// unixTime is t in unix seconds (rounded down), NULL when t is zero.
func unixTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.Unix(), Valid: true}
}

// unixBound is the bound on stored seconds equivalent to a bound t on the times
// they were cut from: a time cut to s is at or after t exactly when s is at or
// after t rounded up (times with whole seconds, as sources give them).
func unixBound(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// dayNumber reads a YYYY-MM-DD date as days since 1970-01-01; "" is NULL. It
// parses by hand: a first sync reads three dates per record.
func dayNumber(s string) (sql.NullInt64, error) {
	if s == "" {
		return sql.NullInt64{}, nil
	}
	num := func(b string) (int, bool) {
		n := 0
		for i := 0; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	if len(s) == 10 && s[4] == '-' && s[7] == '-' {
		y, ok1 := num(s[:4])
		m, ok2 := num(s[5:7])
		d, ok3 := num(s[8:])
		if ok1 && ok2 && ok3 && m >= 1 && m <= 12 && d >= 1 && d <= daysIn(y, time.Month(m)) {
			return sql.NullInt64{Int64: civilDays(y, time.Month(m), d), Valid: true}, nil
		}
	}
	return sql.NullInt64{}, fmt.Errorf("fact day %q is not a date (YYYY-MM-DD)", s)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// civilDays is the date's days since 1970-01-01.
func civilDays(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// dayString is a day number as YYYY-MM-DD, as fact_days keys its rows.
func dayString(n int64) string {
	return time.Unix(n*86400, 0).UTC().Format(time.DateOnly)
}
