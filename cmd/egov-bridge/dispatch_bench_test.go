package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/connectors/logsink"
	"github.com/egov-bridge/egov-bridge/connectors/natssink"
	"github.com/egov-bridge/egov-bridge/connectors/pgtable"
	"github.com/egov-bridge/egov-bridge/connectors/webhook"
	"github.com/egov-bridge/egov-bridge/internal/testnats"
	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// The dispatch benchmarks measure the whole delivery path — outbox read, sink,
// bookkeeping — on a backlog committed beforehand (not timed), each beside a floor
// measured in the same run: what the destination alone takes for the same events.
//
//	go test ./cmd/egov-bridge -run '^$' -bench Dispatch -benchtime 3x
//
// EGOV_BENCH_EVENTS sets the backlog (default 20000).

// benchEvents is the backlog each iteration delivers.
func benchEvents(b *testing.B) int {
	if v, err := strconv.Atoi(os.Getenv("EGOV_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	return 20000
}

// benchEvent is a dossier change as the shipped mapping produces it (about 500
// bytes of JSON).
func benchEvent(i int, at time.Time) *pipeline.Event {
	key := fmt.Sprintf("000.00.12.H45-261107-%06d", i)
	ev := &pipeline.Event{Type: pipeline.EventUpdated, Source: "motcua", Entity: "dossier", Key: key,
		Agency: "UBND-CG", Version: 2, Changed: []string{"status"},
		Before: map[string]any{"code": key, "status": int64(2)},
		After: map[string]any{"code": key, "status": int64(4), "citizen": "Nguyễn Văn Đức", "phone": "84901234567",
			"procedure": "Cấp giấy phép xây dựng nhà ở riêng lẻ", "unit": "UBND huyện Cần Giuộc",
			"received_at": "2026-11-07T01:30:00Z", "due_at": "2026-11-21T10:00:00Z", "on_time": true},
		DetectedAt: at}
	ev.ID = pipeline.EventID(ev.Source, ev.Entity, key, ev.Version, ev.Type, "")
	return ev
}

type benchStore struct {
	name string
	open func(b *testing.B) store.Store
}

var benchStores = []benchStore{
	{"sqlite", func(b *testing.B) store.Store {
		st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(b.TempDir(), "state.db")})
		if err != nil {
			b.Fatal(err)
		}
		return st
	}},
	{"postgres", func(b *testing.B) store.Store {
		dsn, _ := testpg.Schema(b)
		st, err := store.Open(context.Background(), store.Config{Driver: store.DriverPostgres, DSN: dsn})
		if err != nil {
			b.Fatal(err)
		}
		return st
	}},
}

