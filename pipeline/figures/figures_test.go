package figures_test

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// The province's zone: UTC+7 all year.
var vn = time.FixedZone("ICT", 7*3600)

// now is 20 November 2026, 09:00 in Vietnam (02:00 UTC).
var now = time.Date(2026, 11, 20, 9, 0, 0, 0, vn)

func vnTime(month time.Month, day, hour int) time.Time {
	return time.Date(2026, month, day, hour, 0, 0, 0, vn)
}

func ptr[T any](v T) *T { return &v }

// backends runs a test on both store backends.
func backends(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := store.Open(t.Context(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "state.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, _ := testpg.Schema(t)
		st, err := store.Open(t.Context(), store.Config{Driver: store.DriverPostgres, DSN: dsn, MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}

var agencies = []figures.Agency{
	{Code: "HUYEN", Name: "Huyện Cần Giuộc"},
	{Code: "XA-A", Name: "UBND xã Phước Lại", Parent: "HUYEN"},
	{Code: "XA-B", Name: "UBND xã Long Hậu", Parent: "HUYEN"},
	{Code: "SO-X", Name: "Sở Xây dựng"},
}

// dossier is a fact of kind dossier; the test sets what it needs.
func dossier(key, agency, state string, received time.Time) store.Fact {
	f := store.Fact{Entity: "dossier", Key: key, Kind: "dossier", Agency: agency, State: state, ReceivedAt: received.UTC()}
	if !received.IsZero() {
		f.ReceivedDay = received.In(vn).Format(time.DateOnly)
	}
	return f
}

func finished(f store.Fact, at, due time.Time) store.Fact {
	f.FinishedAt, f.DueAt, f.DueDay = at.UTC(), due.UTC(), due.In(vn).Format(time.DateOnly)
	f.FinishedDay = at.In(vn).Format(time.DateOnly)
	f.OnTime = ptr(!at.After(due))
	return f
}

func due(f store.Fact, at time.Time) store.Fact {
	f.DueAt, f.DueDay = at.UTC(), at.In(vn).Format(time.DateOnly)
	return f
}

func online(f store.Fact, v bool) store.Fact {
	f.Online = &v
	return f
}

// seed stores the hand-made data set; the expected figures below are counted
// from it by hand.
//
// XA-A (parent HUYEN)
//
//	A1 received 2 Nov, in progress, due 19 Nov          -> overdue now; online
//	A2 received 5 Nov, in progress, due 21 Nov 15:00 VN -> due soon (within 48h of now); not online
//	A3 received 6 Nov, in progress, supplement asked 6 Nov, due 30 Nov -> supplement request, awaiting
//	A4 received 3 Nov, finished 10 Nov, due 12 Nov      -> on time; online
//	A5 received 20 Oct (before the period), finished 15 Nov, due 14 Nov -> late
//	A6 received 8 Nov, finished 9 Nov exactly at its due time -> on time (on or before)
//	A7 received 10 Nov, rejected (other)                 -> received only
//
// XA-B (parent HUYEN)
//
//	B1 received 1 Nov 00:30 VN (31 Oct UTC), in progress, due 20 Nov 08:00 VN -> in the period; overdue now; online
//	B2 received 31 Oct 23:30 VN, in progress, due exactly now + 48h -> not in the period; not due soon (the window is [now, now+48h))
//	B3 received 12 Nov, finished 12 Nov 16:00, due 12 Nov 10:00 -> late
//
// SO-X: X1 received 15 Nov, in progress, due exactly now -> due soon, not overdue
// LA (not declared): L1 received 16 Nov, in progress, no due date
func seed(t *testing.T, st store.Store) {
	ctx := t.Context()
	commit := func(at time.Time, facts ...store.Fact) {
		t.Helper()
		if err := st.Commit(ctx, store.Batch{Source: "motcua", At: at.UTC(), Facts: facts}); err != nil {
			t.Fatal(err)
		}
	}
	a3 := due(dossier("A3", "XA-A", "open", vnTime(11, 6, 8)), vnTime(11, 30, 17))
	a3.Supplement, a3.SeenDay = true, "2026-11-06"
	commit(vnTime(11, 6, 9), a3)
	commit(vnTime(11, 20, 8),
		online(due(dossier("A1", "XA-A", "open", vnTime(11, 2, 8)), vnTime(11, 19, 17)), true),
		online(due(dossier("A2", "XA-A", "open", vnTime(11, 5, 8)), vnTime(11, 21, 15)), false),
		online(finished(dossier("A4", "XA-A", "finished", vnTime(11, 3, 8)), vnTime(11, 10, 10), vnTime(11, 12, 17)), true),
		finished(dossier("A5", "XA-A", "finished", vnTime(10, 20, 8)), vnTime(11, 15, 10), vnTime(11, 14, 17)),
		finished(dossier("A6", "XA-A", "finished", vnTime(11, 8, 8)), vnTime(11, 9, 17), vnTime(11, 9, 17)),
		dossier("A7", "XA-A", "other", vnTime(11, 10, 8)),
		online(due(dossier("B1", "XA-B", "open", time.Date(2026, 11, 1, 0, 30, 0, 0, vn)), vnTime(11, 20, 8)), true),
		due(dossier("B2", "XA-B", "open", time.Date(2026, 10, 31, 23, 30, 0, 0, vn)), now.Add(48*time.Hour)),
		finished(dossier("B3", "XA-B", "finished", vnTime(11, 12, 8)), vnTime(11, 12, 16), vnTime(11, 12, 10)),
		due(dossier("X1", "SO-X", "open", vnTime(11, 15, 8)), now),
		dossier("L1", "LA", "open", vnTime(11, 16, 8)),
		// Outages announced: one in the period, one before it.
		store.Fact{Entity: "outage", Key: "O1", Kind: "outage", Agency: "XA-A", State: "other", ReceivedAt: vnTime(11, 18, 7).UTC(), ReceivedDay: "2026-11-18"},
		store.Fact{Entity: "outage", Key: "O2", Kind: "outage", Agency: "XA-A", State: "other", ReceivedAt: vnTime(10, 18, 7).UTC(), ReceivedDay: "2026-10-18"},
	)
	// Notices of the zalo sink (prices OA 0, ZNS 300, SMS 800 đồng).
	for _, s := range []store.ZaloSend{
		{Sink: "zalo", EventID: "e1", Parts: 1, Route: store.ZaloRouteOA, Agency: "XA-A", Month: "2026-11", At: vnTime(11, 10, 9).UTC()},
		{Sink: "zalo", EventID: "e2", Parts: 1, Route: store.ZaloRouteZNS, Agency: "XA-A", Month: "2026-11", At: vnTime(11, 11, 9).UTC()},
		{Sink: "zalo", EventID: "e3", Parts: 1, Route: store.ZaloRouteUndeliverable, Agency: "XA-A", Month: "2026-11", At: vnTime(11, 12, 9).UTC()},
		{Sink: "zalo", EventID: "e4", Part: 0, Parts: 2, Route: store.ZaloRouteOA, Agency: "XA-B", Month: "2026-11", At: vnTime(11, 13, 9).UTC()},
		{Sink: "zalo", EventID: "e4", Part: 1, Parts: 2, Route: store.ZaloRouteOA, Agency: "XA-B", Month: "2026-11", At: vnTime(11, 13, 9).UTC()},
		// Before the period: not counted.
		{Sink: "zalo", EventID: "e0", Parts: 1, Route: store.ZaloRouteOA, Agency: "XA-A", Month: "2026-10", At: vnTime(10, 13, 9).UTC()},
	} {
		if err := st.RecordZaloSend(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// Two notices of XA-A still in the zalo sink's outbox; one of them is then
	// given up (dead letters): one deferred, one failed.
	ev := func(key string) store.OutboxEvent {
		return store.OutboxEvent{Sinks: []string{"zalo"}, Event: &pipeline.Event{ID: "ev-" + key, Type: "rule", Rule: "dossier.result_ready",
			Source: "motcua", Entity: "dossier", Key: key, Agency: "XA-A", Version: 1, DetectedAt: now.UTC()}}
	}
	if err := st.Commit(ctx, store.Batch{Source: "motcua", At: now.UTC(), Events: []store.OutboxEvent{ev("A4"), ev("A6")}}); err != nil {
		t.Fatal(err)
	}
	pending, err := st.Pending(ctx, "zalo", now.UTC(), 10)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending = %v, %v", pending, err)
	}
	if err := st.Dead(ctx, "zalo", pending[0].Seq, 3, "số điện thoại không nhận ZNS", now.UTC(), store.OnDeadSkip); err != nil {
		t.Fatal(err)
	}
}

type fakeFeedback map[string]figures.Feedback

func (f fakeFeedback) FeedbackCounts(ctx context.Context, from, to time.Time) (received, answered map[string]int, err error) {
	received, answered = map[string]int{}, map[string]int{}
	for code, fb := range f {
		received[code], answered[code] = fb.Received, fb.Answered
	}
	return received, answered, nil
}

type fakeRatings map[string][5]int

func (f fakeRatings) RatingCounts(ctx context.Context, from, to time.Time) (map[string][5]int, error) {
	return f, nil
}

func service(st store.Store) *figures.Service {
	return &figures.Service{
		Store: st.(store.FactStore), Agencies: figures.NewDirectory(agencies), Clock: func() time.Time { return now }, Zone: vn,
		NoticeSinks: map[string]figures.Prices{"zalo": {OA: 0, ZNS: 300, SMS: 800}},
	}
}

var november = figures.Query{From: vnTime(11, 1, 0), To: vnTime(12, 1, 0)}

func rate(num, den int) *float64 { r := float64(num) / float64(den); return &r }

func TestFiguresAreCountedAtQueryTimeFromTheSyncedRecords(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		seed(t, st)
		svc := service(st)
		svc.Feedback = fakeFeedback{"XA-A": {Received: 3, Answered: 2}, "SO-X": {Received: 1}}
		got, err := svc.Figures(t.Context(), november)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]figures.Counts{
			"XA-A": {Received: 6, InProgress: 3, Finished: 3, FinishedOnTime: 2, FinishedLate: 1, OnTimeRate: rate(2, 3),
				OverdueNow: 1, DueSoon: 1, SupplementRequests: 1, AwaitingSupplement: 1, Online: 2, OnlineKnown: 3},
			"XA-B": {Received: 2, InProgress: 2, Finished: 1, FinishedLate: 1, OnTimeRate: rate(0, 1), OverdueNow: 1,
				Online: 1, OnlineKnown: 1},
			"SO-X":  {Received: 1, InProgress: 1, DueSoon: 1},
			"LA":    {Received: 1, InProgress: 1},
			"HUYEN": {},
		}
		if len(got.Agencies) != len(want) {
			t.Errorf("agencies: got %d, want %d: %+v", len(got.Agencies), len(want), got.Agencies)
		}
		for _, a := range got.Agencies {
			checkCounts(t, a.Code, a.Counts, want[a.Code])
		}
		if len(got.Parents) != 1 || got.Parents[0].Code != "HUYEN" {
			t.Fatalf("parents = %+v, want HUYEN only", got.Parents)
		}
		checkCounts(t, "parent HUYEN", got.Parents[0].Counts, figures.Counts{Received: 8, InProgress: 5, Finished: 4,
			FinishedOnTime: 2, FinishedLate: 2, OnTimeRate: rate(2, 4), OverdueNow: 2, DueSoon: 1, SupplementRequests: 1,
			AwaitingSupplement: 1, Online: 3, OnlineKnown: 4})
		checkCounts(t, "total", got.Total.Counts, figures.Counts{Received: 10, InProgress: 7, Finished: 4,
			FinishedOnTime: 2, FinishedLate: 2, OnTimeRate: rate(2, 4), OverdueNow: 2, DueSoon: 2, SupplementRequests: 1,
			AwaitingSupplement: 1, Online: 3, OnlineKnown: 4})

		// Notices: XA-A one OA (saves 800), one ZNS (saves 800-300), one
		// undeliverable, one deferred, one failed; XA-B one OA in two parts
		// (saves 800). Total saving 2,100 đồng.
		byCode := map[string]figures.AgencyFigures{}
		for _, a := range got.Agencies {
			byCode[a.Code] = a
		}
		na := byCode["XA-A"].Notices
		if na.OA != 1 || na.ZNS != 1 || na.Undeliverable != 1 || na.Deferred != 1 || na.Failed != 1 || na.Messages != 3 ||
			na.SavingDong == nil || *na.SavingDong != 1300 {
			t.Errorf("XA-A notices = %+v (saving %v), want oa 1, zns 1, undeliverable 1, deferred 1, failed 1, 3 messages, saving 1300", na, deref(na.SavingDong))
		}
		tn := got.Total.Notices
		if tn.OA != 2 || tn.Messages != 5 || tn.SavingDong == nil || *tn.SavingDong != 2100 {
			t.Errorf("total notices = %+v (saving %v), want oa 2, 5 messages, saving 2100", tn, deref(tn.SavingDong))
		}
		if byCode["XA-A"].Outages != 1 || got.Total.Outages != 1 {
			t.Errorf("outages: XA-A %d, total %d; want 1 and 1", byCode["XA-A"].Outages, got.Total.Outages)
		}
		if got.Feedback == nil || *got.Feedback != (figures.Feedback{Received: 4, Answered: 2}) {
			t.Errorf("feedback = %+v, want 4 received, 2 answered", got.Feedback)
		}
		if !got.Now.Equal(now) {
			t.Errorf("now = %v, want the injected clock's %v", got.Now, now)
		}
	})
}

func TestFiguresMoveWithTheClockNotWithTheData(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		seed(t, st)
		svc := service(st)
		// Two days later nothing was synced, yet A2, X1 and B2 are overdue now.
		later := now.Add(48*time.Hour + time.Minute)
		svc.Clock = func() time.Time { return later }
		got, err := svc.Figures(t.Context(), november)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total.OverdueNow != 5 {
			t.Errorf("overdue now two days later = %d, want 5 (A1, A2, B1, B2, X1)", got.Total.OverdueNow)
		}
	})
}

