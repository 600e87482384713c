package api

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
)

// hoSo is one row of the agency's dossier table, in the national portal's field
// names; times are province time, yyyyMMddHHmmss.
func hoSo(code, unit string, channel, status int, received, due, finished string) pipeline.Row {
	r := pipeline.Row{"MaHoSo": code, "MaTTHC": "1.001193", "TenTTHC": "Đăng ký kết hôn", "ChuHoSo": "Nguyễn Văn An",
		"SoDienThoai": "0912345678", "DonViXuLy": unit, "KenhThucHien": channel, "TrangThaiHoSo": status,
		"NgayTiepNhan": received, "NgayHenTra": due}
	if finished != "" {
		r["NgayKetThucXuLy"] = finished
	}
	return r
}

// The data set, at the fixture's now (27 Nov 2026 10:00 province time; "due
// soon" is the default two days, until 29 Nov 10:00):
//
//	PHUOCLAI  P1 finished 8 Nov, due 10 Nov: on time    (online)
//	          P2 finished 6 Nov, due 5 Nov: late
//	          P3 in progress, due 26 Nov 08:00: overdue   (online)
//	          P4 received, due 28 Nov 09:00: due soon
//	          P5 supplement asked, due 3 Dec: neither
//	LONGHAU   L1 finished 15 Nov, due 20 Nov: on time
//	          L2 in progress, due 25 Nov: overdue
//	TANLAN    T1 returned 10 Nov, due 4 Nov: late       (district Cần Đước)
//	          T2 fees due, due 28 Nov 12:00: due soon
func figuresRows() []pipeline.Row {
	return []pipeline.Row{
		hoSo("P1", "UBND-XA-PHUOCLAI", 2, 9, "20261101080000", "20261110080000", "20261108080000"),
		hoSo("P2", "UBND-XA-PHUOCLAI", 1, 10, "20261102080000", "20261105080000", "20261106080000"),
		hoSo("P3", "UBND-XA-PHUOCLAI", 2, 4, "20261120080000", "20261126080000", ""),
		hoSo("P4", "UBND-XA-PHUOCLAI", 1, 2, "20261125080000", "20261128090000", ""),
		hoSo("P5", "UBND-XA-PHUOCLAI", 1, 5, "20261124080000", "20261203080000", ""),
		hoSo("L1", "UBND-XA-LONGHAU", 1, 9, "20261110080000", "20261120080000", "20261115080000"),
		hoSo("L2", "UBND-XA-LONGHAU", 1, 4, "20261115080000", "20261125080000", ""),
		hoSo("T1", "UBND-XA-TANLAN", 1, 10, "20261103080000", "20261104080000", "20261110080000"),
		hoSo("T2", "UBND-XA-TANLAN", 1, 6, "20261126080000", "20261128120000", ""),
	}
}

func synced(t *testing.T) *fixture {
	t.Helper()
	f := newFixtureWith(t, figuresRows())
	if _, err := f.d.Jobs[0].Run(t.Context()); err != nil { // source motcua
		t.Fatal(err)
	}
	return f
}

type want struct {
	received, inProgress, finished, onTime, late, overdue, dueSoon int
	rate                                                           float64 // -1: none
}

func checkCounts(t *testing.T, what string, got figures.Counts, w want) {
	t.Helper()
	rate := -1.0
	if got.OnTimeRate != nil {
		rate = *got.OnTimeRate
	}
	if got.Received != w.received || got.InProgress != w.inProgress || got.Finished != w.finished || got.FinishedOnTime != w.onTime ||
		got.FinishedLate != w.late || got.OverdueNow != w.overdue || got.DueSoon != w.dueSoon || math.Abs(rate-w.rate) > 1e-9 {
		t.Errorf("%s: got %+v (rate %v), want %+v", what, got, rate, w)
	}
}

func byCode(list []figures.AgencyFigures) map[string]figures.AgencyFigures {
	out := map[string]figures.AgencyFigures{}
	for _, a := range list {
		out[a.Code] = a
	}
	return out
}

