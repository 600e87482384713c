package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// cacheBatch is a first-sync batch of new records routed to sinks a and b.
func cacheBatch(at time.Time, keys ...string) Batch {
	b := Batch{Source: "src", At: at}
	for _, k := range keys {
		fields := map[string]any{"code": k, "note": "Nguyễn \"x\""}
		ev := &pipeline.Event{ID: pipeline.EventID("src", "d", k, 1, pipeline.EventCreated, "h"+k), Type: pipeline.EventCreated,
			Source: "src", Entity: "d", Key: k, Version: 1, Snapshot: true, After: fields, DetectedAt: at}
		b.Snapshot = append(b.Snapshot, SnapshotEntry{Entity: "d", Key: k, Hash: "h" + k, Version: 1, Fields: fields, New: true})
		b.Events = append(b.Events, OutboxEvent{Event: ev, Sinks: []string{"a", "b"}})
	}
	return b
}

func keysSeqs(ps []Pending) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = fmt.Sprintf("%d:%s@%d", p.Seq, p.Event.Key, p.Event.Version)
	}
	return out
}

// The feed cache serves what its handle committed, never more than its budget,
// drops what every sink settled, and forgets a record its handle moves on; a
// handle without the cache (another process) reads the same from SQL. On both
// backends.
func TestFeedCache(t *testing.T) {
	at := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var s *sqlStore
			var reopen func() *sqlStore
			if backend == "sqlite" {
				path := filepath.Join(t.TempDir(), "state.db")
				s, reopen = openSQLiteAt(t, path), func() *sqlStore { return openSQLiteAt(t, path) }
			} else {
				dsn := pgSchema(t)
				s, reopen = openPGAt(t, dsn), func() *sqlStore { return openPGAt(t, dsn) }
			}
			ctx := t.Context()
			same := func(what string, sink string) []Pending {
				t.Helper()
				other := reopen()
				other.feeds.limit = -1 // reads SQL only
				want, err := other.Pending(ctx, sink, at, 0)
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.Pending(ctx, sink, at, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(keysSeqs(got), keysSeqs(want)) {
					t.Fatalf("%s: sink %s: cached handle reads %v, SQL %v", what, sink, keysSeqs(got), keysSeqs(want))
				}
				for i := range got {
					// As a sink writes it: a fresh handle that does not know
					// the shape yet builds no AfterJSON, so compare lines.
					g, err1 := pipeline.AppendEventJSON(nil, &got[i].Event)
					w, err2 := pipeline.AppendEventJSON(nil, &want[i].Event)
					if err1 != nil || err2 != nil || string(g) != string(w) {
						t.Fatalf("%s: seq %d: %s (%v), SQL %s (%v)", what, got[i].Seq, g, err1, w, err2)
					}
				}
				return got
			}

			// Served from memory: every row of the commits.
			if err := s.Commit(ctx, cacheBatch(at, "K1", "K2", "K3")); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(ctx, cacheBatch(at, "K4", "K5")); err != nil {
				t.Fatal(err)
			}
			p := same("after two commits", "a")
			if rows, hits := s.feeds.stats(); rows != 5 || hits != 5 {
				t.Fatalf("cache holds %d rows and served %d; want 5 and 5", rows, hits)
			}

			// Settled by a, not b: kept; by both: dropped.
			if _, err := s.Settle(ctx, "a", nil, []Outcome{{Seq: p[0].Seq, Kind: OutcomeDelivered, Attempts: 1, At: at, Feed: true},
				{Seq: p[1].Seq, Kind: OutcomeDelivered, Attempts: 1, At: at, Feed: true}}); err != nil {
				t.Fatal(err)
			}
			if rows, _ := s.feeds.stats(); rows != 5 {
				t.Fatalf("after a's deliveries the cache holds %d rows; want 5 (b waits for them)", rows)
			}
			if _, err := s.Settle(ctx, "b", nil, []Outcome{{Seq: p[0].Seq, Kind: OutcomeDelivered, Attempts: 1, At: at, Feed: true}}); err != nil {
				t.Fatal(err)
			}
			if rows, _ := s.feeds.stats(); rows != 4 {
				t.Fatalf("after both sinks have K1 the cache holds %d rows; want 4", rows)
			}
			same("after deliveries", "a")
			same("after deliveries", "b")

			// A record this handle moves on leaves the cache; its first event
			// comes from the outbox, whole.
			moved := Batch{Source: "src", At: at,
				Snapshot: []SnapshotEntry{{Entity: "d", Key: "K3", Hash: "h2", Version: 2, Fields: map[string]any{"code": "K3"}}},
				Events: []OutboxEvent{{Event: &pipeline.Event{ID: "K3-v2", Type: pipeline.EventUpdated, Source: "src", Entity: "d",
					Key: "K3", Version: 2, After: map[string]any{"code": "K3"}, DetectedAt: at}, Sinks: []string{"a", "b"}}}}
			if err := s.Commit(ctx, moved); err != nil {
				t.Fatal(err)
			}
			if held := s.feeds.take(p[2].Seq-1, p[2].Seq, 1, nil); len(held) != 0 {
				t.Fatalf("the cache still holds K3's seq %d after K3 moved on", p[2].Seq)
			}
			if got := keysSeqs(same("after K3 moved on", "a")); !slices.Contains(got, fmt.Sprintf("%d:K3@1", p[2].Seq)) {
				t.Fatalf("sink a's pending %v lacks K3's first event", got)
			}
			same("after K3 moved on", "b")

			// A budget of about two rows: the oldest blocks leave first.
			s.feeds.limit = 2 * (cacheRowSize(s) + 8)
			if err := s.Commit(ctx, cacheBatch(at, "K6", "K7", "K8")); err != nil {
				t.Fatal(err) // a block over the budget is not kept
			}
			if err := s.Commit(ctx, cacheBatch(at, "K9")); err != nil {
				t.Fatal(err)
			}
			if rows, _ := s.feeds.stats(); rows != 1 || s.feeds.size > s.feeds.limit {
				t.Fatalf("with a budget of two rows the cache holds %d rows, %d bytes (budget %d); want K9 only",
					rows, s.feeds.size, s.feeds.limit)
			}
			same("after eviction", "a")
			same("after eviction", "b")
		})
	}
}