func TestFiguresOfADistrictScopeHideOtherAgencies(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		seed(t, st)
		svc := service(st)
		svc.Feedback = fakeFeedback{"XA-A": {Received: 3, Answered: 2}, "SO-X": {Received: 1}}
		q := november
		q.Scope = []string{"HUYEN"}
		got, err := svc.Figures(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range got.Agencies {
			if a.Code != "HUYEN" && a.Code != "XA-A" && a.Code != "XA-B" {
				t.Errorf("scope HUYEN shows agency %s", a.Code)
			}
		}
		if got.Total.Received != 8 || got.Total.DueSoon != 1 || got.Total.Notices.OA != 2 {
			t.Errorf("scoped total = %+v, want the district's 8 received, 1 due soon, 2 OA notices", got.Total)
		}
		if got.Feedback == nil || got.Feedback.Received != 3 {
			t.Errorf("scoped feedback = %+v, want XA-A's 3 only", got.Feedback)
		}
		q.Agency = "XA-B"
		got, err = svc.Figures(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Agencies) != 1 || got.Agencies[0].Code != "XA-B" || got.Total.Received != 2 {
			t.Errorf("filter XA-B within HUYEN = %+v", got.Agencies)
		}
	})
}

func TestFiguresWithoutFeedbackSourceSayNotAvailable(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		got, err := service(st).Figures(t.Context(), november)
		if err != nil {
			t.Fatal(err)
		}
		if got.Feedback != nil {
			t.Errorf("feedback = %+v, want nil (not available)", got.Feedback)
		}
		j, _ := json.Marshal(got)
		var m map[string]any
		_ = json.Unmarshal(j, &m)
		if v, ok := m["feedback"]; !ok || v != nil {
			t.Errorf("JSON feedback = %v, want null", v)
		}
	})
}

