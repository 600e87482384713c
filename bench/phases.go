package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// storeRef is one fresh state store.
type storeRef struct {
	kind   string
	path   string // sqlite
	dsn    string // postgres
	schema string // postgres
}

func (b *bench) freshStore(ctx context.Context, kind, dir string) (storeRef, error) {
	if kind == "postgres" {
		schema, dsn, err := b.pg.newSchema(ctx, "bench_store")
		return storeRef{kind: kind, dsn: dsn, schema: schema}, err
	}
	return storeRef{kind: kind, path: filepath.Join(dir, "state.db")}, nil
}

// storeTables lists the store's largest tables with their indexes, for the size
// table: where the bytes per record go.
func (b *bench) storeTables(ctx context.Context, s storeRef) string {
	var sizes []tableSize
	var err error
	if s.kind == "postgres" {
		sizes, err = b.pg.tableSizes(ctx, s.schema)
	} else {
		sizes, err = sqliteTables(ctx, s.path)
	}
	if err != nil {
		return "?"
	}
	parts := make([]string, 0, 4)
	for i, t := range sizes {
		if i == 4 || t.bytes < 1<<20 {
			break
		}
		parts = append(parts, t.name+" "+mbText(t.bytes))
	}
	return strings.Join(parts, ", ")
}

func (b *bench) storeSize(ctx context.Context, s storeRef) int64 {
	if s.kind == "postgres" {
		n, _ := b.pg.schemaSize(ctx, s.schema)
		return n
	}
	return sqliteSize(s.path)
}

// sinkUnderTest is a sink of a generated config and how to watch it.
type sinkUnderTest struct {
	spec      sinkSpec
	probe     func() bool // has it seen an event?
	delivered func() int  // distinct events it holds
	note      func() string
}

// watching is what a daemon run with the sink watches: the sink, and the
// server's CPU.
func (b *bench) watching(s sinkUnderTest) watch {
	return watch{probe: s.probe, delivered: s.delivered, serverCPU: b.pg.serverCPU}
}

// serverNote says what the run cost the PostgreSQL server, when it was measured.
func serverNote(r daemonRun) string {
	if r.serverCPU <= 0 {
		return ""
	}
	return fmt.Sprintf("PostgreSQL server CPU %s s over the run", secondsText(r.serverCPU))
}

func (b *bench) sink(ctx context.Context, kind, name, dir string) (sinkUnderTest, error) {
	switch kind {
	case "webhook":
		b.recv.reset()
		return sinkUnderTest{
			spec:  sinkSpec{name: name, yaml: fmt.Sprintf("type: webhook, url: %q, secret: bench-secret", b.recv.url)},
			probe: func() bool { return !b.recv.firstAt().IsZero() },
			delivered: func() int {
				n, _, _ := b.recv.stats()
				return n
			},
			note: func() string {
				_, req, slow := b.recv.stats()
				return fmt.Sprintf("%s requests, %s answered after %s", thousands(req), thousands(slow), b.o.slowDelay)
			},
		}, nil
	case "pgtable":
		schema, _, err := b.pg.newSchema(ctx, "bench_sink")
		if err != nil {
			return sinkUnderTest{}, err
		}
		table := schema + ".events"
		return sinkUnderTest{
			spec:      sinkSpec{name: name, yaml: fmt.Sprintf("type: pgtable, dsn: %q, schema: %s", b.pg.base, schema)},
			probe:     func() bool { return b.pg.anyRow(ctx, table) },
			delivered: func() int { return b.pg.countRows(ctx, table) },
			note:      func() string { return "" },
		}, nil
	default:
		path := filepath.Join(dir, name+".jsonl")
		return sinkUnderTest{
			spec:      sinkSpec{name: name, yaml: fmt.Sprintf("type: log, path: %q", path)},
			probe:     func() bool { return fileNonEmpty(path) },
			delivered: func() int { return countLines(path) },
			note:      func() string { return "" },
		}, nil
	}
}

func (b *bench) config(dir string, st storeRef, sink sinkSpec) (string, error) {
	cfg := daemonConfig{
		store: st.kind, storePath: st.path, storeDSN: st.dsn, sourceDSN: b.srcDSN,
		mapping: b.mapping, batchSize: b.o.batch, concurrency: b.o.concurrency, sink: sink,
	}
	path := filepath.Join(dir, "egov-"+sink.name+".yaml")
	return path, cfg.write(path)
}

