package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// withWebhook rewrites the e2e config to deliver to a signed webhook instead of the
// log file, with fast backoff so tests do not wait long.
func (e *e2e) withWebhook(r *receiver, extra string) {
	e.t.Helper()
	e.withWebhookDelivery(r, extra, "{ backoff_min: 20ms, backoff_max: 200ms, max_attempts: 1000, poll: 50ms }")
}

// withWebhookDelivery is withWebhook with the top-level delivery block given
// (a flow mapping; "" for none, leaving the built-in defaults).
func (e *e2e) withWebhookDelivery(r *receiver, extra, delivery string) {
	e.t.Helper()
	cfg := mustRead(e.t, e.config)
	cfg = strings.Replace(cfg, "  - { name: events, type: log, path: events.jsonl }",
		fmt.Sprintf("  - name: events\n    type: webhook\n    url: %s\n    secret: %s\n    timeout: 5s\n%s", r.srv.URL, r.secret, extra), 1)
	if delivery != "" {
		cfg += "delivery: " + delivery + "\n"
	}
	write(e.t, e.config, cfg)
}

// daemon builds an in-process daemon on the config with an injected clock.
func (e *e2e) daemon(clock func() time.Time) *engine.Daemon {
	e.t.Helper()
	cfg, err := engine.LoadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := engine.New(context.Background(), cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close() })
	return d
}

