package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	_ "github.com/egov-bridge/egov-bridge/connectors/logsink"   // the sink profiled
	_ "github.com/egov-bridge/egov-bridge/connectors/sqlsource" // the source profiled
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// profileRun runs one first sync and its drain to the log sink in this process
// under runtime/pprof (the daemon has no profiling flag), with the first store of
// -store. It runs them one after the other (`run --once --sync-first`), so each
// profile holds one phase: the CPU profile is switched from sync.cpu.pprof to
// drain.cpu.pprof when the sink sees its first event; heap profiles are taken at
// the same two points. With -changes, the same daemon then polls that many
// changed rows under poll.cpu.pprof (its store has the first sync's WAL to
// checkpoint, which a fresh process would not). It uses only the engine's top-level calls (LoadFile, New,
// RunOnceWith), the ones the binary itself makes.
func (b *bench) profileRun(ctx context.Context) error {
	if err := os.MkdirAll(b.o.profile, 0o755); err != nil {
		return err
	}
	dir := filepath.Join(b.tmp, "profile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	st, err := b.freshStore(ctx, b.o.stores[0], dir)
	if err != nil {
		return err
	}
	sut, err := b.sink(ctx, "log", "log", dir)
	if err != nil {
		return err
	}
	cfgPath, err := b.config(dir, st, sut.spec)
	if err != nil {
		return err
	}
	cfg, err := engine.LoadFile(cfgPath)
	if err != nil {
		return err
	}
	d, err := engine.New(ctx, cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer d.Close()

	b.logf("profiling a first sync and drain to the log sink (%s store) in-process", st.kind)
	p := &profiler{dir: b.o.profile}
	if err := p.start("sync"); err != nil {
		return err
	}
	runCtx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	stop := make(chan struct{})
	switched := make(chan struct{})
	go func() {
		defer close(switched)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for !sut.probe() {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
		if err := p.next("drain"); err != nil {
			b.logf("profile: %v", err)
		}
	}()
	_, runErr := d.RunOnceWith(runCtx, engine.OnceOptions{SyncFirst: true})
	close(stop)
	<-switched
	if err := p.finish(); err != nil {
		return err
	}
	if runErr != nil && runCtx.Err() == nil {
		return runErr
	}
	if b.o.changes > 0 {
		if err := b.profilePoll(runCtx, d, p); err != nil {
			return err
		}
	}
	b.rep.notes = append(b.rep.notes, fmt.Sprintf("profiles of an in-process first sync, drain and incremental poll to the log sink (%s store) in %s: %v",
		st.kind, b.o.profile, p.files))
	return topLists(p.files)
}

// profilePoll profiles the same daemon's poll of -changes changed rows (and the
// delivery of its events) as poll.cpu.pprof, then puts the rows back.
func (b *bench) profilePoll(ctx context.Context, d *engine.Daemon, p *profiler) (err error) {
	if _, err := b.pg.touchDossiers(ctx, b.srcSchema, b.o.changes, sourceZone, b.o.seed); err != nil {
		return err
	}
	defer func() {
		if uerr := b.pg.untouchDossiers(context.WithoutCancel(ctx), b.srcSchema); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	if err := p.start("poll"); err != nil {
		return err
	}
	_, runErr := d.RunOnceWith(ctx, engine.OnceOptions{SyncFirst: true})
	if err := p.finish(); err != nil {
		return err
	}
	return runErr
}

// profiler keeps one CPU profile running and switches files between phases.
type profiler struct {
	dir   string
	mu    sync.Mutex
	cpu   *os.File
	phase string
	files []string
}

func (p *profiler) start(phase string) error {
	f, err := os.Create(filepath.Join(p.dir, phase+".cpu.pprof"))
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.cpu, p.phase = f, phase
	p.files = append(p.files, f.Name())
	return nil
}

// stop ends the running phase's CPU profile and writes its heap profile.
func (p *profiler) stop() error {
	if p.cpu == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := p.cpu.Close()
	p.cpu = nil
	heap := filepath.Join(p.dir, p.phase+".heap.pprof")
	f, herr := os.Create(heap)
	if herr != nil {
		return herr
	}
	defer f.Close()
	runtime.GC() // the heap profile shows live objects as of the last GC
	if herr := pprof.WriteHeapProfile(f); herr != nil {
		return herr
	}
	p.files = append(p.files, heap)
	return err
}

func (p *profiler) next(phase string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.stop(); err != nil {
		return err
	}
	return p.start(phase)
}

func (p *profiler) finish() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stop()
}

// topLists writes `go tool pprof -top` beside each CPU profile, for reading
// without the tool.
func topLists(files []string) error {
	for _, f := range files {
		if filepath.Ext(f) != ".pprof" {
			continue
		}
		for _, mode := range []string{"-top", "-top -cum"} {
			args := append([]string{"tool", "pprof"}, strings.Fields(mode)...)
			args = append(args, "-nodecount=40", f)
			out, err := exec.Command("go", args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("go tool pprof %s: %w: %s", f, err, out)
			}
			suffix := ".top.txt"
			if mode != "-top" {
				suffix = ".cum.txt"
			}
			if err := os.WriteFile(f+suffix, out, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
