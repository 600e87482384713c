// Command bench measures egov-bridge's real pipeline on a generated one-stop-shop
// dossier table in the test PostgreSQL, beside the floor PostgreSQL itself sets in
// the same run (COPY of the same SELECT) and a plain Go loop (read, normalise, hash,
// write JSON lines; no state):
//
//	go run ./bench -n 100000 -store sqlite,postgres -sinks log,webhook,pgtable
//
// It drives the real binary (`egov-bridge run --once` on a generated config) as a
// subprocess, so it keeps measuring whatever the engine becomes, and reads the
// child's peak RSS from its rusage. run --once delivers while it syncs, so the
// phases overlap: the first sync ends at the daemon's "synced" log line, the
// delivery runs from the sink's first event to the exit, and the drain after the
// sync is what was left at that line. With -profile DIR it also runs one first
// sync and then its delivery to the log sink (--sync-first, one phase per
// profile) in this process under runtime/pprof. See docs/BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq"  // the harness's own PostgreSQL client
	_ "modernc.org/sqlite" // to read the SQLite store's table sizes
)

const (
	defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	sourceZone = "Asia/Ho_Chi_Minh"
	floorWhat  = "COPY floor (psql, same SELECT)"
)

type options struct {
	n           int
	stores      []string
	sinks       []string
	dsn         string
	slow        float64
	slowDelay   time.Duration
	out         string
	profile     string
	timeout     time.Duration
	changes     int
	polls       int // incremental polls per store; the median is reported
	batch       int
	concurrency int
	syncFirst   bool // run --once --sync-first: the phases one after the other
	seed        uint64
	bin         string
	bento       string
	sourceRTT   time.Duration // added to every round trip of the agency table's readers
	command     string        // as typed, for the report
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{}
	fs.IntVar(&o.n, "n", 100000, "rows in the generated dossier table")
	stores := fs.String("store", "sqlite", "state stores to measure, comma-separated: sqlite, postgres")
	sinks := fs.String("sinks", "log,webhook,pgtable", "sinks to drain to, comma-separated: log, webhook, pgtable")
	fs.StringVar(&o.dsn, "dsn", envOr("EGOV_TEST_PG_DSN", defaultDSN), "the test PostgreSQL (agency table, postgres store, pgtable sink)")
	fs.Float64Var(&o.slow, "slow", 0.03, "share of webhook requests answered only after -slow-delay")
	fs.DurationVar(&o.slowDelay, "slow-delay", time.Second, "answer time of the slow webhook requests")
	fs.StringVar(&o.out, "out", "", "markdown file to put the results in (replacing an earlier table for the same -n, -store and -sinks); default stdout")
	fs.StringVar(&o.profile, "profile", "", "folder for CPU and heap profiles of an in-process first sync and drain to the log sink")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "longest one daemon run may take; it is then stopped (SIGTERM) and reported as not finished")
	fs.IntVar(&o.changes, "changes", 1000, "rows changed for the incremental poll")
	fs.IntVar(&o.polls, "polls", 1, "incremental polls per store, each of -changes other rows; the median is reported with the spread (the store grows a little with each)")
	fs.IntVar(&o.batch, "batch", 1000, "the source's batch_size")
	fs.IntVar(&o.concurrency, "concurrency", 0, "delivery concurrency per sink (0: the daemon's default)")
	fs.BoolVar(&o.syncFirst, "sync-first", false, "run the daemon with --sync-first: it delivers only after the sync, so the drain has the machine to itself (binaries from before decision 0025 do so anyway and do not know the flag)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated data")
	fs.StringVar(&o.bin, "bin", "", "an egov-bridge binary to measure instead of building ./cmd/egov-bridge")
	fs.StringVar(&o.bento, "bento", "", "a Bento (or Benthos) binary: also measure sql_select → Bloblang → file on the same table")
	fs.DurationVar(&o.sourceRTT, "source-rtt", 0, "round trip added between the agency table's readers (COPY floor, plain loop, Bento, the daemon's source) and PostgreSQL by a proxy: an agency database across a WAN")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.stores = splitList(*stores)
	o.sinks = splitList(*sinks)
	o.command = strings.TrimSpace("go run ./bench " + strings.Join(args, " "))
	return o, o.validate()
}

