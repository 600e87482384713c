package figures_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// The store counts whole days from aggregates it keeps at commit, and only the
// partial days from the facts. This checks that against counting every fact
// directly, after creates, changes (reopened, finished, due moved, supplement
// asked), deletes and a key changed twice in one batch, for periods that start
// and end mid-day.
func TestAggregatesCountWhatTheFactsSay(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		rng := rand.New(rand.NewPCG(12, 766))
		base := time.Date(2026, 11, 10, 0, 0, 0, 0, vn)
		at := func() time.Time { return base.Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour)))) }
		type live struct {
			f     store.Fact
			supAt time.Time // first seen asking for a supplement
		}
		facts := map[string]*live{}
		randomFact := func(key string) store.Fact {
			f := store.Fact{Entity: "dossier", Key: key, Kind: "dossier", Agency: fmt.Sprintf("XA-%d", rng.IntN(3))}
			if rng.IntN(10) > 0 {
				r := at()
				f.ReceivedAt, f.ReceivedDay = r.UTC(), r.In(vn).Format(time.DateOnly)
			}
			if rng.IntN(10) > 0 {
				d := at()
				f.DueAt, f.DueDay = d.UTC(), d.In(vn).Format(time.DateOnly)
			}
			switch rng.IntN(3) {
			case 0:
				f.State = "open"
				f.Supplement = rng.IntN(3) == 0
			case 1:
				f.State = "finished"
				fin := at()
				f.FinishedAt, f.FinishedDay = fin.UTC(), fin.In(vn).Format(time.DateOnly)
				if !f.DueAt.IsZero() {
					f.OnTime = ptr(!fin.After(f.DueAt))
				}
			default:
				f.State = "other"
			}
			if rng.IntN(4) > 0 {
				f.Online = ptr(rng.IntN(2) == 0)
			}
			if rng.IntN(4) == 0 {
				f.Digitised = ptr(rng.IntN(2) == 0)
			}
			return f
		}
		for round := range 4 {
			commitAt := base.Add(time.Duration(round*5*24)*time.Hour + time.Duration(rng.IntN(20))*time.Hour)
			var batch []store.Fact
			for i := range 120 {
				key := fmt.Sprintf("HS-%03d", rng.IntN(200))
				f := randomFact(key)
				if round > 0 && i%17 == 0 {
					f = store.Fact{Entity: "dossier", Key: key, Deleted: true}
				}
				f.SeenDay = commitAt.In(vn).Format(time.DateOnly)
				batch = append(batch, f)
			}
			if err := st.Commit(t.Context(), store.Batch{Source: "motcua", At: commitAt.UTC(), Facts: batch}); err != nil {
				t.Fatal(err)
			}
			// What the store should now hold: the last fact of each key wins.
			last := map[string]store.Fact{}
			for _, f := range batch {
				last[f.Key] = f
			}
			for key, f := range last {
				prev := facts[key]
				if f.Deleted {
					delete(facts, key)
					continue
				}
				l := &live{f: f}
				if prev != nil {
					l.supAt = prev.supAt
				}
				if l.supAt.IsZero() && f.Supplement {
					l.supAt = commitAt.UTC()
				}
				if f.State != "finished" {
					l.f.FinishedAt, l.f.OnTime = time.Time{}, nil
				}
				facts[key] = l
			}
		}
		in := func(t, from, to time.Time) bool {
			return !t.IsZero() && (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
		}
		for i := range 40 {
			q := store.FactQuery{Kind: "dossier", Zone: vn}
			if i%5 != 0 {
				q.From = at().Truncate(time.Duration(1+rng.IntN(3)) * time.Hour)
			}
			if i%7 != 0 {
				q.To = q.From.Add(time.Duration(1 + rng.Int64N(int64(12*24*time.Hour)))).Round(15 * time.Minute)
				if q.From.IsZero() {
					q.To = at()
				}
			}
			q.Now = at()
			q.DueUntil = q.Now.Add(time.Duration(1+rng.IntN(72)) * time.Hour)
			want := map[string]*store.FactCount{}
			get := func(a string) *store.FactCount {
				if want[a] == nil {
					want[a] = &store.FactCount{Agency: a}
				}
				return want[a]
			}
			for _, l := range facts {
				f := l.f
				c := get(f.Agency)
				if in(f.ReceivedAt, q.From, q.To) {
					c.Received++
					if f.Online != nil {
						c.OnlineKnown++
						if *f.Online {
							c.Online++
						}
					}
					if f.Digitised != nil {
						c.DigitisedKnown++
						if *f.Digitised {
							c.Digitised++
						}
					}
				}
				if f.State == "finished" && in(f.FinishedAt, q.From, q.To) {
					c.Finished++
					if f.OnTime != nil && *f.OnTime {
						c.OnTime++
					}
					if f.OnTime != nil && !*f.OnTime {
						c.Late++
					}
				}
				if in(l.supAt, q.From, q.To) {
					c.Supplement++
				}
				if f.State == "open" {
					c.Open++
					if f.Supplement {
						c.AwaitingSupplement++
					}
					if !f.DueAt.IsZero() && f.DueAt.Before(q.Now) {
						c.OverdueNow++
					}
					if !f.DueAt.IsZero() && !f.DueAt.Before(q.Now) && f.DueAt.Before(q.DueUntil) {
						c.DueSoon++
					}
				}
			}
			got, err := st.(store.FactStore).FactCounts(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			gotBy := map[string]store.FactCount{}
			for _, c := range got {
				gotBy[c.Agency] = c
			}
			for a, w := range want {
				if gotBy[a] != *w {
					t.Errorf("query %d [%s, %s) now %s: %s\n got  %+v\n want %+v", i, q.From.In(vn), q.To.In(vn), q.Now.In(vn), a, gotBy[a], *w)
				}
			}
		}
	})
}