// storeRuns measures one store: per sink a fresh store, its first sync and the
// drain to that sink; on the first sink's store also an idle run and the
// incremental poll.
func (b *bench) storeRuns(ctx context.Context, kind string) error {
	for i, sinkKind := range b.o.sinks {
		dir := filepath.Join(b.tmp, kind+"-"+sinkKind)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		st, err := b.freshStore(ctx, kind, dir)
		if err != nil {
			return err
		}
		sut, err := b.sink(ctx, sinkKind, sinkKind, dir)
		if err != nil {
			return err
		}
		cfg, err := b.config(dir, st, sut.spec)
		if err != nil {
			return err
		}
		b.logf("%s store: first sync and drain to %s", kind, sinkKind)
		r, err := runDaemon(ctx, b.bin, cfg, b.o.timeout, b.watching(sut), b.o.syncFirst)
		if err != nil {
			return err
		}
		synced, delivered := b.addFirstSync(kind, sinkKind, r, sut)
		if i > 0 {
			continue
		}
		size := storeSize{store: kind, afterSync: b.storeSize(ctx, st), tables: b.storeTables(ctx, st),
			records: r.stats.rows, undelivered: !delivered}
		if synced && b.o.changes > 0 {
			if err := b.incremental(ctx, kind, dir, st); err != nil {
				return err
			}
			size.afterIncr, size.measuredIncr = b.storeSize(ctx, st), true
		} else if !synced {
			b.rep.notes = append(b.rep.notes, fmt.Sprintf("%s store: the first sync did not finish within -timeout %s, so the incremental poll was not measured", kind, b.o.timeout))
		}
		b.rep.sizes = append(b.rep.sizes, size)
	}
	return nil
}

// addFirstSync reports a first sync + drain run and says whether the sync and the
// delivery finished. run --once delivers while it syncs, so the phases overlap:
// the sync ends at the daemon's "synced" line, the delivery runs from the sink's
// first event to the exit, and the drain after the sync is what was left to
// deliver when the sync ended (with the machine to itself: the dispatcher's own
// speed).
func (b *bench) addFirstSync(kind, sinkKind string, r daemonRun, sut sinkUnderTest) (synced, drained bool) {
	delivered := sut.delivered()
	synced = r.synced > 0
	sync := result{what: "first sync (read + map + diff + commit)", store: kind, sink: sinkKind,
		count: r.stats.rows, unit: "rows", dur: r.synced, cpu: r.cpuAtSync, done: synced,
		note: fmt.Sprintf("process start to the daemon's \"synced\" line (took=%s from the run's start to its last commit); %s events delivered meanwhile, their CPU included",
			secondsText(r.took), thousands(r.deliveredAtSync))}
	sync.note = join(sync.note, bulkNote(r.stderr))
	if !synced {
		sync.dur, sync.cpu = r.wall, r.cpu
		sync.note = fmt.Sprintf("did not finish in %s: %s rows read", b.o.timeout, thousands(r.stats.rows))
	}
	b.rep.add(sync)
	if r.firstDelivery > 0 {
		drained = !r.timedOut && delivered >= r.stats.events
		note := sut.note()
		if !drained {
			note = join(fmt.Sprintf("stopped by -timeout %s: %s of %s events delivered", b.o.timeout, thousands(delivered), thousands(r.stats.events)), note)
		}
		b.rep.add(result{what: "delivery to " + sinkKind, store: kind, sink: sinkKind, count: delivered, unit: "events",
			dur: r.wall - r.firstDelivery, cpu: r.cpu - r.cpuAtFirst, done: drained,
			note: join(fmt.Sprintf("the sink's first event (at %s s) to the exit: overlaps the sync, so bounded by its pace", secondsText(r.firstDelivery)), note)})
		if synced {
			b.rep.add(result{what: "drain to " + sinkKind, store: kind, sink: sinkKind, count: delivered - r.deliveredAtSync, unit: "events",
				dur: r.wall - r.synced, cpu: r.cpu - r.cpuAtSync, done: drained,
				note: "what was left at the \"synced\" line, delivered by the exit: the dispatcher with the machine to itself"})
		}
	}
	total := result{what: "run --once total", store: kind, sink: sinkKind, count: r.stats.rows, unit: "rows",
		dur: r.wall, cpu: r.cpu, rss: r.maxRSS, done: !r.timedOut, note: join(join("end to end: sync and delivery", serverNote(r)), exitNote(r))}
	b.rep.add(total)
	return synced, drained
}