func (o options) validate() error {
	var errs []error
	if o.n < 1 {
		errs = append(errs, errors.New("-n must be at least 1"))
	}
	for _, s := range o.stores {
		if s != "sqlite" && s != "postgres" {
			errs = append(errs, fmt.Errorf("-store: unknown store %q (sqlite, postgres)", s))
		}
	}
	for _, s := range o.sinks {
		if s != "log" && s != "webhook" && s != "pgtable" {
			errs = append(errs, fmt.Errorf("-sinks: unknown sink %q (log, webhook, pgtable)", s))
		}
	}
	if len(o.stores) == 0 || len(o.sinks) == 0 {
		errs = append(errs, errors.New("-store and -sinks need at least one name each"))
	}
	if o.slow < 0 || o.slow > 1 {
		errs = append(errs, errors.New("-slow is a share between 0 and 1"))
	}
	if o.sourceRTT < 0 {
		errs = append(errs, errors.New("-source-rtt cannot be negative"))
	}
	if o.changes < 0 || o.batch < 1 || o.timeout <= 0 {
		errs = append(errs, errors.New("-changes, -batch and -timeout must be positive"))
	}
	if o.polls < 1 {
		errs = append(errs, errors.New("-polls must be at least 1"))
	}
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() { os.Exit(realMain(os.Args[1:])) }

func realMain(args []string) int {
	o, err := parseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o, os.Stderr)
	if rep != nil {
		if werr := emit(o, rep); werr != nil {
			fmt.Fprintln(os.Stderr, "bench:", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func emit(o options, rep *report) error {
	body := rep.markdown()
	if o.out == "" {
		_, err := fmt.Print(body)
		return err
	}
	key := fmt.Sprintf("n=%d store=%s sinks=%s", o.n, strings.Join(o.stores, ","), strings.Join(o.sinks, ","))
	if o.sourceRTT > 0 {
		key += " source-rtt=" + o.sourceRTT.String() // a table of its own, not the one without the proxy
	}
	return writeOut(o.out, key, body)
}

// bench is one benchmark run's shared state.
type bench struct {
	o         options
	log       io.Writer
	pg        *pgServer
	tmp       string
	bin       string
	mapping   string
	srcSchema string
	srcDSN    string
	table     string
	zone      *time.Location
	recv      *receiver
	proxy     *delayProxy // with -source-rtt
	rep       *report
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// run is the whole benchmark; the report holds whatever was measured even when a
// later step fails.
func run(ctx context.Context, o options, log io.Writer) (*report, error) {
	zone, err := time.LoadLocation(sourceZone)
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, log: log, zone: zone, rep: &report{}}
	if b.pg, err = openPG(ctx, o.dsn); err != nil {
		return nil, err
	}
	defer b.pg.close()
	if b.tmp, err = os.MkdirTemp("", "egov-bench-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.tmp)
	defer func() {
		if b.proxy != nil {
			b.proxy.close()
		}
	}()
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	if err := b.references(ctx); err != nil {
		return b.rep, err
	}
	if b.needsReceiver() {
		if b.recv, err = startReceiver(o.slow, o.slowDelay); err != nil {
			return b.rep, err
		}
		defer b.recv.close()
	}
	for _, st := range o.stores {
		if err := b.storeRuns(ctx, st); err != nil {
			return b.rep, fmt.Errorf("store %s: %w", st, err)
		}
	}
	if o.profile != "" {
		if err := b.profileRun(ctx); err != nil {
			return b.rep, fmt.Errorf("profile: %w", err)
		}
	}
	b.rep.notes = append(b.rep.notes, "load average at the end: "+loadAvg())
	return b.rep, nil
}

func (b *bench) needsReceiver() bool {
	for _, s := range b.o.sinks {
		if s == "webhook" {
			return true
		}
	}
	return false
}

// prepare builds the binary, seeds the agency table and writes the report header.
func (b *bench) prepare(ctx context.Context) error {
	var err error
	if b.bin = b.o.bin; b.bin == "" {
		b.logf("building %s", binaryPackage)
		if b.bin, err = buildBinary(ctx, b.tmp); err != nil {
			return err
		}
	}
	if b.mapping, err = writeMapping(b.tmp); err != nil {
		return err
	}
	if b.srcSchema, b.srcDSN, err = b.pg.newSchema(ctx, "bench_src"); err != nil {
		return err
	}
	if b.srcDSN, err = b.sourceDSN(b.srcDSN); err != nil {
		return err
	}
	b.table = b.srcSchema + ".ho_so"
	b.logf("seeding %s dossiers", thousands(b.o.n))
	start := time.Now()
	if err := b.pg.seedDossiers(ctx, b.srcSchema, b.o.n, b.o.seed); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	seeded := time.Since(start)
	tableSize, _ := b.pg.schemaSize(ctx, b.srcSchema)
	b.rep.header = []string{
		fmt.Sprintf("### n = %s, store %s, sinks %s", thousands(b.o.n), strings.Join(b.o.stores, ", "), strings.Join(b.o.sinks, ", ")),
		"",
		"- command: `" + b.o.command + "`",
		fmt.Sprintf("- machine: nproc %d, %s, %s RAM; PostgreSQL %s on the same machine", runtime.NumCPU(), cpuModel(), memTotal(), b.pgVersion(ctx)),
		fmt.Sprintf("- %s %s/%s, commit %s, %s", runtime.Version(), runtime.GOOS, runtime.GOARCH, commit(), time.Now().UTC().Format("2006-01-02 15:04 UTC")),
		fmt.Sprintf("- agency table: %s rows seeded by COPY FROM in %s, %s with its (cursor, key) index", thousands(b.o.n), secondsText(seeded)+" s", mbText(tableSize)),
		"- load average at start (1, 5, 15 min): " + loadAvg() + " — this machine is shared, so wall times are noisy; the daemon's CPU seconds (user + system, from its rusage; PostgreSQL's work is not in them) are steadier",
		fmt.Sprintf("- daemon: batch_size %d, delivery concurrency %s, %s, webhook receiver answers %.0f%% of requests after %s, per-run timeout %s",
			b.o.batch, concurrencyText(b.o.concurrency), orderText(b.o.syncFirst), b.o.slow*100, b.o.slowDelay, b.o.timeout),
	}
	if b.o.sourceRTT > 0 {
		b.rep.header = append(b.rep.header, fmt.Sprintf("- the agency table's readers (COPY floor, plain loop, Bento, the daemon's source) reach PostgreSQL through a proxy that adds %s to every round trip (`-source-rtt`)", b.o.sourceRTT))
	}
	return nil
}

func orderText(syncFirst bool) string {
	if syncFirst {
		return "run --once --sync-first (delivery after the sync)"
	}
	return "delivery while syncing (run --once's default)"
}

func concurrencyText(c int) string {
	if c == 0 {
		return "default (4)"
	}
	return fmt.Sprint(c)
}

// references measures the floor and the plain Go loop.
func (b *bench) references(ctx context.Context) error {
	b.logf("COPY floor")
	// Best of three: the floor is what PostgreSQL can do, not a noisy sample.
	floorDSN, err := b.sourceDSN(b.pg.base)
	if err != nil {
		return err
	}
	best, bytes, err := copyFloor(ctx, floorDSN, b.table, 3)
	if err != nil {
		return err
	}
	b.rep.floor = best
	b.rep.add(result{what: floorWhat, count: b.o.n, unit: "rows", dur: best, done: true,
		note: fmt.Sprintf("best of 3 in one psql session (\\timing: no connection set-up); %s of COPY text", mbText(bytes))})

	b.logf("plain Go loop")
	d, n, err := plainLoop(ctx, b.srcDSN, b.table, filepath.Join(b.tmp, "plain.jsonl"), b.zone)
	if err != nil {
		return err
	}
	b.rep.add(result{what: "plain Go loop (lib/pq read, normalise, sha256, JSON lines; no state)", count: n, unit: "rows", dur: d, done: true})
	if b.o.bento != "" {
		return b.bentoRun(ctx)
	}
	return nil
}

func (b *bench) pgVersion(ctx context.Context) string {
	var v string
	if err := b.pg.db.QueryRowContext(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "?"
	}
	return strings.Fields(v)[0]
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.0f GB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "?"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}
