package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestChaosKilledTwentyTimesLosesNothingAndCreatesNothingTwice runs the daemon as a
// subprocess against a PostgreSQL table that keeps changing, delivering to a webhook
// receiver that fails a third of its requests, and kills it with SIGKILL at random
// moments. Every change must end up accepted by the receiver, in order per record,
// and no change may have been given two event identities.
func TestChaosKilledTwentyTimesLosesNothingAndCreatesNothingTwice(t *testing.T) {
	const kills = 20
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	e := newE2E(t, 50, "30s")
	r := newReceiver(t)
	r.set(func(r *receiver) { r.failRate = 1.0 / 3 })
	e.withWebhook(r, "    delivery: { concurrency: 4 }\n")
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

	// The agency: inserts new dossiers and moves existing ones on, but changes a
	// dossier again only after the receiver accepted its previous change, so that
	// every change is one the daemon can see (polling coalesces faster changes).
	var mu sync.Mutex
	made := map[string][]int{} // key -> statuses, in the order they were written
	var keys []string
	stop := make(chan struct{})
	mutatorDone := make(chan struct{})
	go func() {
		defer close(mutatorDone)
		rng := rand.New(rand.NewPCG(seed+1, seed)) // the agency's own; the kill loop has its own
		n := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond): // the agency's pace, not a wait for a condition
			}
			accepted := r.accepted()
			mu.Lock()
			var key string
			status := 1
			if len(keys) == 0 || rng.IntN(3) == 0 {
				n++
				key = fmt.Sprintf("HS-%05d", n)
			} else {
				k := keys[rng.IntN(len(keys))]
				got, want := accepted[k], made[k]
				if len(got) == 0 || fmt.Sprint(got[len(got)-1].After["status"]) != fmt.Sprint(want[len(want)-1]) {
					mu.Unlock()
					continue // its last change has not arrived yet
				}
				key, status = k, want[len(want)-1]%10+1
			}
			mu.Unlock()
			if _, err := e.db.Exec(`INSERT INTO hoso VALUES ($1, 'Trương Thị Lan', $2, now())
				ON CONFLICT (ma_ho_so) DO UPDATE SET trang_thai = EXCLUDED.trang_thai, ngay_cap_nhat = now()`, key, status); err != nil {
				t.Errorf("agency write: %v", err)
				return
			}
			mu.Lock()
			if made[key] == nil {
				keys = append(keys, key)
			}
			made[key] = append(made[key], status)
			mu.Unlock()
		}
	}()

	for i := 0; i < kills; i++ {
		cmd := start()
		// Let it run for a random while (pacing the kills, not waiting for a condition).
		time.Sleep(time.Duration(150+rng.IntN(1200)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	close(stop)
	<-mutatorDone

	final := start()
	mu.Lock()
	total := 0
	for _, s := range made {
		total += len(s)
	}
	mu.Unlock()
	waitFor(t, 3*time.Minute, fmt.Sprintf("all %d changes accepted by the receiver", total), func() bool { return r.count() >= total })
	if err := final.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := final.Wait(); err != nil {
		t.Fatalf("daemon did not exit 0 on SIGTERM: %v", err)
	}

	// Every change arrived, in order per record.
	accepted := r.accepted()
	for key, statuses := range made {
		got := accepted[key]
		if len(got) != len(statuses) {
			t.Errorf("%s: %d changes made, %d events accepted", key, len(statuses), len(got))
			continue
		}
		for i, ev := range got {
			if ev.Version != int64(i+1) || fmt.Sprint(ev.After["status"]) != fmt.Sprint(statuses[i]) {
				t.Errorf("%s: accepted #%d is version %d status %v, want version %d status %d", key, i, ev.Version, ev.After["status"], i+1, statuses[i])
			}
		}
	}
	// No change got two identities: the store holds exactly one event per change,
	// and the receiver saw no id the store does not hold.
	stored := e.storedEvents()
	if len(stored) != total {
		t.Errorf("store holds %d events for %d changes", len(stored), total)
	}
	ids := map[string]bool{}
	for _, ev := range stored {
		ids[ev.ID] = true
	}
	for key, evs := range accepted {
		for _, ev := range evs {
			if !ids[ev.ID] {
				t.Errorf("%s: receiver accepted %s, an id the daemon never stored", key, ev.ID)
			}
		}
	}
	var requests int
	r.set(func(r *receiver) { requests = r.requests })
	t.Logf("%d kills, %d records, %d changes, %d requests to the receiver", kills, len(made), total, requests)
}
