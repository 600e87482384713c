package figures_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// benchDossiers is how many dossiers the figures benchmark counts; override with
// EGOV_BENCH_DOSSIERS (the target is 1,000,000).
func benchDossiers() int {
	if n, err := strconv.Atoi(os.Getenv("EGOV_BENCH_DOSSIERS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// benchAgencies: 10 districts of 5 agencies each.
func benchAgencies() []figures.Agency {
	var out []figures.Agency
	for d := range 10 {
		parent := fmt.Sprintf("HUYEN-%02d", d)
		out = append(out, figures.Agency{Code: parent, Name: "Huyện " + parent})
		for a := range 5 {
			code := fmt.Sprintf("XA-%02d-%d", d, a)
			out = append(out, figures.Agency{Code: code, Name: "UBND " + code, Parent: parent})
		}
	}
	return out
}

// seedBench stores n dossiers received over the two years before benchNow, spread
// over the 50 agencies: about 10% still in progress (a third of those overdue),
// 85% finished (a tenth of those late), 5% rejected or withdrawn; 60% online.
func seedBench(b *testing.B, st store.Store, n int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(766, 2022))
	agencies := benchAgencies()
	const page = 5000
	start := benchNow.Add(-2 * 365 * 24 * time.Hour)
	span := benchNow.Sub(start)
	for done := 0; done < n; {
		facts := make([]store.Fact, 0, page)
		for i := 0; i < page && done < n; i, done = i+1, done+1 {
			a := agencies[1+rng.IntN(10)*6+rng.IntN(5)]
			received := start.Add(time.Duration(rng.Int64N(int64(span))))
			due := received.Add(time.Duration(5+rng.IntN(16)) * 24 * time.Hour)
			f := store.Fact{Entity: "dossier", Key: fmt.Sprintf("HS-%08d", done), Kind: "dossier", Agency: a.Code,
				ReceivedAt: received, ReceivedDay: received.In(vn).Format(time.DateOnly), DueAt: due,
				DueDay: due.In(vn).Format(time.DateOnly), SeenDay: benchNow.Format(time.DateOnly), Online: ptr(rng.IntN(10) < 6)}
			switch r := rng.IntN(100); {
			case r < 10 || due.After(benchNow):
				f.State = "open"
				f.Supplement = rng.IntN(10) == 0
			case r < 95:
				f.State = "finished"
				took := time.Duration(rng.Int64N(int64(due.Sub(received))))
				if rng.IntN(10) == 0 {
					took = due.Sub(received) + time.Duration(1+rng.IntN(5))*24*time.Hour
				}
				f.FinishedAt = received.Add(took)
				f.FinishedDay = f.FinishedAt.In(vn).Format(time.DateOnly)
				f.OnTime = ptr(!f.FinishedAt.After(due))
			default:
				f.State = "other"
			}
			facts = append(facts, f)
		}
		if err := st.Commit(ctx, store.Batch{Source: "motcua", At: benchNow, Facts: facts}); err != nil {
			b.Fatal(err)
		}
	}
}

var benchNow = time.Date(2026, 11, 20, 9, 0, 0, 0, vn)

// BenchmarkFiguresMillionDossiers times Service.Figures (every count of point 1,
// per agency and parent) and Service.Index on 1,000,000 dossiers, on both stores,
// for one month, one year and all time. Seeding takes minutes; it is done once
// per store (SQLite: kept in EGOV_BENCH_DIR when set, so a rerun skips it).
//
//	go test ./pipeline/figures -run '^$' -bench FiguresMillion -benchtime 20x -cpu 2
func BenchmarkFiguresMillionDossiers(b *testing.B) {
	n := benchDossiers()
	open := map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store {
			dir := os.Getenv("EGOV_BENCH_DIR")
			if dir == "" {
				dir = b.TempDir()
			}
			path := filepath.Join(dir, fmt.Sprintf("figures-%d.db", n))
			_, statErr := os.Stat(path)
			st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: path})
			if err != nil {
				b.Fatal(err)
			}
			if statErr != nil {
				seedBench(b, st, n)
			}
			return st
		},
		"postgres": func(b *testing.B) store.Store {
			dsn, _ := testpg.Schema(b)
			st, err := store.Open(context.Background(), store.Config{Driver: store.DriverPostgres, DSN: dsn})
			if err != nil {
				b.Fatal(err)
			}
			seedBench(b, st, n)
			db, err := sql.Open("postgres", dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			// What autovacuum's analyze does on a live store.
			if _, err := db.Exec(`ANALYZE facts`); err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			st := open[backend](b)
			defer st.Close()
			svc := &figures.Service{Store: st.(store.FactStore), Agencies: figures.NewDirectory(benchAgencies()),
				Clock: func() time.Time { return benchNow }, Zone: vn}
			for _, p := range []struct {
				name string
				q    figures.Query
			}{
				{"month", figures.Query{From: time.Date(2026, 11, 1, 0, 0, 0, 0, vn), To: time.Date(2026, 12, 1, 0, 0, 0, 0, vn)}},
				{"year", figures.Query{From: time.Date(2026, 1, 1, 0, 0, 0, 0, vn), To: time.Date(2027, 1, 1, 0, 0, 0, 0, vn)}},
				{"all", figures.Query{}},
			} {
				b.Run("figures/"+p.name, func(b *testing.B) {
					var f figures.Figures
					cpu := cpuTime()
					for b.Loop() {
						var err error
						if f, err = svc.Figures(context.Background(), p.q); err != nil {
							b.Fatal(err)
						}
					}
					if backend == "sqlite" {
						// In-process: the CPU the query took, whatever else runs on the machine.
						b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
					}
					b.ReportMetric(float64(f.Total.Received), "received")
					b.ReportMetric(float64(f.Total.OverdueNow), "overdue")
				})
			}
			b.Run("index/month", func(b *testing.B) {
				q := figures.Query{From: time.Date(2026, 11, 1, 0, 0, 0, 0, vn), To: time.Date(2026, 12, 1, 0, 0, 0, 0, vn)}
				for b.Loop() {
					if _, err := svc.Index(context.Background(), q); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("daily/month", func(b *testing.B) {
				q := figures.Query{From: time.Date(2026, 11, 1, 0, 0, 0, 0, vn), To: time.Date(2026, 12, 1, 0, 0, 0, 0, vn)}
				for b.Loop() {
					if _, err := svc.Daily(context.Background(), q); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// cpuTime is the CPU (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
