package engine

import (
	"testing"
	"time"
)

// factDay writes the day itself; it must agree with time.DateOnly in the job's
// zone, including around midnight there and for years Format pads or signs.
func TestFactDayIsDateOnlyInTheZone(t *testing.T) {
	ict := time.FixedZone("ICT", 7*3600)
	for _, zone := range []*time.Location{nil, time.UTC, ict} {
		j := &Job{Zone: zone}
		in := zone
		if in == nil {
			in = time.UTC
		}
		for _, at := range []time.Time{
			time.Date(2026, 11, 27, 16, 59, 59, 0, time.UTC),
			time.Date(2026, 11, 27, 17, 0, 0, 0, time.UTC), // midnight in ICT
			time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC),
			time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
			time.Date(999, 3, 9, 12, 0, 0, 0, time.UTC),
			time.Date(9999, 12, 31, 12, 0, 0, 0, time.UTC),
			time.Date(10000, 1, 1, 12, 0, 0, 0, time.UTC),
			time.Date(-5, 6, 7, 12, 0, 0, 0, time.UTC),
		} {
			if got, want := j.factDay(at), at.In(in).Format(time.DateOnly); got != want {
				t.Errorf("zone %v: factDay(%v) = %q, want %q", zone, at, got, want)
			}
		}
		if got := j.factDay(time.Time{}); got != "" {
			t.Errorf("factDay of no time = %q, want empty", got)
		}
	}
}
