package zalo

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

var hcm = mustZone("Asia/Ho_Chi_Minh")

func mustZone(name string) *time.Location {
	z, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return z
}

// day is 10:00 in Hồ Chí Minh City, outside the quiet hours.
var day = time.Date(2026, 3, 10, 10, 0, 0, 0, hcm)

// testClock is a settable clock.
type testClock struct{ t atomic.Pointer[time.Time] }

func newClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}
func (c *testClock) now() time.Time      { return *c.t.Load() }
func (c *testClock) set(t time.Time)     { c.t.Store(&t) }
func (c *testClock) add(d time.Duration) { c.set(c.now().Add(d)) }

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a sink on a fresh SQLite store against a fake Zalo.
type harness struct {
	t     *testing.T
	fake  *fakeZalo
	st    store.Store
	clock *testClock
	sink  *Sink
	logs  *syncBuffer
}

func openStore(t *testing.T, path string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// testOptions points a sink at the fake.
func testOptions(f *fakeZalo) Options {
	o := *NewOptions()
	o.AppID, o.SecretKey, o.OAID = fakeAppID, fakeSecret, "oa-1"
	o.OAuthURL, o.OAURL, o.ZNSURL = f.srv.URL, f.srv.URL, f.srv.URL
	o.Timeout = config.Duration(5 * time.Second)
	o.RatePerMinute = 600000 // tests are not throttled
	return o
}

// newHarness builds a sink; edit changes its options. The store starts with a
// usable pair issued by the fake, so only refreshes the test causes are counted.
func newHarness(t *testing.T, edit func(o *Options)) *harness {
	t.Helper()
	f := newFakeZalo(t)
	h := &harness{t: t, fake: f, st: openStore(t, filepath.Join(t.TempDir(), "state.db")), clock: newClock(day), logs: &syncBuffer{}}
	access, refresh := f.pair()
	if _, err := h.st.SaveZaloToken(t.Context(), store.ZaloToken{OAID: "oa-1", AccessToken: access, RefreshToken: refresh,
		ExpiresAt: day.Add(25 * time.Hour), RefreshedAt: day}, nil); err != nil {
		t.Fatal(err)
	}
	o := testOptions(f)
	if edit != nil {
		edit(&o)
	}
	h.sink = h.build(o)
	return h
}

func (h *harness) build(o Options) *Sink {
	h.t.Helper()
	env := pipeline.Env{Name: "zalo", Clock: h.clock.now, Zone: hcm, State: h.st,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	s, err := New(env, o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { s.Close() })
	return s
}

// follower links a phone to a following user id in the store and at the fake.
func (h *harness) follower(userID, phone string, followed bool) {
	h.t.Helper()
	if _, err := h.st.UpsertZaloFollowers(h.t.Context(), []store.ZaloFollower{{OAID: "oa-1", UserID: userID,
		Phone: phone, Followed: followed, UpdatedAt: day}}); err != nil {
		h.t.Fatal(err)
	}
	if followed {
		h.fake.follow(userID)
	}
}

// followers makes u0..u(n-1) follow, each linked to phoneN(i), in one write.
func (h *harness) followers(n int) {
	h.t.Helper()
	fs := make([]store.ZaloFollower, n)
	for i := range fs {
		fs[i] = store.ZaloFollower{OAID: "oa-1", UserID: fmt.Sprintf("u%d", i), Phone: phoneN(i), Followed: true, UpdatedAt: day}
		h.fake.follow(fs[i].UserID)
	}
	if _, err := h.st.UpsertZaloFollowers(h.t.Context(), fs); err != nil {
		h.t.Fatal(err)
	}
}

// newNotice builds a rule event with a message to phone.
func newNotice(key, rule, phone, text string) *pipeline.Event {
	ev := &pipeline.Event{Type: rule, Rule: rule, Source: "motcua", Entity: "dossier", Key: key, Agency: "UBND-TEST",
		Version: 1, After: map[string]any{"code": key, "citizen": "Nguyễn Văn Đức", "status_label": "Đã có kết quả",
			"due_at": "2026-03-14T17:00:00Z"}, // midnight of 15/03 in Hồ Chí Minh City
		Message: &pipeline.Message{Text: text, Phone: phone}, DetectedAt: day}
	ev.ID = pipeline.EventID("motcua", "dossier", key, 1, rule, text)
	return ev
}

func (h *harness) deliver(ev *pipeline.Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.sink.Deliver(ctx, ev)
}

// sends returns the store's records of one event.
func (h *harness) sends(ev *pipeline.Event) []store.ZaloSend {
	h.t.Helper()
	r, err := h.st.ZaloSends(h.t.Context(), "zalo", ev.ID, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func phoneN(i int) string { return fmt.Sprintf("849%08d", i) }
