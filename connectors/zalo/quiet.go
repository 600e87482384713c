package zalo

import "time"

// quiet is a daily window (minutes after midnight in zone) in which no ZNS is sent.
type quiet struct {
	start, end int
	zone       *time.Location
}

// until reports whether now falls in the window and, if so, when it ends. A window
// whose start is after its end spans midnight (22:00-06:00).
func (q quiet) until(now time.Time) (time.Time, bool) {
	if q.start == q.end || q.zone == nil {
		return time.Time{}, false
	}
	local := now.In(q.zone)
	m := local.Hour()*60 + local.Minute()
	in := false
	if q.start < q.end {
		in = m >= q.start && m < q.end
	} else {
		in = m >= q.start || m < q.end
	}
	if !in {
		return time.Time{}, false
	}
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, q.zone)
	end := day.Add(time.Duration(q.end) * time.Minute)
	if !end.After(local) {
		end = day.AddDate(0, 0, 1).Add(time.Duration(q.end) * time.Minute)
	}
	return end, true
}
