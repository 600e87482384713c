package zalo

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Child processes: the test binary runs itself with ZALO_CHILD set and becomes a
// daemon's zalo sink against the parent's fake Zalo and a shared store.
const (
	envChild = "ZALO_CHILD"
	envFake  = "ZALO_FAKE_URL"
	envStore = "ZALO_STORE" // sqlite:PATH or postgres:DSN
	envFrom  = "ZALO_FROM"  // first notice number
	envCount = "ZALO_COUNT"
)

// child builds a sink in this (child) process from the environment and delivers
// notices ZALO_FROM..+ZALO_COUNT, retrying transient errors as the dispatcher
// would; it exits non-zero on any failure.
func child(t *testing.T) {
	kind, conf, _ := cut(os.Getenv(envStore))
	cfg := store.Config{Driver: kind, Path: conf}
	if kind == store.DriverPostgres {
		cfg = store.Config{Driver: kind, DSN: conf, MaxOpenConns: 4}
	}
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	url := os.Getenv(envFake)
	o := *NewOptions()
	o.AppID, o.SecretKey, o.OAID = fakeAppID, fakeSecret, "oa-1"
	o.OAuthURL, o.OAURL, o.ZNSURL = url, url, url
	o.RatePerMinute = 600000
	s, err := New(pipeline.Env{Name: "zalo", Clock: func() time.Time { return day }, Zone: hcm, State: st,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}, o)
	if err != nil {
		t.Fatal(err)
	}
	from, _ := strconv.Atoi(os.Getenv(envFrom))
	count, _ := strconv.Atoi(os.Getenv(envCount))
	for i := from; i < from+count; i++ {
		ev := newNotice(fmt.Sprintf("HS-%d", i), "r", phoneN(i), "")
		ev.Message.Text = fmt.Sprintf("Hồ sơ %d. [%s]", i, ev.ID)
		var err error
		for attempt := 0; attempt < 20; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = s.Deliver(ctx, ev)
			cancel()
			if err == nil || pipeline.IsPermanent(err) {
				break
			}
		}
		if err != nil {
			t.Fatalf("notice %d: %v", i, err)
		}
	}
}

