package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
)

// TestHarnessEndToEnd runs the whole benchmark on a tiny table (SQLite store, log
// sink) so that the harness cannot rot while the engine changes: the daemon must
// sync every row, deliver one event per row, and pick up exactly the changed rows.
func TestHarnessEndToEnd(t *testing.T) {
	dsn := testpg.BaseDSN(t) // skips without PostgreSQL, fails in CI
	const n, changes = 2000, 100
	o := options{
		n: n, stores: []string{"sqlite"}, sinks: []string{"log"}, dsn: dsn,
		timeout: time.Minute, changes: changes, polls: 3, batch: 500, seed: 1, command: "go test ./bench",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log strings.Builder
	rep, err := run(ctx, o, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}

	want := map[string]struct {
		count int
		unit  string
	}{
		floorWhat: {n, "rows"},
		"first sync (read + map + diff + commit)": {n, "rows"},
		"delivery to log":                         {n, "events"},
		"incremental poll of 100 changed rows":    {changes, "rows"},
	}
	got := map[string]result{}
	for _, r := range rep.results {
		got[r.what] = r
	}
	for what, w := range want {
		r, ok := got[what]
		if !ok {
			t.Errorf("no %q in the report", what)
			continue
		}
		if !r.done || r.dur <= 0 {
			t.Errorf("%s: done %v in %s, want finished", what, r.done, r.dur)
		}
		if r.count != w.count || r.unit != w.unit {
			t.Errorf("%s: %d %s, want %d %s", what, r.count, r.unit, w.count, w.unit)
		}
	}
	// The drain after the sync is what the sync left: some of the events, and
	// with them every one the sink had not got by the "synced" line.
	if r, ok := got["drain to log"]; !ok || r.count < 0 || r.count > n || r.dur <= 0 {
		t.Errorf("drain to log = %+v, want what was left of %d events after the sync", r, n)
	}
	if first, total := got["first sync (read + map + diff + commit)"], got["run --once total"]; first.dur >= total.dur || first.cpu > total.cpu {
		t.Errorf("first sync %s (%s CPU) not within the run's %s (%s CPU)", first.dur, first.cpu, total.dur, total.cpu)
	}
	// Three polls of other rows each: the median is reported, with the spread.
	if r := got["incremental poll, the daemon's own measure"]; !strings.HasPrefix(r.note, "median of 3 polls; the daemon's own measure ") {
		t.Errorf("the poll's own measure says %q, want the median of 3 polls and their spread", r.note)
	}
	// The server is this machine's, in CI and here: what the run cost it is measured too.
	if pg, err := openPG(ctx, dsn); err == nil {
		local := pg.postmaster != 0
		pg.close()
		if r := got["run --once total"]; local && !strings.Contains(r.note, "PostgreSQL server CPU ") {
			t.Errorf("run --once total's note %q lacks the PostgreSQL server's CPU, with the server on this machine", r.note)
		}
	}
	if r := got["run --once total"]; r.rss <= 0 || r.cpu <= 0 {
		t.Errorf("run --once total: peak RSS %d, CPU %s; want both measured", r.rss, r.cpu)
	}
	if len(rep.sizes) != 1 || rep.sizes[0].afterSync <= 0 || !rep.sizes[0].measuredIncr {
		t.Errorf("store sizes = %+v, want the SQLite store measured after the sync and the poll", rep.sizes)
	}
	md := rep.markdown()
	for _, s := range []string{"| measurement |", "go test ./bench", "nproc"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
}

func TestWriteOutReplacesOnlyItsOwnBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte("# Benchmarks\n\nprose\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct{ key, body string }{
		{"n=100", "first 100\n"},
		{"n=1000", "first 1000\n"},
		{"n=100", "second 100\n"},
	}
	for _, s := range steps {
		if err := writeOut(path, s.key, s.body); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nprose\n\n" +
		"<!-- bench:begin n=100 -->\nsecond 100\n<!-- bench:end n=100 -->\n\n" +
		"<!-- bench:begin n=1000 -->\nfirst 1000\n<!-- bench:end n=1000 -->\n"
	if string(b) != want {
		t.Errorf("file =\n%s\nwant\n%s", b, want)
	}
}

func TestParseStats(t *testing.T) {
	tests := []struct {
		out  string
		want runStats
	}{
		{"motcua: 1000 rows in 2 batches, 1012 events, 3 quarantined\n", runStats{1000, 2, 1012, 3, true}},
		{"", runStats{}},
	}
	for _, tt := range tests {
		if got := parseStats(tt.out); got != tt.want {
			t.Errorf("parseStats(%q) = %+v, want %+v", tt.out, got, tt.want)
		}
	}
}

// TestTimingWriterFindsPsqlTimingsAcrossWrites feeds psql output in pieces that
// split lines anywhere: every timing is found and no data line is taken for one.
func TestTimingWriterFindsPsqlTimingsAcrossWrites(t *testing.T) {
	out := "000.00.10.H45-240102-0000001\tTime: not this\n" + strings.Repeat("x", 200) + "\n" +
		"Time: 1234.500 ms (00:01.235)\n" + "Time:bad\nTime: 7.250 ms\n"
	for _, size := range []int{1, 3, 7, 64, len(out)} {
		w := &timingWriter{}
		for p := out; len(p) > 0; {
			k := min(size, len(p))
			if n, err := w.Write([]byte(p[:k])); n != k || err != nil {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, k)
			}
			p = p[k:]
		}
		want := []time.Duration{1234500 * time.Microsecond, 7250 * time.Microsecond}
		if !slices.Equal(w.times, want) || w.n != int64(len(out)) {
			t.Errorf("pieces of %d: times %v, bytes %d; want %v, %d", size, w.times, w.n, want, len(out))
		}
	}
}

func TestSyncTookReadsTheDaemonsLogLine(t *testing.T) {
	line := `time=2026-11-28T10:00:00.000Z level=INFO msg=synced source=hoso rows=1000 events=1273 quarantined=0 snapshot=false took=84ms` + "\n"
	if d, ok := syncTook("time=… level=INFO msg=\"egov-bridge running\"\n" + line); !ok || d != 84*time.Millisecond {
		t.Errorf("syncTook = %v, %v; want 84ms", d, ok)
	}
	if _, ok := syncTook("level=INFO msg=other took=1s\n"); ok {
		t.Error("syncTook read a line that is not the sync's")
	}
	// A sync of over a minute: slog writes the duration as Go prints it.
	if d, ok := syncTook("level=INFO msg=synced source=hoso took=1m3.984s\n"); !ok || d != 63984*time.Millisecond {
		t.Errorf("syncTook = %v, %v; want 1m3.984s", d, ok)
	}
}

// TestSyncWatcherNotesTheLastSyncedLineAcrossWrites: the daemon's log arrives in
// pieces; the watcher notes the last "synced" line, with what the sink held then.
func TestSyncWatcherNotesTheLastSyncedLineAcrossWrites(t *testing.T) {
	log := "level=INFO msg=\"egov-bridge running\"\n" +
		"level=INFO msg=synced source=a rows=10 events=10 took=1.5s\n" +
		"level=INFO msg=other took=9s\n" +
		"level=INFO msg=synced source=b rows=5 events=5 took=250ms\n"
	for _, size := range []int{1, 5, len(log)} {
		held := 0
		w := &syncWatcher{start: time.Now(), pid: os.Getpid(), delivered: func() int { held++; return held }}
		for p := log; len(p) > 0; {
			k := min(size, len(p))
			if n, err := w.Write([]byte(p[:k])); n != k || err != nil {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, k)
			}
			p = p[k:]
		}
		at, took, _, delivered := w.result()
		if at <= 0 || took != 250*time.Millisecond || delivered != 2 {
			t.Errorf("pieces of %d: at %s, took %s, delivered %d; want the second synced line (250ms, 2)", size, at, took, delivered)
		}
	}
}

