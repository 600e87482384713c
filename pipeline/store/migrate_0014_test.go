package store

import (
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Migration 0014 carries the facts table over onto the snapshot rows (a fact
// whose record has no row gets a placeholder): the figures count the same after
// it, and a later change of a carried record takes its old contributions out of
// the aggregates.
func TestMigration0014CarriesFactsOver(t *testing.T) {
	for _, tc := range internalStores {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := t.Context()
			applyBefore(t, s, 14)
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := s.db.ExecContext(ctx, s.q(q), args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			utc := func(day, hour int, ns int) time.Time { return time.Date(2026, 11, day, hour, 0, 0, ns, time.UTC) }
			tm := func(day, hour int, ns int) any { return s.d.timeArg(utc(day, hour, ns)) }
			hash := strings.Repeat("0a", 16) // lowercase hex, as records hash
			exec(`INSERT INTO snapshot (source, entity, key, hash, version, fields, deleted, updated_at) VALUES ('motcua', 'dossier', 'HS1', ?, 1, ?, FALSE, ?)`,
				hash, s.d.jsonArg([]byte(`{"code":"HS1"}`)), tm(3, 1, 123000))
			// HS1: open, waiting for a supplement since 3 November, submitted online.
			exec(`INSERT INTO facts (source, entity, key, kind, agency, state, supplement, received_at, received_day, due_at, due_day,
				supplement_at, supplement_day, online) VALUES ('motcua', 'dossier', 'HS1', 'dossier', 'XA-A', 'open', TRUE, ?, '2026-11-02', ?, '2026-11-05', ?, '2026-11-03', TRUE)`,
				tm(2, 3, 0), tm(5, 10, 0), tm(3, 1, 500))
			// HS2, whose record the store does not hold: finished late, on paper, digitised.
			exec(`INSERT INTO facts (source, entity, key, kind, agency, state, received_at, received_day, due_at, due_day,
				finished_at, finished_day, on_time, online, digitised) VALUES ('motcua', 'dossier', 'HS2', 'dossier', 'XA-A', 'finished', ?, '2026-11-01', ?, '2026-11-04', ?, '2026-11-06', FALSE, FALSE, TRUE)`,
				tm(1, 2, 0), tm(4, 2, 0), tm(6, 4, 0))
			for _, d := range []struct {
				day  string
				cols string
			}{
				{"2026-11-01", "received, online_known, digitised, digitised_known"},
				{"2026-11-02", "received, online, online_known"},
				{"2026-11-03", "supplement"},
				{"2026-11-06", "finished, late"},
			} {
				exec(`INSERT INTO fact_days (source, kind, agency, day, `+d.cols+`) VALUES ('motcua', 'dossier', 'XA-A', ?`+
					strings.Repeat(", 1", strings.Count(d.cols, ",")+1)+`)`, d.day)
			}
			exec(`INSERT INTO fact_open (source, kind, agency, due_day, n, supplement) VALUES ('motcua', 'dossier', 'XA-A', '2026-11-05', 1, 1)`)
			if err := migrate(ctx, s.db, s.d); err != nil {
				t.Fatal(err)
			}
			if err := s.readEpoch(ctx); err != nil {
				t.Fatal(err)
			}
			snap, err := s.Snapshot(ctx, "motcua", "dossier", []string{"HS1", "HS2"})
			if err != nil || snap["HS1"].Hash != hash || !snap["HS1"].UpdatedAt.Equal(utc(3, 1, 123000)) || !snap["HS2"].Deleted {
				t.Fatalf("snapshot after the migration = %+v, %v", snap, err)
			}
			if s.d == sqliteDialect {
				var typ string
				if err := s.db.GetContext(ctx, &typ, `SELECT typeof(hash) FROM snapshot WHERE key = 'HS1'`); err != nil || typ != "blob" {
					t.Errorf("SQLite keeps the hash as %s (%v), want its bytes", typ, err)
				}
			}
			// Partial first and last days (counted from the rows), whole days between.
			q := FactQuery{Kind: "dossier", From: utc(2, 2, 0), To: utc(6, 5, 0), Now: utc(5, 12, 0), DueUntil: utc(8, 0, 0)}
			count := func() FactCount {
				t.Helper()
				got, err := s.FactCounts(ctx, q)
				if err != nil || len(got) != 1 {
					t.Fatalf("FactCounts = %+v, %v", got, err)
				}
				return got[0]
			}
			want := FactCount{Agency: "XA-A", Received: 1, Online: 1, OnlineKnown: 1, Finished: 1, Late: 1, Supplement: 1,
				Open: 1, OverdueNow: 1, AwaitingSupplement: 1}
			if got := count(); got != want {
				t.Errorf("after the migration:\n got %+v\nwant %+v", got, want)
			}
			if open, err := s.OpenRecords(ctx, "dossier", []string{"XA-A"}); err != nil || len(open) != 1 || open[0].Key != "HS1" {
				t.Errorf("OpenRecords = %+v, %v", open, err)
			}
			// HS1 finishes on time (its carried facts are its prior ones), HS2 goes.
			at := utc(6, 3, 0)
			err = s.Commit(ctx, Batch{Source: "motcua", At: at,
				Snapshot: []SnapshotEntry{{Entity: "dossier", Key: "HS1", Hash: "h2", Version: 2, Fields: map[string]any{"code": "HS1"}}},
				Facts: []Fact{
					{Entity: "dossier", Key: "HS1", Kind: "dossier", Agency: "XA-A", State: "finished", ReceivedAt: utc(2, 3, 0),
						ReceivedDay: "2026-11-02", DueAt: utc(5, 10, 0), DueDay: "2026-11-05", FinishedAt: at, FinishedDay: "2026-11-06",
						OnTime: new(true), Online: new(true), SeenDay: "2026-11-06"},
					{Entity: "dossier", Key: "HS2", Deleted: true},
				}})
			if err != nil {
				t.Fatal(err)
			}
			want = FactCount{Agency: "XA-A", Received: 1, Online: 1, OnlineKnown: 1, Finished: 1, OnTime: 1, Supplement: 1}
			if got := count(); got != want {
				t.Errorf("after the change:\n got %+v\nwant %+v", got, want)
			}
			days, err := s.DayCounts(ctx, "dossier", "2026-11-01", "2026-11-08")
			if err != nil {
				t.Fatal(err)
			}
			wantDays := []DayCount{{Day: "2026-11-01", Agency: "XA-A"}, {Day: "2026-11-02", Agency: "XA-A", Received: 1}, {Day: "2026-11-03", Agency: "XA-A"},
				{Day: "2026-11-06", Agency: "XA-A", Finished: 1}}
			if len(days) != len(wantDays) {
				t.Fatalf("DayCounts = %+v, want %+v", days, wantDays)
			}
			for i := range days {
				if days[i] != wantDays[i] {
					t.Errorf("DayCounts[%d] = %+v, want %+v", i, days[i], wantDays[i])
				}
			}
		})
	}
}

// A commit that fails after adding a fact group leaves nothing behind, in the
// store or in its cache: the group's id may go to another agency next.
func TestFactGroupsOfAFailedCommitAreForgotten(t *testing.T) {
	for _, tc := range internalStores {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := t.Context()
			if err := migrate(ctx, s.db, s.d); err != nil {
				t.Fatal(err)
			}
			if err := s.readEpoch(ctx); err != nil {
				t.Fatal(err)
			}
			at := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
			fact := func(key, agency string) Fact {
				return Fact{Entity: "dossier", Key: key, Kind: "dossier", Agency: agency, State: "open", ReceivedAt: at, ReceivedDay: "2026-11-02"}
			}
			bad := Batch{Source: "motcua", At: at, Facts: []Fact{fact("HS1", "XA-A")},
				Events: []OutboxEvent{{Event: &pipeline.Event{Type: pipeline.EventCreated, Entity: "dossier", Key: "HS1"}}}} // no id
			if err := s.Commit(ctx, bad); err == nil {
				t.Fatal("a batch with an event without id committed")
			}
			for _, f := range []Fact{fact("HS2", "XA-B"), fact("HS1", "XA-A")} {
				if err := s.Commit(ctx, Batch{Source: "motcua", At: at, Facts: []Fact{f}}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.FactCounts(ctx, FactQuery{Kind: "dossier", From: at, To: at.Add(time.Hour), Now: at})
			if err != nil {
				t.Fatal(err)
			}
			want := []FactCount{{Agency: "XA-A", Received: 1, Open: 1}, {Agency: "XA-B", Received: 1, Open: 1}}
			if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
				t.Errorf("FactCounts = %+v, want %+v", got, want)
			}
		})
	}
}
