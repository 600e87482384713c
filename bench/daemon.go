package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	egovbridge "github.com/egov-bridge/egov-bridge"
)

// binaryPackage is built once per benchmark; the harness drives the real binary so
// that it keeps measuring whatever the engine becomes.
const binaryPackage = "github.com/egov-bridge/egov-bridge/cmd/egov-bridge"

func buildBinary(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "egov-bridge")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, binaryPackage)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", binaryPackage, err, out.String())
	}
	return bin, nil
}

// writeMapping copies the shipped DVCQG mapping (embedded in the module) into dir.
func writeMapping(dir string) (string, error) {
	b, err := egovbridge.Files.ReadFile("mappings/dossier-dvcqg.yaml")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "dossier-dvcqg.yaml")
	return p, os.WriteFile(p, b, 0o644)
}

// sinkSpec is one sink of a generated config.
type sinkSpec struct {
	name string
	yaml string // the flow mapping's keys after name, e.g. `type: log, path: "x"`
}

// daemonConfig is what a generated config holds.
type daemonConfig struct {
	store       string // sqlite or postgres
	storePath   string
	storeDSN    string
	sourceDSN   string
	mapping     string
	batchSize   int
	concurrency int // 0: the daemon's default
	sink        sinkSpec
}

func (c daemonConfig) write(path string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "timezone: %s\n", sourceZone)
	switch c.store {
	case "postgres":
		fmt.Fprintf(&b, "store: { driver: postgres, dsn: %q }\n", c.storeDSN)
	default:
		fmt.Fprintf(&b, "store: { driver: sqlite, path: %q }\n", c.storePath)
	}
	b.WriteString("log: { level: info }\n") // the "synced … took" line times the poll
	if c.concurrency > 0 {
		fmt.Fprintf(&b, "delivery: { concurrency: %d }\n", c.concurrency)
	}
	cols := make([]string, len(readColumns))
	for i, col := range readColumns {
		cols[i] = strconv.Quote(col)
	}
	fmt.Fprintf(&b, `sources:
  - name: motcua
    type: sql
    driver: postgres
    dsn: %q
    table: ho_so
    columns: [%s]
    cursor: { column: %s, key: %s }
    batch_size: %d
    schedule: "@every 1m"
    agency: UBND-HUYEN-CANGIUOC
    mapping: %q
`, c.sourceDSN, strings.Join(cols, ", "), cursorColumn, keyColumn, c.batchSize, c.mapping)
	fmt.Fprintf(&b, "sinks:\n  - { name: %s, %s }\n", c.sink.name, c.sink.yaml)
	fmt.Fprintf(&b, "routes:\n  - { events: [\"*\"], to: [%s] }\n", c.sink.name)
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// daemonRun is what one `egov-bridge run --once` did. Its sync and its delivery
// overlap (run --once delivers each commit while it goes on syncing), so the
// phases are split at two moments: the sink's first event, and the daemon's
// "synced" log line, written right after the source's last commit.
type daemonRun struct {
	wall time.Duration
	// firstDelivery is when the sink saw its first event, from the process start.
	firstDelivery time.Duration
	// synced is when the daemon logged that its (last) source was synced, from
	// the process start: the end of read + map + diff + commit. took is that
	// line's own measure, from the source's run start to its last commit.
	synced, took time.Duration
	// deliveredAtSync is how many events the sink held at that line: what was
	// delivered while the sync went on.
	deliveredAtSync int
	// cpuAtFirst, cpuAtSync and cpu are the daemon's user+system CPU time at the
	// first delivery, at the synced line and in all: less disturbed than wall
	// time on a shared machine.
	cpuAtFirst, cpuAtSync time.Duration
	cpu                   time.Duration
	maxRSS                int64 // bytes
	// serverCPU is the PostgreSQL server's CPU from the daemon's start to its
	// exit, when the harness can read it (0 otherwise).
	serverCPU time.Duration
	timedOut  bool
	exitErr   error
	stats     runStats // what run --once printed
	stderr    string
}

type runStats struct {
	rows, batches, events, quarantined int
	ok                                 bool
}

var statsLine = regexp.MustCompile(`(\d+) rows in (\d+) batches, (\d+) events, (\d+) quarantined`)

var tookAttr = regexp.MustCompile(`msg=synced .*took=((?:[0-9.]+[a-zµ]+)+)`)

var bulkLine = regexp.MustCompile(`msg="snapshot indexes built after a bulk load" .*at="([^"]+)" took=((?:[0-9.]+[a-zµ]+)+)`)

// bulkNote says when and in how long the daemon built the indexes its bulk load
// left out (decision 0026), from its log; "" when it did not bulk-load.
func bulkNote(stderr string) string {
	m := bulkLine.FindStringSubmatch(stderr)
	if m == nil {
		return ""
	}
	d, err := time.ParseDuration(m[2])
	if err != nil {
		return ""
	}
	return fmt.Sprintf("snapshot bulk-loaded, its indexes built at %s in %s s", m[1], secondsText(d))
}

// syncTook reads the run's duration from the daemon's "synced" log line.
func syncTook(stderr string) (time.Duration, bool) {
	m := tookAttr.FindStringSubmatch(stderr)
	if m == nil {
		return 0, false
	}
	d, err := time.ParseDuration(m[1])
	return d, err == nil
}

