package engine

import (
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"
)

// failSummary turns failed delivery attempts into one log line per sink and
// minute: during a long outage a sink fails thousands of attempts, and one line
// each would drown the log (and the disk). The line says how many attempts
// failed, how many distinct events, and the most frequent errors with counts.
type failSummary struct {
	mu    sync.Mutex
	log   *slog.Logger
	sinks map[string]*sinkFails
}

type sinkFails struct {
	minute   time.Time // the minute being counted (truncated)
	attempts int
	events   map[string]bool
	errs     map[string]int
	first    string // first event that failed in the minute
}

// maxErrTexts bounds the distinct error texts a summary line lists.
const maxErrTexts = 3

func newFailSummary(log *slog.Logger) *failSummary {
	return &failSummary{log: log, sinks: map[string]*sinkFails{}}
}

// record counts one failed attempt at now; a minute that has ended is written first.
func (f *failSummary) record(sink, event, errText string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	minute := now.Truncate(time.Minute)
	s := f.sinks[sink]
	if s != nil && !s.minute.Equal(minute) {
		f.write(sink, s)
		s = nil
	}
	if s == nil {
		s = &sinkFails{minute: minute, events: map[string]bool{}, errs: map[string]int{}, first: event}
		f.sinks[sink] = s
	}
	s.attempts++
	s.events[event] = true
	s.errs[errText]++
}

// flush writes the summaries of minutes that ended before now (all, with force).
func (f *failSummary) flush(now time.Time, force bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	minute := now.Truncate(time.Minute)
	for _, sink := range slices.Sorted(func(yield func(string) bool) {
		for k := range f.sinks {
			if !yield(k) {
				return
			}
		}
	}) {
		s := f.sinks[sink]
		if force || s.minute.Before(minute) {
			f.write(sink, s)
			delete(f.sinks, sink)
		}
	}
}

func (f *failSummary) write(sink string, s *sinkFails) {
	type errCount struct {
		text string
		n    int
	}
	var errs []errCount
	for t, n := range s.errs {
		errs = append(errs, errCount{t, n})
	}
	sort.Slice(errs, func(i, j int) bool {
		if errs[i].n != errs[j].n {
			return errs[i].n > errs[j].n
		}
		return errs[i].text < errs[j].text
	})
	args := []any{"sink", sink, "minute", s.minute.UTC().Format("2006-01-02T15:04Z"), "attempts", s.attempts,
		"events", len(s.events), "first_event", s.first, "distinct_errors", len(errs)}
	for i, e := range errs {
		if i == maxErrTexts {
			break
		}
		args = append(args, "err"+string(rune('1'+i)), e.text, "count"+string(rune('1'+i)), e.n)
	}
	f.log.Warn("deliveries failed this minute, will retry", args...)
}
