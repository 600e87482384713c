package engine

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// memSource is an in-memory table with an integer cursor, for engine tests that are
// about the engine, not about SQL.
type memSource struct {
	mu    sync.Mutex
	rows  map[string]pipeline.Row // by key
	seq   map[string]int64        // cursor value per key
	next  int64
	batch int
	// block, when set, makes ReadBatch wait until it is closed (a slow agency);
	// reading is told (once) that a ReadBatch is waiting on it.
	block   chan struct{}
	reading chan struct{}
	reads   int
	// upper, when set, hides rows whose cursor is above it (a source's lag).
	upper int64
}

func newMemSource(batch int) *memSource {
	return &memSource{rows: map[string]pipeline.Row{}, seq: map[string]int64{}, batch: batch}
}

// put inserts or updates a row, moving it to the end of the cursor order.
func (s *memSource) put(key string, row pipeline.Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	row["code"] = key
	s.rows[key] = row
	s.seq[key] = s.next
}

func (s *memSource) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	if s.block != nil {
		if s.reading != nil {
			select {
			case s.reading <- struct{}{}:
			default:
			}
		}
		select {
		case <-s.block:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	var after int64
	if pos != nil {
		if err := json.Unmarshal(pos, &after); err != nil {
			return nil, false, err
		}
	}
	type kv struct {
		key string
		seq int64
	}
	var list []kv
	for k, q := range s.seq {
		if q > after && (s.upper == 0 || q <= s.upper) {
			list = append(list, kv{k, q})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	if len(list) > s.batch {
		list = list[:s.batch]
	}
	last := after
	for _, it := range list {
		row := pipeline.Row{}
		for k, v := range s.rows[it.key] {
			row[k] = v
		}
		row["seq"] = it.seq
		if err := out.Emit(row); err != nil {
			return nil, false, err
		}
		last = it.seq
	}
	next, _ := json.Marshal(last)
	return next, len(list) < s.batch, nil
}

func (s *memSource) Close() error { return nil }

// recSink records deliveries and fails as told.
type recSink struct {
	mu         sync.Mutex
	got        []*pipeline.Event
	failFor    map[string]int // transient failures to return per key before succeeding
	retryAfter time.Duration  // carried by transient failures when set
	permanent  error          // returned for every event when set
	gate       chan struct{}  // when set, deliveries wait for it to close
	inFlight   atomic.Int32
	peak       atomic.Int32
}

func (s *recSink) Deliver(_ context.Context, ev *pipeline.Event) error {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.permanent != nil {
		return pipeline.Permanent(s.permanent)
	}
	if s.failFor[ev.Key] > 0 {
		s.failFor[ev.Key]--
		err := errors.New("receiver answered 503")
		if s.retryAfter > 0 {
			return pipeline.RetryAfter(err, s.retryAfter)
		}
		return err
	}
	s.got = append(s.got, ev)
	return nil
}

func (s *recSink) Close() error { return nil }

func (s *recSink) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.got))
	for i, ev := range s.got {
		out[i] = ev.Key + "@" + string(rune('0'+ev.Version))
	}
	return out
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