func parseStats(stdout string) runStats {
	m := statsLine.FindStringSubmatch(stdout)
	if m == nil {
		return runStats{}
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return runStats{rows: n(m[1]), batches: n(m[2]), events: n(m[3]), quarantined: n(m[4]), ok: true}
}

// watch is how runDaemon looks at the sink under test.
type watch struct {
	probe     func() bool // has it seen an event?
	delivered func() int  // events it holds
	// serverCPU, when set, reads the PostgreSQL server's CPU so far; ok is
	// false when it cannot.
	serverCPU func() (cpu time.Duration, ok bool)
}

// runDaemon runs `bin run --once -c cfg`, watching the sink (when did it see its
// first event?) and the daemon's log (when was the sync done, and how much had the
// sink by then?). After timeout it sends SIGTERM: the daemon commits its batch in
// flight and exits, and the run reports how far it got instead of hanging the
// benchmark.
func runDaemon(ctx context.Context, bin, cfg string, timeout time.Duration, sink watch, syncFirst bool) (daemonRun, error) {
	args := []string{"run", "--once", "-c", cfg}
	if syncFirst {
		args = append(args, "--sync-first")
	}
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	var serverBefore time.Duration
	serverOK := sink.serverCPU != nil
	if serverOK {
		serverBefore, serverOK = sink.serverCPU()
	}
	start := time.Now()
	synced := &syncWatcher{start: start, delivered: sink.delivered}
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(&limitedBuffer{max: 64 << 10, buf: &stderr}, synced)
	if err := cmd.Start(); err != nil {
		return daemonRun{}, err
	}
	synced.pid = cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	firstC := make(chan firstSeen, 1)
	stopProbe := make(chan struct{})
	go watchFirst(sink.probe, start, cmd.Process.Pid, stopProbe, firstC)

	var r daemonRun
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r.exitErr = <-waited:
	case <-timer.C:
		r.timedOut = true
		r.exitErr = stopDaemon(cmd, waited)
	case <-ctx.Done():
		r.exitErr = stopDaemon(cmd, waited)
		close(stopProbe)
		return r, ctx.Err()
	}
	r.wall = time.Since(start)
	close(stopProbe)
	first := <-firstC
	r.firstDelivery, r.cpuAtFirst = first.at, first.cpu
	r.synced, r.took, r.cpuAtSync, r.deliveredAtSync = synced.result()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = int64(ru.Maxrss) * 1024 // KiB on Linux
		r.cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	}
	if serverOK {
		if after, ok := sink.serverCPU(); ok {
			r.serverCPU = after - serverBefore
		}
	}
	r.stats = parseStats(stdout.String())
	r.stderr = stderr.String()
	return r, nil
}

// syncWatcher reads the daemon's log as it is written and notes, at each
// "synced" line (one per source; the last one counts), the time from the process
// start, the line's took, the daemon's CPU time and what the sink holds.
type syncWatcher struct {
	start     time.Time
	pid       int
	delivered func() int

	mu        sync.Mutex
	partial   []byte
	at, took  time.Duration
	cpu       time.Duration
	deliverAt int
}

func (w *syncWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		if took, ok := syncTook(line); ok {
			w.at, w.took = time.Since(w.start), took
			w.cpu = procCPU(w.pid)
			w.deliverAt = w.delivered()
		}
	}
	w.partial = bytes.Clone(w.partial) // let the consumed lines go
	return len(p), nil
}

func (w *syncWatcher) result() (at, took, cpu time.Duration, delivered int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at, w.took, w.cpu, w.deliverAt
}

// firstSeen is when the probe first held, from the process start, and the
// process's CPU time then.
type firstSeen struct {
	at  time.Duration
	cpu time.Duration
}

// watchFirst polls probe until it holds or stop closes, and sends when it first
// held (zero when it never did).
func watchFirst(probe func() bool, start time.Time, pid int, stop <-chan struct{}, out chan<- firstSeen) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if probe() {
			out <- firstSeen{at: time.Since(start), cpu: procCPU(pid)}
			return
		}
		select {
		case <-stop:
			if probe() { // delivered in the last tick; the process is gone
				out <- firstSeen{at: time.Since(start)}
				return
			}
			out <- firstSeen{}
			return
		case <-tick.C:
		}
	}
}

// procCPU reads a live process's user+system CPU time from /proc (Linux; 0
// elsewhere).
func procCPU(pid int) time.Duration {
	st := readProcStat(pid)
	if !st.parsed {
		return 0
	}
	return time.Duration(st.utime+st.stime) * ticks
}

// stopDaemon asks the daemon to stop as an operator would, and kills it if it
// does not within its shutdown timeout and a margin.
func stopDaemon(cmd *exec.Cmd, waited <-chan error) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-waited:
		return err
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
		return errors.Join(errors.New("killed: no exit 40s after SIGTERM"), <-waited)
	}
}

// limitedBuffer keeps the first max bytes of a stream (daemon logs can be long).
type limitedBuffer struct {
	max int
	buf *bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// countLines counts the lines of a file; a missing file has none.
func countLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n := 0
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err != nil {
			return n
		}
	}
}

// fileNonEmpty says whether path exists and has a byte.
func fileNonEmpty(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() > 0
}

// sqliteSize is the store file with its WAL and shared-memory files.
func sqliteSize(path string) int64 {
	var total int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if st, err := os.Stat(path + suffix); err == nil {
			total += st.Size()
		}
	}
	return total
}