// queue commits n events of n records, routed to sink "out", in batches of 1000 as
// a source run would.
func queue(b *testing.B, st store.Store, first, n int, at time.Time) {
	b.Helper()
	for start := 0; start < n; start += 1000 {
		batch := store.Batch{Source: "motcua", At: at}
		for i := start; i < min(start+1000, n); i++ {
			batch.Events = append(batch.Events, store.OutboxEvent{Event: benchEvent(first+i, at), Sinks: []string{"out"}})
		}
		if err := st.Commit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// queueFirstSync commits n records new to the store with their snapshot's
// created events, routed to sink "out", in groups of 10,000 as a first sync
// does: the events are a snapshot feed's (decision 0014).
func queueFirstSync(b *testing.B, st store.Store, first, n int, at time.Time) {
	b.Helper()
	for start := 0; start < n; start += 10000 {
		batch := store.Batch{Source: "motcua", At: at}
		for i := start; i < min(start+10000, n); i++ {
			ev := benchEvent(first+i, at)
			hash := fmt.Sprintf("h%d", first+i)
			ev.Type, ev.Version, ev.Snapshot, ev.Changed, ev.Before = pipeline.EventCreated, 1, true, nil, nil
			ev.ID = pipeline.EventID(ev.Source, ev.Entity, ev.Key, 1, pipeline.EventCreated, hash)
			batch.Snapshot = append(batch.Snapshot, store.SnapshotEntry{Entity: ev.Entity, Key: ev.Key, Hash: hash, Version: 1,
				Fields: ev.After, New: true})
			batch.Events = append(batch.Events, store.OutboxEvent{Event: ev, Sinks: []string{"out"}})
		}
		if err := st.Commit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// dispatch delivers a backlog of n events to sink per iteration and reports
// events/s over the timed part (the delivery alone).
func dispatch(b *testing.B, st store.Store, sink pipeline.Sink, cfg engine.DeliveryConfig, n int) {
	b.Helper()
	dispatchOf(b, st, sink, cfg, n, queue)
}

// dispatchOf is dispatch with the backlog committed by fill.
func dispatchOf(b *testing.B, st store.Store, sink pipeline.Sink, cfg engine.DeliveryConfig, n int,
	fill func(b *testing.B, st store.Store, first, n int, at time.Time)) {
	b.Helper()
	defer st.Close()
	d := &engine.Dispatcher{
		Store: st, Sinks: map[string]pipeline.Sink{"out": sink}, Default: cfg,
		Clock: time.Now, Logger: slog.New(slog.DiscardHandler), Metrics: engine.NewMetrics(),
	}
	at := time.Now().Add(-time.Second)
	delivered, iter := 0, 0
	var elapsed, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		fill(b, st, iter*n, n, at)
		iter++
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		if waiting, err := d.Drain(context.Background()); err != nil || waiting != 0 {
			b.Fatalf("drain: %d waiting, %v", waiting, err)
		}
		elapsed += time.Since(start)
		cpu += cpuTime() - cpu0
		delivered += n
	}
	b.ReportMetric(float64(delivered)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(delivered), "cpu-µs/event")
}

func BenchmarkDispatch(b *testing.B) {
	n := benchEvents(b)
	def := engine.DefaultDelivery

	b.Run("log/floor", func(b *testing.B) {
		// The same JSON lines written to a file in one buffered write each 500.
		path := filepath.Join(b.TempDir(), "floor.jsonl")
		evs := make([]*pipeline.Event, n)
		for i := range evs {
			evs[i] = benchEvent(i, time.Now())
		}
		for b.Loop() {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
			if err != nil {
				b.Fatal(err)
			}
			w := bufio.NewWriter(f)
			for i, ev := range evs {
				line, _ := json.Marshal(ev)
				w.Write(line)
				w.WriteByte('\n')
				if i%500 == 499 {
					w.Flush()
				}
			}
			w.Flush()
			f.Close()
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	for _, bs := range benchStores {
		b.Run("log/"+bs.name, func(b *testing.B) {
			st := bs.open(b)
			sink, err := logsink.New(pipeline.Env{}, logsink.Options{Path: filepath.Join(b.TempDir(), "events.jsonl")})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			dispatch(b, st, sink, def, n)
		})
		// A first sync's backlog: its events are read from the snapshot rows.
		b.Run("log-first-sync/"+bs.name, func(b *testing.B) {
			st := bs.open(b)
			sink, err := logsink.New(pipeline.Env{}, logsink.Options{Path: filepath.Join(b.TempDir(), "events.jsonl")})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			dispatchOf(b, st, sink, def, n, queueFirstSync)
		})
	}

	// A local receiver where 3% of the requests are answered after one second.
	// With the default concurrency of 4 that allows about 130 requests/s, so that
	// case delivers a tenth of the backlog.
	for _, conc := range []int{def.Concurrency, 256} {
		wn := min(n, 20000)
		if conc < 16 {
			wn = max(wn/10, 100)
		}
		b.Run(fmt.Sprintf("webhook-3pct-slow/floor/c%d", conc), func(b *testing.B) {
			url := slowReceiver(b)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxIdleConns: conc}}
			cpu0 := cpuTime()
			for b.Loop() {
				var next atomic.Int64
				var wg sync.WaitGroup
				for range conc {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for int(next.Add(1)) <= wn {
							resp, err := client.Post(url, "application/json", nil)
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(wn*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(wn*b.N), "cpu-µs/event")
		})
		b.Run(fmt.Sprintf("webhook-3pct-slow/sqlite/c%d", conc), func(b *testing.B) {
			sink, err := webhook.New(pipeline.Env{Name: "out"}, webhook.Options{URL: slowReceiver(b), Timeout: config.Duration(10 * time.Second)})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			cfg := def
			cfg.Concurrency = conc
			dispatch(b, benchStores[0].open(b), sink, cfg, wn)
		})
	}

	b.Run("nats/sqlite", func(b *testing.B) {
		name, prefix := testnats.Stream(b)
		o := *natssink.NewOptions()
		o.URL, o.Stream, o.SubjectPrefix = testnats.URL(b), name, prefix
		sink, err := natssink.New(context.Background(), pipeline.Env{Name: "bus"}, o)
		if err != nil {
			b.Fatal(err)
		}
		defer sink.Close()
		dispatch(b, benchStores[0].open(b), sink, def, n)
	})

	b.Run("pgtable/floor", func(b *testing.B) { pgtableFloor(b, n) })
	for _, bs := range benchStores {
		b.Run("pgtable/"+bs.name, func(b *testing.B) {
			dsn, schema := testpg.Schema(b)
			o := pgtable.NewOptions()
			o.DSN, o.Schema = dsn, schema
			sink, err := pgtable.New(context.Background(), pipeline.Env{Name: "bi"}, o)
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			dispatch(b, bs.open(b), sink, def, n)
		})
	}
}

// cpuTime is the CPU time this process has used, user and system: what the
// delivery path costs whatever else the machine is running (the database
// server's share is not in it).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// slowReceiver answers 204 to every request, every 33rd after one second.
func slowReceiver(b *testing.B) string {
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if count.Add(1)%33 == 0 {
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	return srv.URL + "/events"
}

// pgtableFloor is what PostgreSQL alone takes for the rows pgtable writes: the
// same events, staged with COPY (not timed), then INSERT ... SELECT into an events
// table and an upsert into a state table shaped like the sink's.
func pgtableFloor(b *testing.B, n int) {
	dsn, _ := testpg.Schema(b)
	db := testpg.Open(b, dsn)
	for _, q := range []string{
		`CREATE TABLE staging (event_id text, type text, source text, entity text, key text, agency text, version bigint,
			changed text[], before jsonb, after jsonb, detected_at timestamptz)`,
		`CREATE TABLE events (seq bigint GENERATED ALWAYS AS IDENTITY, event_id text PRIMARY KEY, type text NOT NULL,
			rule text, source text NOT NULL, entity text NOT NULL, key text NOT NULL, agency text, version bigint NOT NULL,
			epoch bigint NOT NULL DEFAULT 0, snapshot boolean NOT NULL DEFAULT false, changed text[], before jsonb,
			after jsonb, message jsonb, detected_at timestamptz NOT NULL, delivered_at timestamptz NOT NULL DEFAULT now())`,
		`CREATE INDEX ON events (seq)`, `CREATE INDEX ON events (entity, key, version)`,
		`CREATE INDEX ON events (detected_at)`, `CREATE INDEX ON events (agency, detected_at)`,
		`CREATE TABLE current_dossier (key text NOT NULL, source text NOT NULL, agency text, version bigint NOT NULL,
			epoch bigint NOT NULL DEFAULT 0, fields jsonb NOT NULL, updated_at timestamptz NOT NULL,
			deleted boolean NOT NULL DEFAULT false, PRIMARY KEY (key, source))`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	iter := 0
	for b.Loop() {
		b.StopTimer()
		for _, q := range []string{`TRUNCATE staging`} {
			if _, err := db.Exec(q); err != nil {
				b.Fatal(err)
			}
		}
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		stmt, err := tx.Prepare(pq.CopyIn("staging", "event_id", "type", "source", "entity", "key", "agency", "version",
			"changed", "before", "after", "detected_at"))
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			ev := benchEvent(iter*n+i, time.Now())
			before, _ := json.Marshal(ev.Before)
			after, _ := json.Marshal(ev.After)
			if _, err := stmt.Exec(ev.ID, ev.Type, ev.Source, ev.Entity, ev.Key, ev.Agency, ev.Version,
				pq.StringArray(ev.Changed), string(before), string(after), ev.DetectedAt); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := stmt.Exec(); err != nil {
			b.Fatal(err)
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		iter++
		b.StartTimer()
		for _, q := range []string{
			`INSERT INTO events (event_id, type, source, entity, key, agency, version, changed, before, after, detected_at)
			 SELECT event_id, type, source, entity, key, agency, version, changed, before, after, detected_at FROM staging
			 ON CONFLICT (event_id) DO NOTHING`,
			`INSERT INTO current_dossier AS cur (key, source, agency, version, fields, updated_at)
			 SELECT key, source, agency, version, after, detected_at FROM staging
			 ON CONFLICT (key, source) DO UPDATE SET version = EXCLUDED.version, fields = EXCLUDED.fields,
			 updated_at = EXCLUDED.updated_at WHERE (cur.epoch, cur.version) < (EXCLUDED.epoch, EXCLUDED.version)`,
		} {
			if _, err := db.Exec(q); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}