// incremental measures an idle run and o.polls polls of o.changes changed rows
// each (the median poll is reported) on a store that has finished its first
// sync. They deliver to log sinks of their own, so a backlog the timeout left
// for the sink under test does not count here.
func (b *bench) incremental(ctx context.Context, kind, dir string, st storeRef) error {
	idle, err := b.sink(ctx, "log", "idle", dir)
	if err != nil {
		return err
	}
	cfg, err := b.config(dir, st, idle.spec)
	if err != nil {
		return err
	}
	b.logf("%s store: idle run", kind)
	r, err := runDaemon(ctx, b.bin, cfg, b.o.timeout, b.watching(idle), b.o.syncFirst)
	if err != nil {
		return err
	}
	b.rep.add(result{what: "idle run --once (start, poll, nothing new, exit)", store: kind, sink: "log",
		count: r.stats.rows, unit: "rows", dur: r.wall, cpu: r.cpu, rss: r.maxRSS, done: !r.timedOut, note: exitNote(r)})

	polls, err := b.polls(ctx, kind, dir, st)
	if err != nil {
		return err
	}
	p, spread := medianPoll(polls)
	what := fmt.Sprintf("incremental poll of %s changed rows", thousands(p.changed))
	note := fmt.Sprintf("process start to the daemon's \"synced\" line; %s events, the first delivered at %s s", thousands(p.stats.events), secondsText(p.firstDelivery))
	poll := result{what: what, store: kind, sink: "log",
		count: p.stats.rows, unit: "rows", dur: p.synced, cpu: p.cpuAtSync, done: p.synced > 0, note: join(spread, note)}
	if p.synced == 0 {
		poll.dur, poll.cpu, poll.note = p.wall, p.cpu, "the sync did not end: "+exitNote(p.daemonRun)
	}
	b.rep.add(poll)
	if p.synced > 0 {
		b.rep.add(result{what: "incremental poll, the daemon's own measure", store: kind, sink: "log", count: p.stats.rows, unit: "rows",
			dur: p.took, done: true, note: join(spread, "from the source's run start to its last commit (the daemon's \"synced … took\" log line): no process start, no delivery")})
	}
	b.rep.add(result{what: "incremental run --once total", store: kind, sink: "log", count: p.delivered, unit: "events",
		dur: p.wall, cpu: p.cpu, rss: p.maxRSS, done: !p.timedOut, note: join(join(join(spread, "with the delivery"), serverNote(p.daemonRun)), exitNote(p.daemonRun))})
	return nil
}

// pollRun is one incremental poll: the daemon's run, how many rows were
// changed for it and how many events its sink got.
type pollRun struct {
	daemonRun
	changed, delivered int
}

// polls runs -polls incremental polls on the store, each on -changes rows of
// its own (picked with the seed plus the poll's number), put back as they were
// after the poll: every poll sees the same kind of change (first-sync records
// changed for the first time), on a store a little fuller each time.
func (b *bench) polls(ctx context.Context, kind, dir string, st storeRef) ([]pollRun, error) {
	var out []pollRun
	for k := range b.o.polls {
		changed, err := b.pg.touchDossiers(ctx, b.srcSchema, b.o.changes, sourceZone, b.o.seed+uint64(k))
		if err != nil {
			return nil, err
		}
		r, err := b.poll(ctx, kind, dir, st, k, changed)
		// The next poll, and the next store's first sync, start from the same table.
		if uerr := b.pg.untouchDossiers(context.WithoutCancel(ctx), b.srcSchema); uerr != nil {
			err = errors.Join(err, uerr)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// poll runs the k-th incremental poll after changed rows were touched.
func (b *bench) poll(ctx context.Context, kind, dir string, st storeRef, k, changed int) (pollRun, error) {
	name := "incr"
	if k > 0 {
		name = fmt.Sprintf("incr%d", k+1)
	}
	incr, err := b.sink(ctx, "log", name, dir)
	if err != nil {
		return pollRun{}, err
	}
	cfg, err := b.config(dir, st, incr.spec)
	if err != nil {
		return pollRun{}, err
	}
	if cerr := b.pg.checkpoint(ctx); cerr != nil {
		b.logf("%v (the poll is measured without it)", cerr)
	}
	b.logf("%s store: incremental poll %d of %d: %d changed rows", kind, k+1, b.o.polls, changed)
	r, err := runDaemon(ctx, b.bin, cfg, b.o.timeout, b.watching(incr), b.o.syncFirst)
	if err != nil {
		return pollRun{}, err
	}
	return pollRun{daemonRun: r, changed: changed, delivered: incr.delivered()}, nil
}

// medianPoll picks the poll whose own measure (took) is the median, a poll
// that did not finish counting as the slowest, and says how the others spread.
func medianPoll(polls []pollRun) (pollRun, string) {
	if len(polls) == 1 {
		return polls[0], ""
	}
	order := slices.Clone(polls)
	slowest := func(p pollRun) time.Duration {
		if p.synced == 0 {
			return math.MaxInt64
		}
		return p.took
	}
	slices.SortStableFunc(order, func(a, b pollRun) int { return cmp.Compare(slowest(a), slowest(b)) })
	spread := fmt.Sprintf("median of %d polls; the daemon's own measure %s–%s s", len(order), secondsText(order[0].took), secondsText(order[len(order)-1].took))
	if order[len(order)-1].synced == 0 {
		spread = fmt.Sprintf("median of %d polls; fastest %s s, at least one did not end", len(order), secondsText(order[0].took))
	}
	return order[(len(order)-1)/2], spread
}

func exitNote(r daemonRun) string {
	switch {
	case r.timedOut:
		return "stopped by -timeout"
	case r.exitErr != nil:
		return fmt.Sprintf("exit: %v: %s", r.exitErr, failureLine(r.stderr))
	}
	return ""
}

// failureLine is the line of a failed run's log that says why: the last error,
// else its last line (the first is usually the daemon starting up).
func failureLine(log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "level=ERROR") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
