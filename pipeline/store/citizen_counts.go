package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// FeedbackCounts counts, per agency, citizens' feedback received in [from, to)
// (zero bounds are open) and how much of it has an answer: the steering figures'
// feedback (figures.FeedbackSource).
func (s *sqlStore) FeedbackCounts(ctx context.Context, from, to time.Time) (received, answered map[string]int, err error) {
	where, args := s.periodWhere("created_at", from, to)
	received, answered = map[string]int{}, map[string]int{}
	err = queryEach(ctx, s.db, s.q(`SELECT agency, COUNT(*), COUNT(CASE WHEN answer <> '' THEN 1 END) FROM feedback`+where+` GROUP BY agency`), args,
		func(r *sqlx.Rows) error {
			var a string
			var n, ans int
			if err := r.Scan(&a, &n, &ans); err != nil {
				return err
			}
			received[a], answered[a] = n, ans
			return nil
		})
	if err != nil {
		return nil, nil, fmt.Errorf("store: count feedback: %w", err)
	}
	return received, answered, nil
}

// RatingCounts counts, per agency, citizens' ratings given in [from, to) by score
// (counts[0] is how many gave 1): the index's satisfaction (figures.RatingSource).
func (s *sqlStore) RatingCounts(ctx context.Context, from, to time.Time) (map[string][5]int, error) {
	where, args := s.periodWhere("rated_at", from, to)
	out := map[string][5]int{}
	err := queryEach(ctx, s.db, s.q(`SELECT agency, score, COUNT(*) FROM ratings`+where+` GROUP BY agency, score`), args,
		func(r *sqlx.Rows) error {
			var a string
			var score, n int
			if err := r.Scan(&a, &score, &n); err != nil {
				return err
			}
			if score >= 1 && score <= 5 { // the table's CHECK keeps it so
				c := out[a]
				c[score-1] = n
				out[a] = c
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("store: count ratings: %w", err)
	}
	return out, nil
}

// periodWhere bounds a time column to [from, to); zero bounds are open. col is a
// constant of this package, never input.
func (s *sqlStore) periodWhere(col string, from, to time.Time) (string, []any) {
	where, args := "", []any{}
	add := func(cond string, t time.Time) {
		if where == "" {
			where = " WHERE "
		} else {
			where += " AND "
		}
		where += col + cond
		args = append(args, s.d.timeArg(t))
	}
	if !from.IsZero() {
		add(" >= ?", from)
	}
	if !to.IsZero() {
		add(" < ?", to)
	}
	return where, args
}