func TestDailySeriesCountsDaysInTheProvinceZone(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		seed(t, st)
		days, err := service(st).Daily(t.Context(), figures.Query{From: vnTime(10, 31, 0), To: vnTime(11, 3, 0)})
		if err != nil {
			t.Fatal(err)
		}
		// 31 Oct: B2 (23:30 VN); 1 Nov: B1 (00:30 VN); 2 Nov: A1. The period ends
		// at 3 Nov 00:00: 3 Nov (A4) is not in it.
		want := []figures.Day{{Day: "2026-10-31", Received: 1}, {Day: "2026-11-01", Received: 1}, {Day: "2026-11-02", Received: 1}}
		if len(days) != len(want) {
			t.Fatalf("days = %+v, want %+v", days, want)
		}
		for i := range want {
			if days[i] != want[i] {
				t.Errorf("day %d = %+v, want %+v", i, days[i], want[i])
			}
		}
	})
}

func TestBadQueriesAreRefused(t *testing.T) {
	svc := &figures.Service{Clock: func() time.Time { return now }}
	if _, err := svc.Figures(t.Context(), figures.Query{From: now, To: now.Add(-time.Hour)}); err == nil {
		t.Error("from after to: no error")
	}
	if _, err := svc.Figures(t.Context(), figures.Query{DueWithin: -time.Hour}); err == nil {
		t.Error("negative due_within: no error")
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func checkCounts(t *testing.T, who string, got, want figures.Counts) {
	t.Helper()
	gr, wr := got.OnTimeRate, want.OnTimeRate
	got.OnTimeRate, want.OnTimeRate = nil, nil
	if got != want {
		t.Errorf("%s:\n got  %+v\n want %+v", who, got, want)
	}
	if (gr == nil) != (wr == nil) || (gr != nil && math.Abs(*gr-*wr) > 1e-9) {
		t.Errorf("%s: on-time rate %v, want %v", who, deref(gr), deref(wr))
	}
}