func TestMedianPollIsTheMiddleOwnMeasure(t *testing.T) {
	poll := func(took time.Duration, synced bool) pollRun {
		p := pollRun{changed: 1000}
		p.took = took
		if synced {
			p.synced = took + 50*time.Millisecond
		}
		return p
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		polls  []pollRun
		want   time.Duration
		spread string
	}{
		{"one", []pollRun{poll(210*ms, true)}, 210 * ms, ""},
		{"odd", []pollRun{poll(330*ms, true), poll(205*ms, true), poll(250*ms, true)}, 250 * ms,
			"median of 3 polls; the daemon's own measure 0.205–0.330 s"},
		{"even takes the lower middle", []pollRun{poll(300*ms, true), poll(200*ms, true), poll(260*ms, true), poll(240*ms, true)}, 240 * ms,
			"median of 4 polls; the daemon's own measure 0.200–0.300 s"},
		{"unfinished counts as slowest", []pollRun{poll(0, false), poll(220*ms, true), poll(230*ms, true)}, 230 * ms,
			"median of 3 polls; fastest 0.220 s, at least one did not end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, spread := medianPoll(tc.polls)
			if got.took != tc.want || spread != tc.spread {
				t.Errorf("medianPoll = %s, %q; want %s, %q", got.took, spread, tc.want, tc.spread)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want procStat
	}{
		{"postgres backend", "4242 (postgres) S 900 4242 4242 0 -1 4194560 600 0 0 0 250 31 7 2 20 0 1 0 123 0 0",
			procStat{comm: "postgres", ppid: 900, utime: 250, stime: 31, cutime: 7, cstime: 2, parsed: true}},
		{"a name with spaces and parentheses", "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 9 0 0",
			procStat{comm: "a (b) c", ppid: 1, utime: 5, stime: 6, parsed: true}},
		{"cut short", "77 (x) R 1 77", procStat{}},
		{"not a stat line", "hello", procStat{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseProcStat([]byte(tc.line)); got != tc.want {
				t.Errorf("parseProcStat = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The harness's own server is found, and its CPU grows with work.
func TestServerCPUGrowsWithWork(t *testing.T) {
	dsn := testpg.BaseDSN(t)
	ctx := t.Context()
	pg, err := openPG(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.close()
	if pg.postmaster == 0 {
		t.Skip("the PostgreSQL server is not a process of this machine")
	}
	before, ok := pg.serverCPU()
	if !ok {
		t.Fatal("serverCPU: not readable although the postmaster was found")
	}
	// Enough work for a few clock ticks of the backend's CPU.
	if _, err := pg.db.ExecContext(ctx, `SELECT count(*) FROM generate_series(1, 500000) g WHERE md5(g::text) LIKE 'ab%'`); err != nil {
		t.Fatal(err)
	}
	after, _ := pg.serverCPU()
	if after <= before {
		t.Errorf("server CPU %s before and %s after a query that worked the server", before, after)
	}
}
