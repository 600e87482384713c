package storetest

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// citizenCounts is what the steering figures count of citizens' feedback and
// ratings (figures.FeedbackSource and figures.RatingSource).
type citizenCounts interface {
	FeedbackCounts(ctx context.Context, from, to time.Time) (received, answered map[string]int, err error)
	RatingCounts(ctx context.Context, from, to time.Time) (map[string][5]int, error)
}

func testCitizenCounts(t *testing.T, s store.Store) {
	c, ctx := cit(t, s), t.Context()
	counts, ok := s.(citizenCounts)
	if !ok {
		t.Fatal("the store does not count feedback and ratings for the steering figures")
	}
	none := func(store.Feedback) []store.OutboxEvent { return nil }
	for i, f := range []store.Feedback{
		{Agency: "A", CreatedAt: t0},
		{Agency: "A", CreatedAt: t0.Add(time.Hour)},
		{Agency: "B", CreatedAt: t0.Add(2 * time.Hour)},
		{Agency: "A", CreatedAt: t0.Add(48 * time.Hour)},
	} {
		f.Origin, f.OAID, f.UserID, f.Text = string(rune('a'+i)), "oa", "u", "góp ý"
		if _, _, err := c.AddFeedback(ctx, f, 2025, "zalo", none); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AnswerFeedback(ctx, "GY-2025-000002", "Đã xử lý", "op", t0.Add(3*time.Hour), "zalo", none); err != nil {
		t.Fatal(err)
	}
	received, answered, err := counts.FeedbackCounts(ctx, t0, t0.Add(24*time.Hour))
	if err != nil || !maps.Equal(received, map[string]int{"A": 2, "B": 1}) || !maps.Equal(answered, map[string]int{"A": 1, "B": 0}) {
		t.Errorf("feedback of the first day: received %v, answered %v, %v", received, answered, err)
	}
	if received, _, _ := counts.FeedbackCounts(ctx, time.Time{}, time.Time{}); received["A"] != 3 {
		t.Errorf("all feedback: received %v", received)
	}
	for _, r := range []store.Rating{
		{Source: "m", Dossier: "1", OAID: "oa", UserID: "u1", Agency: "A", Score: 5, RatedAt: t0},
		{Source: "m", Dossier: "2", OAID: "oa", UserID: "u2", Agency: "A", Score: 5, RatedAt: t0},
		{Source: "m", Dossier: "3", OAID: "oa", UserID: "u3", Agency: "A", Score: 1, RatedAt: t0},
		{Source: "m", Dossier: "4", OAID: "oa", UserID: "u4", Agency: "B", Score: 3, RatedAt: t0.Add(48 * time.Hour)},
	} {
		must(t, c.Rate(ctx, r))
	}
	ratings, err := counts.RatingCounts(ctx, time.Time{}, t0.Add(24*time.Hour))
	if err != nil || len(ratings) != 1 || ratings["A"] != [5]int{1, 0, 0, 0, 2} {
		t.Errorf("ratings of the first day = %v, %v", ratings, err)
	}
}