func cut(s string) (string, string, bool) {
	for i := range s {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// startChild runs this test in a child process with the given environment.
func startChild(t *testing.T, test string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// A daemon killed right after a refresh, before its first send, is restarted:
// the restarted one uses the pair stored by the refresh, not the spent one.
func TestCrashAfterRefreshBeforeFirstSend(t *testing.T) {
	if os.Getenv(envChild) == "crash" {
		child(t)
		return
	}
	f := newFakeZalo(t)
	path := filepath.Join(t.TempDir(), "state.db")
	st := openStore(t, path)
	access, refresh := f.pair()
	f.invalidate() // the stored access token no longer works: the first send refreshes
	if _, err := st.SaveZaloToken(t.Context(), store.ZaloToken{OAID: "oa-1", AccessToken: access, RefreshToken: refresh,
		ExpiresAt: day.Add(time.Hour * 20), RefreshedAt: day}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertZaloFollowers(t.Context(), []store.ZaloFollower{{OAID: "oa-1", UserID: "u1", Phone: phoneN(1), Followed: true, UpdatedAt: day}}); err != nil {
		t.Fatal(err)
	}
	st.Close() // the child owns the store while it runs
	f.follow("u1")

	arrived := make(chan struct{})
	release := make(chan struct{})
	var first atomic.Bool
	f.onSend = func(string) bool {
		if first.CompareAndSwap(false, true) { // the child's first send: it refreshed already; kill it now
			close(arrived)
			<-release
			return false
		}
		return true
	}
	cmd := startChild(t, "TestCrashAfterRefreshBeforeFirstSend", envChild+"=crash", envFake+"="+f.srv.URL,
		envStore+"=sqlite:"+path, envFrom+"=1", envCount+"=1")
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the child never sent")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(release)

	// The restarted daemon.
	h := &harness{t: t, fake: f, st: openStore(t, path), clock: newClock(day), logs: &syncBuffer{}}
	h.sink = h.build(testOptions(f))
	ev := newNotice("HS-1", "r", phoneN(1), "")
	ev.Message.Text = fmt.Sprintf("Hồ sơ %d. [%s]", 1, ev.ID)
	if err := h.deliver(ev); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	msgs, refreshes, reused := f.snapshot()
	if refreshes != 1 || len(reused) != 0 {
		t.Fatalf("refreshes = %d, reused %v; want the child's one refresh and no reuse", refreshes, reused)
	}
	if len(msgs) != 1 || msgs[0].Token == access {
		t.Fatalf("messages %+v; want one, sent with the refreshed token", msgs)
	}
	if h.sink.Refreshes() != 0 {
		t.Fatal("the restarted sink refreshed again instead of using the stored pair")
	}
}

// Two daemon processes on one PostgreSQL store, their token invalidated again and
// again, never refresh at the same time and never reuse a refresh token.
func TestTwoProcessesOnPostgresNeverRefreshAtOnce(t *testing.T) {
	if os.Getenv(envChild) == "pg" {
		child(t)
		return
	}
	dsn, _ := testpg.Schema(t)
	st, err := store.Open(t.Context(), store.Config{Driver: store.DriverPostgres, DSN: dsn, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := newFakeZalo(t)
	f.refreshDelay = 30 * time.Millisecond
	f.invalidateEvery = 25
	access, refresh := f.pair()
	if _, err := st.SaveZaloToken(t.Context(), store.ZaloToken{OAID: "oa-1", AccessToken: access, RefreshToken: refresh,
		ExpiresAt: day.Add(20 * time.Hour), RefreshedAt: day}, nil); err != nil {
		t.Fatal(err)
	}
	const each = 100
	fs := make([]store.ZaloFollower, 2*each)
	for i := range fs {
		fs[i] = store.ZaloFollower{OAID: "oa-1", UserID: fmt.Sprintf("u%d", i), Phone: phoneN(i), Followed: true, UpdatedAt: day}
		f.follow(fs[i].UserID)
	}
	if _, err := st.UpsertZaloFollowers(t.Context(), fs); err != nil {
		t.Fatal(err)
	}
	a := startChild(t, "TestTwoProcessesOnPostgresNeverRefreshAtOnce", envChild+"=pg", envFake+"="+f.srv.URL,
		envStore+"=postgres:"+dsn, envFrom+"=0", envCount+"="+strconv.Itoa(each))
	b := startChild(t, "TestTwoProcessesOnPostgresNeverRefreshAtOnce", envChild+"=pg", envFake+"="+f.srv.URL,
		envStore+"=postgres:"+dsn, envFrom+"="+strconv.Itoa(each), envCount+"="+strconv.Itoa(each))
	errA, errB := a.Wait(), b.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("children: %v, %v", errA, errB)
	}
	msgs, refreshes, reused := f.snapshot()
	f.mu.Lock()
	maxInflight := f.maxInflight
	f.mu.Unlock()
	if maxInflight != 1 {
		t.Errorf("%d refreshes ran at once; want one at a time", maxInflight)
	}
	if len(reused) != 0 {
		t.Errorf("refresh tokens used twice: %v", reused)
	}
	count := map[string]int{}
	for _, id := range idsInTexts(msgs) {
		count[id]++
	}
	if len(msgs) != 2*each || len(count) != 2*each {
		t.Errorf("Zalo holds %d messages for %d notices; want each of %d once", len(msgs), len(count), 2*each)
	}
	// Every invalidation costs one refresh, whichever process saw it first.
	if want := (2*each - 1) / f.invalidateEvery; refreshes != want {
		t.Errorf("refreshes = %d; want %d, one per invalidation", refreshes, want)
	}
}