func TestFiguresAreCountedAtQueryTimeFromTheSyncedRecords(t *testing.T) {
	f := synced(t)
	var fig figures.Figures
	if code := f.call("GET", "/api/v1/figures", viewerToken, nil, &fig); code != 200 {
		t.Fatalf("GET /api/v1/figures = %d", code)
	}
	ag, parents := byCode(fig.Agencies), byCode(fig.Parents)
	checkCounts(t, "Phước Lại", ag["UBND-XA-PHUOCLAI"].Counts, want{5, 3, 2, 1, 1, 1, 1, 0.5})
	checkCounts(t, "Long Hậu", ag["UBND-XA-LONGHAU"].Counts, want{2, 1, 1, 1, 0, 1, 0, 1})
	checkCounts(t, "Tân Lân", ag["UBND-XA-TANLAN"].Counts, want{2, 1, 1, 0, 1, 0, 1, 0})
	checkCounts(t, "Cần Giuộc (district)", parents["HUYEN-CANGIUOC"].Counts, want{7, 4, 3, 2, 1, 2, 1, 2.0 / 3})
	checkCounts(t, "Cần Đước (district)", parents["HUYEN-CANDUOC"].Counts, want{2, 1, 1, 0, 1, 0, 1, 0})
	checkCounts(t, "total", fig.Total.Counts, want{9, 5, 4, 2, 2, 2, 2, 0.5})
	if p := ag["UBND-XA-PHUOCLAI"]; p.Online != 2 || p.OnlineKnown != 5 || p.AwaitingSupplement != 1 {
		t.Errorf("Phước Lại online %d of %d, awaiting supplement %d; want 2 of 5, 1", p.Online, p.OnlineKnown, p.AwaitingSupplement)
	}

	// A period from 20 Nov: flows count only what happened in it; states do not move.
	fig = figures.Figures{}
	f.call("GET", "/api/v1/figures?from=2026-11-20", viewerToken, nil, &fig)
	checkCounts(t, "total from 20 Nov", fig.Total.Counts, want{4, 5, 0, 0, 0, 2, 2, -1})
	// A wider due-soon window: P5 (due 3 Dec) joins.
	fig = figures.Figures{}
	f.call("GET", "/api/v1/figures?due_within=7d&agency=UBND-XA-PHUOCLAI", viewerToken, nil, &fig)
	if len(fig.Agencies) != 1 || fig.Total.DueSoon != 2 {
		t.Errorf("Phước Lại due within 7 days: %d agencies, %d due soon; want 1, 2", len(fig.Agencies), fig.Total.DueSoon)
	}
	for _, bad := range []string{"from=2026-11-28&to=2026-11-01", "due_within=soon", "from=yesterday"} {
		if code := f.call("GET", "/api/v1/figures?"+bad, viewerToken, nil, nil); code != 400 {
			t.Errorf("?%s = %d, want 400", bad, code)
		}
	}
}

func TestADistrictTokenSeesOnlyItsDistrictsFigures(t *testing.T) {
	f := synced(t)
	for _, c := range []struct {
		token, query string
		agencies     []string
		total        want
	}{
		{canDuocToken, "", []string{"HUYEN-CANDUOC", "UBND-XA-TANLAN"}, want{2, 1, 1, 0, 1, 0, 1, 0}},
		{canDuocToken, "?agency=UBND-XA-PHUOCLAI", nil, want{0, 0, 0, 0, 0, 0, 0, -1}},
		{districtToken, "", []string{"UBND-XA-LONGHAU"}, want{2, 1, 1, 1, 0, 1, 0, 1}},
		{districtToken, "?agency=HUYEN-CANGIUOC", []string{"UBND-XA-LONGHAU"}, want{2, 1, 1, 1, 0, 1, 0, 1}}, // its part of the district
		{districtToken, "?agency=HUYEN-CANDUOC", nil, want{0, 0, 0, 0, 0, 0, 0, -1}},
	} {
		var fig figures.Figures
		f.call("GET", "/api/v1/figures"+c.query, c.token, nil, &fig)
		var codes []string
		for _, a := range fig.Agencies {
			codes = append(codes, a.Code)
		}
		if !slices.Equal(codes, c.agencies) {
			t.Errorf("%s%s sees agencies %v, want %v", c.token, c.query, codes, c.agencies)
		}
		checkCounts(t, c.token+c.query+" total", fig.Total.Counts, c.total)
		var days struct{ Days []figures.Day }
		f.call("GET", "/api/v1/figures/daily?from=2026-11-01"+map[bool]string{true: "&" + c.query[min(1, len(c.query)):], false: ""}[c.query != ""], c.token, nil, &days)
		received := 0
		for _, d := range days.Days {
			received += d.Received
		}
		if received != c.total.received {
			t.Errorf("%s%s: daily series sums to %d received, want %d", c.token, c.query, received, c.total.received)
		}
	}
}