func TestPermanentRejectionIsDeadLetteredThenReplayed(t *testing.T) {
	e := newE2E(t, 100, "0s")
	r := newReceiver(t)
	e.withWebhook(r, "")
	r.set(func(r *receiver) { r.reject["HS-2"] = true })
	e.exec(`INSERT INTO hoso SELECT 'HS-' || g, 'Ngô Thị Yến', 2, now() - interval '1 minute' FROM generate_series(1, 3) g`)

	var out, errOut strings.Builder
	if code := run([]string{"run", "--once", "-c", e.config}, &out, &errOut); code != 0 {
		t.Fatalf("run --once exited %d: %s", code, errOut.String())
	}
	if got := r.accepted(); len(got["HS-1"]) != 1 || len(got["HS-3"]) != 1 || len(got["HS-2"]) != 0 {
		t.Fatalf("accepted %v; want HS-1 and HS-3 only", got)
	}
	out.Reset()
	if code := run([]string{"replay", "-c", e.config, "--dry-run"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "dossier/HS-2") || !strings.Contains(out.String(), "HTTP 422") {
		t.Fatalf("replay --dry-run exited %d:\n%s%s", code, out.String(), errOut.String())
	}

	r.set(func(r *receiver) { r.reject = map[string]bool{} }) // the receiver is fixed
	out.Reset()
	if code := run([]string{"replay", "-c", e.config, "--sink", "events"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "1 dead letters are back in the outbox") {
		t.Fatalf("replay exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	if code := run([]string{"run", "--once", "-c", e.config}, &out, &errOut); code != 0 {
		t.Fatalf("run --once after replay exited %d: %s", code, errOut.String())
	}
	if got := r.accepted(); len(got["HS-2"]) != 1 {
		t.Fatalf("HS-2 not delivered after replay: %v", got)
	}
	out.Reset()
	if code := run([]string{"state", "audit", "-c", e.config}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "replay") {
		t.Fatalf("audit log lacks the replay:\n%s", out.String())
	}
}

func TestSinkOutageBacklogDrainsInOrderPerKey(t *testing.T) {
	e := newE2E(t, 100, "0s")
	r := newReceiver(t)
	e.withWebhook(r, "    delivery: { concurrency: 8 }\n")
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	d := e.daemon(clock)
	ctx := context.Background()

	r.set(func(r *receiver) { r.down = true })
	e.exec(`INSERT INTO hoso SELECT 'HS-' || g, 'Đặng Văn Hải', 1, now() - interval '1 minute' FROM generate_series(1, 20) g`)
	for v := 2; v <= 6; v++ { // five more versions of every dossier while the sink is down
		if _, err := d.RunOnce(ctx, nil); err == nil {
			t.Fatal("RunOnce reported success while the sink was down")
		}
		e.exec(`UPDATE hoso SET trang_thai = $1::int, ngay_cap_nhat = now() - interval '1 minute' + $1::int * interval '1 second'`, v)
		advance(time.Second)
	}
	if _, err := d.RunOnce(ctx, nil); err == nil {
		t.Fatal("RunOnce reported success while the sink was down")
	}
	if r.count() != 0 {
		t.Fatalf("%d events accepted during the outage", r.count())
	}

	r.set(func(r *receiver) { r.down = false })
	for i := 0; i < 50 && r.count() < 120; i++ {
		advance(time.Minute) // past every backoff
		if _, err := d.Dispatcher.Drain(ctx); err != nil && err != engine.ErrUndelivered {
			t.Fatal(err)
		}
	}
	got := r.accepted()
	if len(got) != 20 || r.count() != 120 {
		t.Fatalf("accepted %d events for %d keys, want 120 for 20", r.count(), len(got))
	}
	for key, evs := range got {
		for i, ev := range evs {
			if ev.Version != int64(i+1) || fmt.Sprint(ev.After["status"]) != fmt.Sprint(i+1) {
				t.Fatalf("key %s: event %d is version %d status %v; want version %d in order", key, i, ev.Version, ev.After["status"], i+1)
			}
		}
	}
}

func TestTenThousandMalformedRowsAreQuarantinedWhileGoodRowsFlow(t *testing.T) {
	e := newE2E(t, 500, "0s")
	// Every fifth row is good; the others carry a status no mapping accepts.
	e.exec(`INSERT INTO hoso SELECT 'HS-' || lpad(g::text, 5, '0'), 'Phan Thị Thảo',
		CASE WHEN g % 5 = 0 THEN 4 ELSE 40 + g % 7 END, now() - interval '1 minute' + g * interval '1 millisecond'
		FROM generate_series(1, 12500) g`)

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	st := e.runOnce()["motcua"]
	close(stop)
	<-sampled

	if st.Rows != 12500 || st.Quarantined != 10000 || st.Events != 2500 {
		t.Fatalf("run = %+v; want 12500 rows, 10000 quarantined, 2500 events", st)
	}
	var n int
	if err := e.db.QueryRow(`SELECT count(*) FROM quarantine WHERE reason LIKE 'status (column trang_thai): value 4_ is not one of%'`).Scan(&n); err != nil || n != 10000 {
		t.Fatalf("quarantine holds %d rows with the reason (%v), want 10000", n, err)
	}
	if got := len(e.logged()); got != 2500 {
		t.Fatalf("log sink got %d events, want 2500", got)
	}
	if grown := int64(peak.Load()) - int64(base.HeapInuse); grown > 64<<20 {
		t.Fatalf("heap grew by %d MiB while syncing; memory must stay bounded by the batch", grown>>20)
	}
	var out, errOut strings.Builder
	if code := run([]string{"quarantine", "-c", e.config, "--limit", "3", "--raw"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "is not one of") {
		t.Fatalf("quarantine list exited %d:\n%s%s", code, out.String(), errOut.String())
	}
}

func TestQuarantineReprocessAfterMappingFix(t *testing.T) {
	e := newE2E(t, 100, "0s")
	e.exec(`INSERT INTO hoso VALUES ('HS-1', 'Vũ Minh Quân', 11, now() - interval '1 minute'), ('HS-2', 'Lê Thu Hà', 2, now() - interval '1 minute')`)
	if st := e.runOnce()["motcua"]; st.Quarantined != 1 || st.Events != 1 {
		t.Fatalf("first sync %+v", st)
	}
	// The agency added status 11; the integrator widens the mapping and reprocesses.
	write(t, filepath.Join(e.dir, "dossier.yaml"), strings.Replace(e2eMapping, "in: [1,2,3,4,5,6,7,8,9,10]", "in: [1,2,3,4,5,6,7,8,9,10,11]", 1))
	var out, errOut strings.Builder
	if code := run([]string{"quarantine", "reprocess", "-c", e.config}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "motcua: 1 rows now map cleanly") || !strings.Contains(out.String(), "; 1 events;") {
		t.Fatalf("reprocess exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	evs := e.storedEvents()
	if last := evs[len(evs)-1]; last.Key != "HS-1" || last.Type != pipeline.EventCreated {
		t.Fatalf("last event %+v, want HS-1 created", last)
	}
	var left int
	e.db.QueryRow(`SELECT count(*) FROM quarantine`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d quarantine entries left", left)
	}
}

func TestQuarantineDismissIsAudited(t *testing.T) {
	e := newE2E(t, 100, "0s")
	e.exec(`INSERT INTO hoso VALUES ('HS-1', 'Vũ Minh Quân', 11, now() - interval '1 minute'), ('HS-2', 'Lê Thu Hà', 12, now() - interval '1 minute')`)
	if st := e.runOnce()["motcua"]; st.Quarantined != 2 {
		t.Fatalf("first sync %+v", st)
	}
	var id int64
	e.db.QueryRow(`SELECT id FROM quarantine WHERE row_key = 'HS-1'`).Scan(&id)
	var out, errOut strings.Builder
	if code := run([]string{"quarantine", "dismiss", "-c", e.config, fmt.Sprint(id)}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "1 entries dismissed") {
		t.Fatalf("dismiss exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	var left []string
	rows, _ := e.db.Query(`SELECT row_key FROM quarantine`)
	for rows.Next() {
		var k string
		rows.Scan(&k)
		left = append(left, k)
	}
	rows.Close()
	if fmt.Sprint(left) != "[HS-2]" {
		t.Fatalf("quarantine after dismiss = %v; want HS-2 only", left)
	}
	var action, detail string
	e.db.QueryRow(`SELECT action, detail FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&action, &detail)
	if action != "quarantine dismiss" || !strings.Contains(detail, fmt.Sprint(id)) {
		t.Fatalf("audit log: %q %q", action, detail)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"quarantine", "dismiss", "-c", e.config}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "or --all") {
		t.Fatalf("dismiss without ids exited %d: %s", code, errOut.String())
	}
	if code := run([]string{"quarantine", "dismiss", "--all", "-c", e.config}, &out, &errOut); code != 0 {
		t.Fatalf("dismiss --all exited %d: %s", code, errOut.String())
	}
	var n int
	e.db.QueryRow(`SELECT count(*) FROM quarantine`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d entries left after --all", n)
	}
}

// cli runs an egov-bridge command in-process and returns its stdout; a non-zero
// exit fails the test unless wantCode says otherwise.
func (e *e2e) cli(wantCode int, args ...string) string {
	e.t.Helper()
	var out, errOut strings.Builder
	if code := run(args, &out, &errOut); code != wantCode {
		e.t.Fatalf("egov-bridge %s exited %d, want %d:\n%s%s", strings.Join(args, " "), code, wantCode, out.String(), errOut.String())
	}
	return out.String()
}

// versionsOf returns the versions the receiver accepted for key, in order.
func versionsOf(r *receiver, key string) string {
	var vs []string
	for _, ev := range r.accepted()[key] {
		vs = append(vs, fmt.Sprint(ev.Version))
	}
	return strings.Join(vs, " ")
}

// holdScenario dead-letters HS-2's first version (the receiver refuses it), fixes
// the receiver, and commits two more versions of HS-2, delivering once after each.
func holdScenario(t *testing.T, sinkDelivery string) (*e2e, *receiver) {
	e := newE2E(t, 100, "0s")
	r := newReceiver(t)
	e.withWebhook(r, sinkDelivery)
	r.set(func(r *receiver) { r.reject["HS-2"] = true })
	e.exec(`INSERT INTO hoso SELECT 'HS-' || g, 'Ngô Thị Yến', 2, now() - interval '1 minute' FROM generate_series(1, 3) g`)
	e.cli(0, "run", "--once", "-c", e.config)
	r.set(func(r *receiver) { r.reject = map[string]bool{} }) // the receiver is fixed
	for _, status := range []int{4, 5} {
		e.exec(`UPDATE hoso SET trang_thai = $1::int, ngay_cap_nhat = now() - interval '30 seconds' + $1::int * interval '1 second' WHERE ma_ho_so = 'HS-2'`, status)
		var out, errOut strings.Builder
		run([]string{"run", "--once", "-c", e.config}, &out, &errOut) // exits 1 while events are held
	}
	return e, r
}

// A dead letter holds its record's later events (on_dead: hold, the default)
// until `replay`; then the record arrives in order, and `state` and `replay` show
// what is held.
func TestDeadLetterHoldsRecordUntilReplayedThenArrivesInOrder(t *testing.T) {
	e, r := holdScenario(t, "")
	if got := versionsOf(r, "HS-2"); got != "" {
		t.Fatalf("HS-2 versions %q reached the receiver while version 1 is a dead letter; want none", got)
	}
	state := e.cli(0, "state", "-c", e.config)
	if !regexp.MustCompile(`(?m)^events\s+2\s+1\s+1\s+2\s*$`).MatchString(state) {
		t.Fatalf("state does not show 2 outbox rows, 1 dead letter, 1 held record, 2 held events:\n%s", state)
	}
	dry := e.cli(0, "replay", "-c", e.config, "--dry-run")
	if !strings.Contains(dry, "holding") || !strings.Contains(dry, "1 dead letters would be replayed (dry run); 2 held events of their records would go on") {
		t.Fatalf("replay --dry-run:\n%s", dry)
	}
	out := e.cli(0, "replay", "-c", e.config)
	if !strings.Contains(out, "1 dead letters are back in the outbox") || !strings.Contains(out, "followed in order by the 2 held events") {
		t.Fatalf("replay:\n%s", out)
	}
	e.cli(0, "run", "--once", "-c", e.config)
	if got := versionsOf(r, "HS-2"); got != "1 2 3" {
		t.Fatalf("HS-2 arrived as versions %q, want 1 2 3", got)
	}
}

// Under on_dead: skip the later versions flow, and the older dead letter is never
// resent: replay says it skipped it and why.
func TestOnDeadSkipReplayDoesNotResendSupersededDeadLetters(t *testing.T) {
	e, r := holdScenario(t, "    delivery: { on_dead: skip }\n")
	if got := versionsOf(r, "HS-2"); got != "2 3" {
		t.Fatalf("HS-2 arrived as versions %q, want 2 3 flowing past the dead letter", got)
	}
	out := e.cli(0, "replay", "-c", e.config)
	if !strings.Contains(out, "0 dead letters are back in the outbox") || !strings.Contains(out, "superseded") ||
		!strings.Contains(out, "1 superseded dead letters not resent: a newer event of their record already reached the sink") {
		t.Fatalf("replay:\n%s", out)
	}
	e.cli(0, "run", "--once", "-c", e.config)
	if got := versionsOf(r, "HS-2"); got != "2 3" {
		t.Fatalf("after replay HS-2 arrived as %q; version 1 must never follow version 3", got)
	}
}

// `replay --dismiss` gives a dead letter up: its record's held events go on, and
// a later replay does not resend it.
func TestReplayDismissReleasesTheHeldRecord(t *testing.T) {
	e, r := holdScenario(t, "")
	out := e.cli(0, "replay", "-c", e.config, "--dismiss")
	if !strings.Contains(out, "1 dead letters dismissed") || !strings.Contains(out, "the 2 held events of their records go on") {
		t.Fatalf("replay --dismiss:\n%s", out)
	}
	e.cli(0, "run", "--once", "-c", e.config)
	if got := versionsOf(r, "HS-2"); got != "2 3" {
		t.Fatalf("after dismissal HS-2 arrived as %q, want 2 3", got)
	}
	if out := e.cli(0, "replay", "-c", e.config); !strings.Contains(out, "1 dismissed dead letters not resent") {
		t.Fatalf("replay after dismissal:\n%s", out)
	}
	if audit := e.cli(0, "state", "audit", "-c", e.config); !strings.Contains(audit, "dismiss") {
		t.Fatalf("audit log lacks the dismissal:\n%s", audit)
	}
}

// With the built-in delivery settings a receiver that refuses the sink's key for
// hours (401 after a key rotation) loses nothing: the events are retried, well past
// the old 20-attempt limit, and all arrive once the key is fixed.
func TestKeyRotationOutageIsRetriedUntilFixed(t *testing.T) {
	e := newE2E(t, 100, "0s")
	r := newReceiver(t)
	e.withWebhookDelivery(r, "", "{ poll: 50ms }") // built-in retries: backoff 1s..5m, no attempt limit, max_age 72h
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r.set(func(r *receiver) { r.now = clock; r.secret = "rotated-by-the-receiver" })
	d := e.daemon(clock)
	ctx := context.Background()
	e.exec(`INSERT INTO hoso SELECT 'HS-' || g, 'Đặng Văn Hải', 1, now() - interval '1 minute' FROM generate_series(1, 5) g`)
	if _, err := d.RunOnce(ctx, nil); err == nil {
		t.Fatal("RunOnce reported success while the receiver refused the key")
	}
	for range 36 { // three hours of refusals, an attempt every backoff
		advance(5 * time.Minute)
		if _, err := d.Dispatcher.Drain(ctx); err != engine.ErrUndelivered {
			t.Fatalf("Drain during the refusal: %v", err)
		}
	}
	if n := e.count(`SELECT count(*) FROM dead_letters`); n != 0 {
		t.Fatalf("%d dead letters after three hours of 401s; want every event still retried", n)
	}
	if n := e.count(`SELECT min(attempts) FROM outbox`); n <= 20 {
		t.Fatalf("events were tried %d times, want more than the old limit of 20", n)
	}
	r.set(func(r *receiver) { r.secret = "whsec-test" }) // the operator fixes the key
	advance(5 * time.Minute)
	if _, err := d.Dispatcher.Drain(ctx); err != nil {
		t.Fatalf("Drain after the fix: %v", err)
	}
	if r.count() != 5 {
		t.Fatalf("%d events accepted after the fix, want 5", r.count())
	}
}
