package figures_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// citizens is the part of the store the Zalo webhook writes feedback and ratings
// with.
type citizens interface {
	AddFeedback(ctx context.Context, f store.Feedback, year int, source string, emit store.EmitFunc) (store.Feedback, bool, error)
	AnswerFeedback(ctx context.Context, ref, answer, by string, at time.Time, source string, emit store.EmitFunc) (store.Feedback, error)
	Rate(ctx context.Context, r store.Rating) error
}

func TestTheStoreIsTheFiguresFeedbackAndRatingSource(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		seed(t, st)
		c := st.(citizens)
		none := func(store.Feedback) []store.OutboxEvent { return nil }
		for i, f := range []struct {
			agency string
			at     time.Time
			answer bool
		}{
			{"XA-A", vnTime(11, 3, 9), true}, {"XA-A", vnTime(11, 4, 9), false}, {"XA-B", vnTime(11, 5, 9), true},
			{"XA-A", vnTime(10, 30, 9), true}, // before the period
		} {
			fb, _, err := c.AddFeedback(ctx, store.Feedback{Origin: fmt.Sprint("ev", i), OAID: "oa", UserID: "u", Agency: f.agency,
				Text: "Đường hỏng", CreatedAt: f.at.UTC()}, 2026, "zalo", none)
			if err != nil {
				t.Fatal(err)
			}
			if f.answer {
				if _, err := c.AnswerFeedback(ctx, fb.Ref, "Đã sửa", "op", f.at.Add(time.Hour).UTC(), "zalo", none); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, score := range []int{1, 2, 5, 4} {
			if err := c.Rate(ctx, store.Rating{Source: "motcua", Dossier: fmt.Sprint("A", i), OAID: "oa", UserID: "u", Agency: "XA-A",
				Score: score, RatedAt: vnTime(11, 12, 9).UTC()}); err != nil {
				t.Fatal(err)
			}
		}
		svc := service(st)
		fs, ok := st.(figures.FeedbackSource)
		rs, ok2 := st.(figures.RatingSource)
		if !ok || !ok2 {
			t.Fatal("the store is not a feedback and rating source")
		}
		svc.Feedback, svc.Ratings = fs, rs
		idx, err := svc.Index(ctx, november)
		if err != nil {
			t.Fatal(err)
		}
		if fb := idx.Figures.Feedback; fb == nil || *fb != (figures.Feedback{Received: 3, Answered: 2}) {
			t.Errorf("feedback = %+v, want 3 received in November, 2 answered", fb)
		}
		// XA-A: 3 finished, 2 rated 1 or 2: (3-2)/3 x 6 = 2.
		for _, a := range idx.Agencies {
			if a.Code == "XA-A" {
				checkScore(t, "XA-A", indicator(a, "satisfaction_tthc"), ptr(2.0))
			}
		}
	})
}
