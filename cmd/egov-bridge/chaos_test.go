package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// TestChaosKillsOutageAndReplayKeepEveryRecordInOrder runs the daemon against a
// PostgreSQL table that keeps changing — records change again before their last
// change was delivered, so several versions of one record are in flight — and
// delivers to a webhook receiver that fails a third of its requests. In phase A it
// kills the daemon (a subprocess) with SIGKILL at random moments while the
// receiver refuses some records for good; then the receiver is fixed while those
// records keep changing, and later `egov-bridge replay` runs while the daemon
// works. In phase B an in-process daemon
// with an injected clock lives through a three-hour receiver outage (far past the
// old 20-attempt limit, 45 minutes with the default backoff) and the backlog
// drains. At the end, for every record, the versions the receiver accepted are
// strictly increasing and end at the table's current state, no change was given
// two identities, and nothing is left in the outbox or dead letters.
func TestChaosKillsOutageAndReplayKeepEveryRecordInOrder(t *testing.T) {
	const (
		kills    = 16
		fixAt    = 5  // the kill round in which the receiver stops refusing records
		replayAt = 10 // the kill round in which the operator replays, the daemon running
		maxKeys  = 60
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	e := newE2E(t, 50, "30s")
	r := newReceiver(t)
	r.set(func(r *receiver) { r.failRate = 1.0 / 3 })
	// Fast retries for phase A (real time); no attempt limit, as by default.
	e.withWebhookDelivery(r, "    delivery: { concurrency: 4 }\n", "{ backoff_min: 20ms, backoff_max: 200ms, poll: 50ms }")
	logPath := filepath.Join(e.dir, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("daemon log (tail):\n%s", b)
		}
	})
	start := func() *exec.Cmd { return startDaemon(t, e.config, logFile) }

	// The agency writes every 15ms: a new dossier now and then, otherwise the next
	// status of a random one, whether or not its last change was delivered.
	stop := make(chan struct{})
	agencyDone := make(chan struct{})
	go func() {
		defer close(agencyDone)
		rng := rand.New(rand.NewPCG(seed+1, seed)) // the agency's own
		status := map[string]int{}
		var keys []string
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond): // the agency's pace, not a wait for a condition
			}
			var key string
			if len(keys) < maxKeys && (len(keys) == 0 || rng.IntN(3) == 0) {
				key = fmt.Sprintf("HS-%05d", len(keys)+1)
				keys = append(keys, key)
			} else {
				key = keys[rng.IntN(len(keys))]
			}
			status[key] = status[key]%10 + 1
			if _, err := e.db.Exec(`INSERT INTO hoso VALUES ($1, 'Trương Thị Lan', $2, now())
				ON CONFLICT (ma_ho_so) DO UPDATE SET trang_thai = EXCLUDED.trang_thai, ngay_cap_nhat = now()`, key, status[key]); err != nil {
				t.Errorf("agency write: %v", err)
				return
			}
		}
	}()
	stopAgency := sync.OnceFunc(func() { close(stop); <-agencyDone })
	defer stopAgency()

	// Phase A: kills; every fifth dossier refused for good (422) until the replay.
	r.set(func(r *receiver) {
		r.rejectIf = func(key string) bool { n, _ := strconv.Atoi(key[3:]); return n%5 == 0 }
	})
	for i := 0; i < kills; i++ {
		cmd := start()
		switch i {
		case fixAt:
			// The receiver is fixed; the records it refused stay held (their newer
			// versions must not overtake the dead letters) until the replay.
			waitFor(t, 30*time.Second, "dead letters", func() bool { return e.count(`SELECT count(*) FROM dead_letters`) > 0 })
			r.set(func(r *receiver) { r.rejectIf = nil })
		case replayAt:
			t.Logf("replay while the daemon runs:\n%s", e.cli(0, "replay", "-c", e.config))
		}
		// Let it run for a random while (pacing the kills, not waiting for a condition).
		time.Sleep(time.Duration(150+rng.IntN(1000)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	// Answers refused just before the fix may have been dead-lettered after the
	// replay read the dead letters: the operator replays once more.
	t.Logf("second replay:\n%s", e.cli(0, "replay", "-c", e.config))
	checkIncreasing(t, "after the kills and the replay", r.accepted())

	// Phase B: an in-process daemon on an injected clock; the receiver (whose
	// signature check reads the same clock) is down for three hours of that clock.
	clock := newSimClock(time.Now())
	r.set(func(r *receiver) { r.now = clock.Now; r.down = true })
	write(t, e.config, strings.Replace(mustRead(t, e.config), "{ backoff_min: 20ms, backoff_max: 200ms, poll: 50ms }", "{ poll: 50ms }", 1))
	cfg, err := engine.LoadFile(e.config) // built-in retries: backoff 1s..5m, no attempt limit, max_age 72h
	if err != nil {
		t.Fatal(err)
	}
	d, err := engine.New(context.Background(), cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(logFile, nil)), Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	outageEnd := clock.Now().Add(3 * time.Hour)
	clock.run(time.Minute) // a simulated minute every 10ms
	// The outage lasts three simulated hours at least, and until events have been
	// tried more often than the old limit of 20 attempts allowed.
	var tried, dead int
	waitFor(t, 30*time.Second, "three simulated hours of outage and over 20 attempts", func() bool {
		tried = e.count(`SELECT coalesce(max(attempts), 0) FROM outbox`)
		dead = e.count(`SELECT count(*) FROM dead_letters`)
		return dead != 0 || (!clock.Now().Before(outageEnd) && tried > 20)
	})
	clock.run(10 * time.Second)
	if dead != 0 {
		t.Fatalf("%d dead letters after %s of outage; want every event still retried", dead, clock.Now().Sub(outageEnd.Add(-3*time.Hour)).Round(time.Minute))
	}
	r.set(func(r *receiver) { r.down = false })
	stopAgency()

	// Every record converges on the table's current state.
	current := map[string]string{}
	rows, err := e.db.Query(`SELECT ma_ho_so, trang_thai FROM hoso`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var s int
		if err := rows.Scan(&k, &s); err != nil {
			t.Fatal(err)
		}
		current[k] = fmt.Sprint(s)
	}
	rows.Close()
	converged := func() bool {
		acc := r.accepted()
		for k, s := range current {
			got := acc[k]
			if len(got) == 0 || fmt.Sprint(got[len(got)-1].After["status"]) != s {
				return false
			}
		}
		return e.count(`SELECT count(*) FROM outbox`) == 0
	}
	waitFor(t, 30*time.Second, "every record's current state accepted and the outbox empty", converged)
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("daemon stopped with %v", err)
	}
	clock.stop()

	// Strictly increasing versions per record, ending at the current state, which
	// is also the store's latest version of the record.
	accepted := r.accepted()
	latest := map[string]int64{}
	rows, err = e.db.Query(`SELECT key, version FROM snapshot`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		latest[k] = v
	}
	rows.Close()
	checkIncreasing(t, "at the end", accepted)
	changes := 0
	for key, status := range current {
		evs := accepted[key]
		last := evs[len(evs)-1]
		if fmt.Sprint(last.After["status"]) != status || last.Version != latest[key] {
			t.Errorf("%s: last accepted is version %d status %v; the table holds status %s, the store version %d",
				key, last.Version, last.After["status"], status, latest[key])
		}
		changes += len(evs)
	}
	// No change got two identities: one stored event per (record, version), and the
	// receiver saw no id the store does not hold.
	stored := e.storedEvents()
	ids := map[string]bool{}
	perVersion := map[string]bool{}
	for _, ev := range stored {
		ids[ev.ID] = true
		kv := fmt.Sprintf("%s@%d", ev.Key, ev.Version)
		if perVersion[kv] {
			t.Errorf("%s has two events", kv)
		}
		perVersion[kv] = true
	}
	for key, evs := range accepted {
		for _, ev := range evs {
			if !ids[ev.ID] {
				t.Errorf("%s: receiver accepted %s, an id the daemon never stored", key, ev.ID)
			}
		}
	}
	if n := e.count(`SELECT count(*) FROM dead_letters WHERE state IN ('holding', 'open')`); n != 0 {
		t.Errorf("%d dead letters left unresolved", n)
	}
	var requests int
	r.set(func(r *receiver) { requests = r.requests })
	t.Logf("%d kills, %d records, %d events stored, %d accepted, %d requests; during the outage events were tried up to %d times",
		kills, len(current), len(stored), changes, requests, tried)
}

// checkIncreasing reports every record whose accepted versions do not strictly
// increase: a consumer got an older version after a newer one.
func checkIncreasing(t *testing.T, when string, accepted map[string][]pipeline.Event) {
	t.Helper()
	for key, evs := range accepted {
		for i := 1; i < len(evs); i++ {
			if evs[i].Version <= evs[i-1].Version {
				t.Errorf("%s: %s the receiver had accepted version %d after version %d", when, key, evs[i].Version, evs[i-1].Version)
			}
		}
	}
}

// simClock is an injected clock that a test moves forward in steps, in the
// background, while the daemon runs against it.
type simClock struct {
	mu    sync.Mutex
	now   time.Time
	step  time.Duration
	quit  chan struct{}
	ended chan struct{}
}

func newSimClock(at time.Time) *simClock { return &simClock{now: at} }

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// run advances the clock by step every 10ms of real time until stop; calling it
// again changes the step.
func (c *simClock) run(step time.Duration) {
	c.mu.Lock()
	c.step = step
	started := c.quit != nil
	if !started {
		c.quit, c.ended = make(chan struct{}), make(chan struct{})
	}
	c.mu.Unlock()
	if started {
		return
	}
	go func() {
		defer close(c.ended)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.quit:
				return
			case <-tick.C:
				c.mu.Lock()
				c.now = c.now.Add(c.step)
				c.mu.Unlock()
			}
		}
	}()
}

func (c *simClock) stop() {
	c.mu.Lock()
	quit := c.quit
	c.mu.Unlock()
	if quit != nil {
		close(quit)
		<-c.ended
	}
}
