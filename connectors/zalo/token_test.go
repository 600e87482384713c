package zalo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// deliverAll delivers evs with workers goroutines, retrying a transient error the
// way the dispatcher would (at once here), and fails on a permanent one.
func deliverAll(t *testing.T, h *harness, evs []*pipeline.Event, workers int) {
	t.Helper()
	ch := make(chan *pipeline.Event)
	errs := make(chan error, len(evs))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range ch {
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					if err = h.deliver(ev); err == nil || pipeline.IsPermanent(err) {
						break
					}
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", ev.Key, err)
				}
			}
		}()
	}
	for _, ev := range evs {
		ch <- ev
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestThousandNoticesWithTheTokenInvalidatedTwice(t *testing.T) {
	h := newHarness(t, nil)
	h.fake.invalidateAt = map[int]bool{300: true, 700: true}
	const n = 1000
	evs := make([]*pipeline.Event, n)
	h.followers(n)
	for i := range evs {
		evs[i] = newNotice(fmt.Sprintf("HS-%04d", i), "dossier.received", phoneN(i), "")
		evs[i].Message.Text = fmt.Sprintf("Hồ sơ HS-%04d đã được tiếp nhận. [%s]", i, evs[i].ID)
	}
	deliverAll(t, h, evs, 16)

	msgs, refreshes, reused := h.fake.snapshot()
	if refreshes != 2 {
		t.Errorf("refreshes = %d, want exactly 2", refreshes)
	}
	if len(reused) > 0 {
		t.Errorf("refresh tokens used twice: %v", reused)
	}
	count := map[string]int{}
	for _, id := range idsInTexts(msgs) {
		count[id]++
	}
	for _, ev := range evs {
		if count[ev.ID] != 1 {
			t.Fatalf("notice %s reached the citizen %d times, want once", ev.Key, count[ev.ID])
		}
	}
	if len(msgs) != n {
		t.Errorf("Zalo accepted %d messages, want %d", len(msgs), n)
	}
	if got := h.sink.Refreshes(); got != 2 {
		t.Errorf("sink counted %d refreshes, want 2", got)
	}
	tok, err := h.st.ZaloToken(t.Context(), "oa-1")
	if err != nil || tok.Generation != 3 {
		t.Errorf("stored token generation = %d, %v; want 3 (the seed and two refreshes)", tok.Generation, err)
	}
}

func TestFiftyConcurrentSendsAtExpiryRefreshOnce(t *testing.T) {
	h := newHarness(t, nil)
	// The stored access token expires within refresh_ahead: every send wants a new one.
	tok, _ := h.st.ZaloToken(t.Context(), "oa-1")
	tok.ExpiresAt = day.Add(10 * time.Minute)
	if _, err := h.st.SaveZaloToken(t.Context(), tok, nil); err != nil {
		t.Fatal(err)
	}
	evs := make([]*pipeline.Event, 50)
	h.followers(len(evs))
	for i := range evs {
		evs[i] = newNotice(fmt.Sprintf("HS-%d", i), "dossier.received", phoneN(i), "Hồ sơ đã được tiếp nhận.")
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, len(evs))
	for _, ev := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- h.deliver(ev)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	msgs, refreshes, reused := h.fake.snapshot()
	if refreshes != 1 || len(reused) != 0 {
		t.Fatalf("refreshes = %d (reused %v), want exactly one", refreshes, reused)
	}
	for _, m := range msgs {
		if m.Token == tok.AccessToken {
			t.Fatalf("a send used the expiring token after the refresh")
		}
	}
}

// A new pair is in the store before any send uses it.
func TestNewPairIsStoredBeforeItIsUsed(t *testing.T) {
	h := newHarness(t, nil)
	h.follower("u1", phoneN(1), true)
	h.fake.invalidate()
	var storedAtSend store.ZaloToken
	h.fake.onSend = func(string) bool {
		storedAtSend, _ = h.st.ZaloToken(context.Background(), "oa-1")
		return true
	}
	if err := h.deliver(newNotice("HS-1", "dossier.received", phoneN(1), "Xin chào.")); err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := h.fake.snapshot()
	if len(msgs) != 1 || storedAtSend.AccessToken != msgs[0].Token {
		t.Fatalf("at the send the store held %q; the send used %q", storedAtSend.AccessToken, msgs[0].Token)
	}
}

func TestRefusedRefreshTokenStopsTheSinkUntilATokenIsSet(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RefusedRetry = 0 })
	h.follower("u1", phoneN(1), true)
	h.fake.invalidate()
	h.fake.mu.Lock()
	h.fake.refuseAll = true
	h.fake.mu.Unlock()

	ev := newNotice("HS-1", "dossier.received", phoneN(1), "Xin chào.")
	for i := 0; i < 3; i++ {
		err := h.deliver(ev)
		var re *RefusedError
		if !errors.As(err, &re) || pipeline.IsPermanent(err) {
			t.Fatalf("attempt %d: %v; want a transient *RefusedError", i, err)
		}
		if !strings.Contains(err.Error(), "egov-bridge zalo token set") {
			t.Fatalf("the error does not tell the operator what to do: %v", err)
		}
		if wait, ok := pipeline.RetryAfterOf(err); !ok || wait != DefaultRefusedRetry {
			t.Fatalf("RetryAfter = %s, %v; want %s", wait, ok, DefaultRefusedRetry)
		}
		if strings.Contains(err.Error(), fakeSecret) || strings.Contains(err.Error(), "R1") {
			t.Fatalf("the error quotes a secret: %v", err)
		}
	}
	_, refreshes, _ := h.fake.snapshot()
	if n := strings.Count(h.logs.String(), "level=ERROR"); n != 1 {
		t.Fatalf("the refusal was logged %d times, want once:\n%s", n, h.logs)
	}
	h.fake.mu.Lock()
	tried := len(h.fake.spent) + len(h.fake.reused)
	h.fake.mu.Unlock()
	if refreshes != 0 || tried != 0 {
		t.Fatalf("refreshes %d, tokens tried %d", refreshes, tried)
	}
	if v := h.sink.metrics.refused; v == nil {
		t.Fatal("no refused gauge")
	}
	if !h.sink.tokens.refused.Load() {
		t.Fatal("the refused gauge is not set")
	}
	tok, _ := h.st.ZaloToken(t.Context(), "oa-1")
	if tok.Refused == "" {
		t.Fatal("the refusal is not in the store for `zalo status` and other replicas")
	}

	// The operator re-authorises the app and runs `zalo token set`.
	h.fake.mu.Lock()
	h.fake.refuseAll = false
	h.fake.mu.Unlock()
	_, fresh := h.fake.pair()
	if err := SetToken(t.Context(), h.st, "oa-1", fresh, h.clock.now()); err != nil {
		t.Fatal(err)
	}
	if err := h.deliver(ev); err != nil {
		t.Fatalf("after token set: %v", err)
	}
	if msgs, _, _ := h.fake.snapshot(); len(msgs) != 1 {
		t.Fatalf("Zalo got %d messages, want 1", len(msgs))
	}
	if h.sink.tokens.refused.Load() {
		t.Fatal("the refused gauge is still set")
	}
}

func TestTokenSeededFromConfigOnce(t *testing.T) {
	f := newFakeZalo(t)
	st := openStore(t, t.TempDir()+"/s.db")
	_, seed := f.pair()
	f.invalidate() // the seed comes without an access token anyway
	h := &harness{t: t, fake: f, st: st, clock: newClock(day), logs: &syncBuffer{}}
	o := testOptions(f)
	o.RefreshToken = seed
	h.sink = h.build(o)
	h.follower("u1", phoneN(1), true)
	if err := h.deliver(newNotice("HS-1", "r", phoneN(1), "a.")); err != nil {
		t.Fatal(err)
	}
	// A second sink built from the same, now stale, config must not put the spent
	// seed back into the store.
	h.sink = h.build(o)
	if err := h.deliver(newNotice("HS-2", "r", phoneN(1), "b.")); err != nil {
		t.Fatal(err)
	}
	_, refreshes, reused := f.snapshot()
	if refreshes != 1 || len(reused) != 0 {
		t.Fatalf("refreshes = %d, reused = %v; want one refresh and no reuse", refreshes, reused)
	}
}
