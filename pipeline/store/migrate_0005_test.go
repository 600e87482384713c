package store

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
)

// internalStores opens an empty store of each backend with no migrations applied.
var internalStores = []struct {
	name string
	open func(t testing.TB) *sqlStore
}{
	{"sqlite", func(t testing.TB) *sqlStore {
		s, err := openSQLite(t.Context(), Config{Path: filepath.Join(t.TempDir(), "old.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.db.Close() })
		return s
	}},
	{"postgres", func(t testing.TB) *sqlStore {
		dsn, _ := testpg.Schema(t)
		s, err := openPostgres(t.Context(), Config{DSN: dsn, MaxOpenConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.db.Close() })
		return s
	}},
}

// Migration 0005 marks as head exactly the rows the old Pending query would have
// handed out, due or not: each record's oldest waiting row per sink, unless an
// earlier event of the record is a holding dead letter of the sink. It keys
// deliveries by (sink, seq) and keeps the ones recorded.
func TestMigration0005MarksHeads(t *testing.T) {
	for _, tc := range internalStores {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := t.Context()
			applyBefore(t, s, 5)
			at := s.d.timeArg(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
			later := s.d.timeArg(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := s.db.ExecContext(ctx, s.q(q), args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			// Record 1: seqs 1, 2, 3; record 2: seq 4 (dead, holding) then 5, 6;
			// record 3: seq 7 (dead, open) then 8.
			for seq, key := range map[int]string{1: "1", 2: "1", 3: "1", 4: "2", 5: "2", 6: "2", 7: "3", 8: "3"} {
				exec(`INSERT INTO events (seq, id, source, entity, key, type, payload, created_at) VALUES (?, ?, 'src', 'd', ?, 'updated', '{}', ?)`,
					seq, "e"+key+string(rune('0'+seq)), key, at)
			}
			for _, o := range []struct {
				sink   string
				seq    int
				key    string
				nextAt any
			}{
				{"a", 2, "1", later}, {"a", 3, "1", at}, // a: seq 1 delivered; 2 retried later
				{"b", 1, "1", at}, {"b", 3, "1", at},
				{"a", 5, "2", at}, {"a", 6, "2", at}, {"b", 5, "2", at},
				{"a", 8, "3", at},
			} {
				exec(`INSERT INTO outbox (sink, seq, next_at, record) VALUES (?, ?, ?, ?)`, o.sink, o.seq, o.nextAt, "src/d/"+o.key)
			}
			exec(`INSERT INTO dead_letters (sink, seq, event_id, attempts, reason, at, record, state) VALUES ('a', 4, 'e', 1, 'r', ?, 'src/d/2', 'holding')`, at)
			exec(`INSERT INTO dead_letters (sink, seq, event_id, attempts, reason, at, record, state) VALUES ('a', 7, 'e', 1, 'r', ?, 'src/d/3', 'open')`, at)

			exec(`INSERT INTO deliveries (sink, event_id, seq, attempts, delivered_at) VALUES ('a', 'e11', 1, 1, ?)`, at)

			if err := migrate(ctx, s.db, s.d); err != nil {
				t.Fatal(err)
			}
			// Deliveries are kept, now keyed by (sink, seq).
			exec(`INSERT INTO deliveries (sink, event_id, seq, attempts, delivered_at) VALUES ('a', 'e11', 1, 2, ?)
				ON CONFLICT (sink, seq) DO NOTHING`, at)
			var attempts []int
			if err := s.db.SelectContext(ctx, &attempts, `SELECT attempts FROM deliveries`); err != nil || !slices.Equal(attempts, []int{1}) {
				t.Errorf("deliveries after the migration: %v, %v; want the one recorded before", attempts, err)
			}
			var got []string
			if err := s.db.SelectContext(ctx, &got, `SELECT sink || ':' || CAST(seq AS TEXT) FROM outbox WHERE head ORDER BY sink, seq`); err != nil {
				t.Fatal(err)
			}
			want := []string{"a:2", "a:8", "b:1", "b:5"}
			if !slices.Equal(got, want) {
				t.Errorf("heads after the migration = %v, want %v", got, want)
			}
			// And Pending reads them: seq 2 is due later, so a poll at `at` gets 8.
			p, err := s.Pending(ctx, "a", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 0)
			if err != nil || len(p) != 1 || p[0].Seq != 8 {
				t.Errorf("Pending(a) after the migration = %+v, %v; want seq 8", p, err)
			}
		})
	}
}
