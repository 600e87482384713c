package figures_test

import (
	"math"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// The index of November on the data set of seed, scored by hand from the
// decision's scales (docs/decisions/0018): on-time processing is worth 20 points,
// satisfaction in receiving and processing dossiers 6; online and digitised
// shares are shown as rates (their points are not verified); publicity is not in
// the data.
//
//	XA-A: on time 2 of 3 finished          -> 2/3 x 20 = 13.33
//	      ratings 1,2,4,4,5,5,5 -> 2 unsatisfied (1 or 2) of 3 finished -> (3-2)/3 x 6 = 2.00
//	      online 2 of 3 known                -> rate 0.667, no points
//	      score 15.33 of 26
//	XA-B: on time 0 of 1 -> 0; no rating, 1 finished -> (1-0)/1 x 6 = 6; score 6 of 26
//	SO-X: nothing finished -> no rate, no score; score 0 of 0
//	HUYEN (XA-A + XA-B): on time 2 of 4 -> 10; (4-2)/4 x 6 = 3; score 13 of 26
//	total: on time 2 of 4 -> 10; unsatisfied 2 (XA-A) + 1 (SO-X) -> (4-3)/4 x 6 = 1.5; score 11.5 of 26
func TestServiceIndexScoresWhatTheDataSupports(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		seed(t, st)
		svc := service(st)
		svc.Ratings = fakeRatings{"XA-A": {1, 1, 0, 2, 3}, "SO-X": {1, 0, 0, 0, 0}}
		idx, err := svc.Index(t.Context(), november)
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]figures.AgencyIndex{}
		for _, a := range idx.Agencies {
			by[a.Code] = a
		}
		for _, c := range []struct {
			who       figures.AgencyIndex
			score, of float64
			onTime    *float64 // score of on_time
			sat       *float64 // score of satisfaction_tthc
		}{
			{by["XA-A"], 15.33, 26, ptr(13.33), ptr(2.0)},
			{by["XA-B"], 6, 26, ptr(0.0), ptr(6.0)},
			{by["SO-X"], 0, 0, nil, nil},
			{idx.Parents[0], 13, 26, ptr(10.0), ptr(3.0)},
			{idx.Total, 11.5, 26, ptr(10.0), ptr(1.5)},
		} {
			name := c.who.Code
			if name == "" {
				name = "total"
			}
			if !near(c.who.Score, c.score) || !near(c.who.Of, c.of) {
				t.Errorf("%s: score %v of %v, want %v of %v", name, c.who.Score, c.who.Of, c.score, c.of)
			}
			checkScore(t, name, indicator(c.who, "on_time"), c.onTime)
			checkScore(t, name, indicator(c.who, "satisfaction_tthc"), c.sat)
		}
		online := indicator(by["XA-A"], "online_share")
		if !online.Supported || online.Rate == nil || !near(*online.Rate, 2.0/3) || online.Score != nil {
			t.Errorf("XA-A online share = %+v, want rate 2/3 without points", online)
		}
		unsupported := map[string]bool{}
		for _, g := range idx.Unsupported {
			unsupported[g.ID] = true
		}
		if len(unsupported) != 2 || !unsupported[figures.GroupPublicity] || !unsupported[figures.GroupDigitisation] {
			t.Errorf("unsupported groups = %v, want publicity and digitisation", unsupported)
		}
		for _, id := range []string{"feedback_on_time", "feedback_satisfaction"} {
			if ind := indicator(idx.Total, id); ind.Supported || ind.Why == "" {
				t.Errorf("%s = %+v, want unsupported with a reason", id, ind)
			}
		}
	})
}

func TestServiceIndexWithoutRatingsDoesNotInventSatisfaction(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		seed(t, st)
		idx, err := service(st).Index(t.Context(), november)
		if err != nil {
			t.Fatal(err)
		}
		sat := indicator(idx.Total, "satisfaction_tthc")
		if sat.Supported || sat.Score != nil {
			t.Errorf("satisfaction without ratings = %+v, want unsupported", sat)
		}
		found := false
		for _, g := range idx.Unsupported {
			found = found || g.ID == figures.GroupSatisfaction
		}
		if !found || !near(idx.Total.Score, 10) || !near(idx.Total.Of, 20) {
			t.Errorf("total %v of %v, unsupported %v; want 10 of 20 with satisfaction unsupported", idx.Total.Score, idx.Total.Of, idx.Unsupported)
		}
	})
}

func indicator(a figures.AgencyIndex, id string) figures.IndicatorScore {
	for _, g := range a.Groups {
		for _, i := range g.Indicators {
			if i.ID == id {
				return i
			}
		}
	}
	return figures.IndicatorScore{}
}

func checkScore(t *testing.T, who string, got figures.IndicatorScore, want *float64) {
	t.Helper()
	if (got.Score == nil) != (want == nil) || (want != nil && !near(*got.Score, *want)) {
		t.Errorf("%s %s: score %v, want %v", who, got.ID, deref(got.Score), deref(want))
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