func TestDailySeriesCountsPerProvinceDay(t *testing.T) {
	f := synced(t)
	var days struct{ Days []figures.Day }
	if code := f.call("GET", "/api/v1/figures/daily?from=2026-11-20&to=2026-11-27", viewerToken, nil, &days); code != 200 {
		t.Fatalf("daily = %d", code)
	}
	got := map[string]int{}
	for _, d := range days.Days {
		got[d.Day] = d.Received
	}
	if len(days.Days) != 7 || got["2026-11-20"] != 1 || got["2026-11-24"] != 1 || got["2026-11-25"] != 1 || got["2026-11-26"] != 1 || got["2026-11-21"] != 0 {
		t.Errorf("daily = %+v", days.Days)
	}
}

func TestQualityIndexScoresTheSupportedIndicators(t *testing.T) {
	f := synced(t)
	var q struct {
		Agencies    []figures.AgencyIndex
		Total       figures.AgencyIndex
		Unsupported []figures.GroupScore
	}
	if code := f.call("GET", "/api/v1/quality?agency=UBND-XA-PHUOCLAI", viewerToken, nil, &q); code != 200 {
		t.Fatalf("quality = %d", code)
	}
	if len(q.Agencies) != 1 {
		t.Fatalf("quality agencies = %+v", q.Agencies)
	}
	scores, rates := map[string]float64{}, map[string]float64{}
	for _, g := range q.Agencies[0].Groups {
		for _, ind := range g.Indicators {
			if ind.Score != nil {
				scores[ind.ID] = *ind.Score
			}
			if ind.Rate != nil {
				rates[ind.ID] = *ind.Rate
			}
		}
	}
	// On time: 1 of 2 finished, × 20 points = 10. Satisfaction: 2 finished, no
	// rating of 1 or 2, (2 − 0) / 2 × 6 points = 6. Online: 2 of 5 received, a rate
	// (its points are not verified, so it scores nothing).
	if scores["on_time"] != 10 || scores["satisfaction_tthc"] != 6 || rates["online_share"] != 0.4 || q.Agencies[0].Score != 16 {
		t.Errorf("Phước Lại's scores = %v, rates %v (total %v), want on_time 10, satisfaction_tthc 6, online_share rate 0.4, total 16", scores, rates, q.Agencies[0].Score)
	}
	var unsupported []string
	for _, g := range q.Unsupported {
		unsupported = append(unsupported, g.ID)
		for _, ind := range g.Indicators {
			if ind.Why == "" {
				t.Errorf("indicator %s of unsupported group %s has no reason", ind.ID, g.ID)
			}
		}
	}
	if !slices.Contains(unsupported, figures.GroupPublicity) || !slices.Contains(unsupported, figures.GroupDigitisation) {
		t.Errorf("unsupported groups = %v, want publicity and digitisation among them", unsupported)
	}
}

func TestDeadlineAlertsListTheTimerRulesEvents(t *testing.T) {
	// The first sync three days earlier arms the timers (thresholds already passed
	// then are a snapshot's, and fire nothing); by now, some have come due.
	f := newFixtureWith(t, figuresRows())
	f.clock.Store(now.Add(-72 * time.Hour).UnixNano())
	if _, err := f.d.Jobs[0].Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.clock.Store(now.UnixNano())
	f.d.FireTimers(t.Context())
	var a struct {
		Rules  []string
		Events []eventJSON
	}
	if code := f.call("GET", "/api/v1/alerts", viewerToken, nil, &a); code != 200 {
		t.Fatalf("alerts = %d", code)
	}
	if !slices.Contains(a.Rules, "deadline.due_soon") || !slices.Contains(a.Rules, "deadline.overdue") {
		t.Errorf("alert rules = %v", a.Rules)
	}
	got := map[string]bool{}
	for _, e := range a.Events {
		got[e.Key+" "+e.Rule] = true
	}
	// Between the two clocks: P3 (due 26 Nov 08:00) and L2 (25 Nov) became
	// overdue; P4 (due 28 Nov 09:00) and T2 (28 Nov 12:00) came within two days.
	// P5 (3 Dec) is not near; finished dossiers fire nothing.
	want := []string{"L2 deadline.overdue", "P3 deadline.overdue", "P4 deadline.due_soon", "T2 deadline.due_soon"}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Errorf("alerts = %v, want %v", keys, want)
	}
	a.Events = nil
	f.call("GET", "/api/v1/alerts", districtToken, nil, &a)
	for _, e := range a.Events {
		if e.Agency != "UBND-XA-LONGHAU" {
			t.Errorf("the Long Hậu token sees an alert of %s", e.Agency)
		}
	}
	if len(a.Events) == 0 {
		t.Error("the Long Hậu token sees no alert (L2 is overdue)")
	}
}