// cacheRowSize is what one of cacheBatch's rows costs the cache.
func cacheRowSize(s *sqlStore) int {
	s.feeds.mu.Lock()
	defer s.feeds.mu.Unlock()
	for _, b := range s.feeds.blocks {
		for _, r := range b.rows[b.first:] {
			if r.fields != nil {
				return r.size()
			}
		}
	}
	return 0
}

// pgSchema is a fresh schema of the test server.
func pgSchema(t *testing.T) string {
	t.Helper()
	dsn, _ := testpg.Schema(t)
	return dsn
}

// openPGAt opens a handle on dsn, closed when the test ends.
func openPGAt(t *testing.T, dsn string) *sqlStore {
	t.Helper()
	st, err := Open(t.Context(), Config{Driver: DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(*sqlStore)
}

// The sink's unfinished blocks are read through the partial index of unfinished
// blocks, not by walking every block the sink ever had (SQLite keeps no
// statistics that would tell its planner so).
func TestSinkBlocksUseTheOpenIndex(t *testing.T) {
	s := openSQLiteAt(t, filepath.Join(t.TempDir(), "state.db"))
	for _, rng := range []blockRange{blocksAfter, blocksUpTo} {
		args := []any{"a", 10}
		var plan []string
		err := queryEach(t.Context(), s.db, `EXPLAIN QUERY PLAN `+sinkBlocksQuery(s.d, rng, 64), args, func(r *sqlx.Rows) error {
			var id, parent, unused int
			var detail string
			if err := r.Scan(&id, &parent, &unused, &detail); err != nil {
				return err
			}
			plan = append(plan, detail)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(plan, func(d string) bool { return strings.Contains(d, "snapshot_feeds_open") }) {
			t.Errorf("sink blocks (range %d) are read by %q; want the index snapshot_feeds_open", rng, plan)
		}
	}
}

// A sink's progress through a block stops before the first seq it has not
// settled, and passes a seq whose row left the feed's index without being
// settled for the sink (the walk through the index decides then), as it did
// when every Settle walked the index.
func TestFeedProgressPassesRowsThatLeftTheIndex(t *testing.T) {
	at := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var s *sqlStore
			if backend == "sqlite" {
				s = openSQLiteAt(t, filepath.Join(t.TempDir(), "state.db"))
			} else {
				s = openPGAt(t, pgSchema(t))
			}
			ctx := t.Context()
			if err := s.Commit(ctx, cacheBatch(at, "K1", "K2", "K3", "K4", "K5")); err != nil {
				t.Fatal(err)
			}
			p, err := s.Pending(ctx, "a", at, 0)
			if err != nil || len(p) != 5 {
				t.Fatalf("pending: %d rows, %v", len(p), err)
			}
			done := func() int64 {
				t.Helper()
				var d int64
				if err := s.db.GetContext(ctx, &d, s.q(`SELECT done FROM snapshot_feeds WHERE sink = ? AND lo = ?`), "a", p[0].Seq); err != nil {
					t.Fatal(err)
				}
				return d
			}
			deliver := func(i int) {
				t.Helper()
				res, err := s.Settle(ctx, "a", nil, []Outcome{{Seq: p[i].Seq, Kind: OutcomeDelivered, Attempts: 1, At: at, Feed: true}})
				if err != nil || res.Errs[0] != nil {
					t.Fatalf("settle %s: %v, %v", p[i].Event.Key, err, res.Errs)
				}
			}
			deliver(0)
			deliver(2)
			if d := done(); d != p[0].Seq {
				t.Fatalf("after K1 and K3: progress %d, want %d (K2 waits)", d, p[0].Seq)
			}
			// K2's row leaves the index with nothing settled for the sink.
			if _, err := s.db.ExecContext(ctx, s.q(`UPDATE snapshot SET lazy_seq = NULL WHERE lazy_seq = ?`), p[1].Seq); err != nil {
				t.Fatal(err)
			}
			deliver(3)
			if d := done(); d != p[3].Seq {
				t.Fatalf("after K4, with K2 out of the index: progress %d, want %d (K5 waits)", d, p[3].Seq)
			}
			deliver(4)
			if d := done(); d != p[4].Seq {
				t.Fatalf("after K5: progress %d, want the block's end %d", d, p[4].Seq)
			}
		})
	}
}
