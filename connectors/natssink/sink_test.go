package natssink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/egov-bridge/egov-bridge/internal/testnats"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/sinktest"
)

// fast shortens nats.go's pause between reconnect attempts, so tests that cut the
// connection wait milliseconds, not seconds, for it to come back.
var fast = nats.ReconnectWait(20 * time.Millisecond)

// testOptions are the defaults on a fresh stream and prefix of the test server.
func testOptions(t testing.TB) Options {
	t.Helper()
	name, prefix := testnats.Stream(t)
	o := *NewOptions()
	o.URL, o.Stream, o.SubjectPrefix = testnats.URL(t), name, prefix
	return o
}

// newSink builds a sink on a fresh stream; mod adjusts the options first.
func newSink(t testing.TB, mod func(*Options), extra ...nats.Option) (*Sink, Options) {
	t.Helper()
	o := testOptions(t)
	if mod != nil {
		mod(&o)
	}
	s, err := build(t, o, nil, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return s, o
}

// build opens a sink, closed when the test ends; log, when given, receives its logs.
func build(t testing.TB, o Options, log *logBuffer, extra ...nats.Option) (*Sink, error) {
	t.Helper()
	env := pipeline.Env{Name: "bus"}
	if log != nil {
		env.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := open(ctx, env, o, extra...)
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

// logBuffer collects log output; nats.go logs from its own goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func deliver(t testing.TB, s *Sink, ev *pipeline.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Deliver(ctx, ev); err != nil {
		t.Fatalf("deliver %s (%s v%d): %v", ev.ID, ev.Key, ev.Version, err)
	}
}

// waitStatus waits until the sink's connection reaches status.
func waitStatus(t *testing.T, nc *nats.Conn, status nats.Status) {
	t.Helper()
	ch := nc.StatusChanged(status) // registered before looking, so no change is missed
	defer nc.RemoveStatusListener(ch)
	if nc.Status() == status {
		return
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("connection is %v after 10s, want %v", nc.Status(), status)
	}
}

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestEventLandsOnEntityAgencySubjectWithHeaders(t *testing.T) {
	s, o := newSink(t, nil)
	ev := sinktest.Event("motcua", "HS-001", 1)
	ev.Agency = "UBND-CG"
	deliver(t, s, ev)

	msgs := testnats.Messages(t, o.URL, o.Stream)
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if want := o.SubjectPrefix + ".dossier.ubnd-cg"; m.Subject() != want {
		t.Errorf("subject = %q, want %q", m.Subject(), want)
	}
	h := m.Headers()
	for name, want := range map[string]string{
		"Nats-Msg-Id":     ev.ID,
		"Egov-Event-Type": "created",
		"Egov-Entity":     "dossier",
		"Egov-Key":        "HS-001",
		"Egov-Version":    "1",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	got := received(t, o)
	if len(got) != 1 || got[0].ID != ev.ID || got[0].Agency != "UBND-CG" || got[0].After["citizen"] != "Nguyễn Văn Đức" {
		t.Fatalf("body = %+v, want the event", got)
	}
}

func TestAgenciesLandOnSanitisedSubjects(t *testing.T) {
	s, o := newSink(t, nil)
	agencies := map[string]string{
		"UBND-CG":    "ubnd-cg",
		"Sở Y tế":    "so_y_te",
		"":           "_",
		"a.b*c>d":    "a_b_c_d",
		"line\nfeed": "line_feed",
	}
	var want []string
	i := 0
	for agency, token := range agencies {
		i++
		ev := sinktest.Event("src", fmt.Sprintf("K-%d", i), 1)
		ev.Agency = agency
		deliver(t, s, ev)
		want = append(want, o.SubjectPrefix+".dossier."+token)
	}
	var got []string
	for _, m := range testnats.Messages(t, o.URL, o.Stream) {
		got = append(got, m.Subject())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("subjects = %q, want %q", got, want)
	}
}

func TestKeyHeaderKeepsTextOnOneLine(t *testing.T) {
	s, o := newSink(t, nil)
	deliver(t, s, sinktest.Event("src", "HS\r\n1", 1))
	deliver(t, s, sinktest.Event("src", "Đ-001", 1))
	msgs := testnats.Messages(t, o.URL, o.Stream)
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(msgs))
	}
	for i, want := range []string{"HS  1", "Đ-001"} {
		if got := msgs[i].Headers().Get(HeaderKey); got != want {
			t.Errorf("Egov-Key = %q, want %q", got, want)
		}
	}
	if got := received(t, o)[0].Key; got != "HS\r\n1" {
		t.Errorf("body key = %q, want the exact key", got)
	}
}

func TestRedeliveryAfterReconnectIsDeduplicated(t *testing.T) {
	proxy := testnats.NewProxy(t, testnats.URL(t))
	s, o := newSink(t, func(o *Options) { o.URL = proxy.URL() }, fast)
	a1, b1 := sinktest.Event("src", "A", 1), sinktest.Event("src", "B", 1)
	deliver(t, s, a1)
	deliver(t, s, b1)

	proxy.Cut()
	waitStatus(t, s.nc, nats.RECONNECTING)
	err := s.Deliver(context.Background(), a1)
	if err == nil || pipeline.IsPermanent(err) || !errors.Is(err, ErrNotConnected) {
		t.Fatalf("deliver while cut off: %v, want a transient ErrNotConnected", err)
	}
	proxy.Restore()
	waitStatus(t, s.nc, nats.CONNECTED)

	// The dispatcher redelivers what it could not confirm, and moves on.
	a2 := sinktest.Event("src", "A", 2) // same key, new id
	for _, ev := range []*pipeline.Event{a1, b1, a2} {
		deliver(t, s, ev)
	}
	var ids []string
	for _, ev := range received(t, o) {
		ids = append(ids, ev.ID)
	}
	if want := []string{a1.ID, b1.ID, a2.ID}; !slices.Equal(ids, want) {
		t.Fatalf("stream holds %q, want %q (each once)", ids, want)
	}
}

func TestStartsWhileNATSIsDownAndDeliversOnceItIsUp(t *testing.T) {
	proxy := testnats.NewProxy(t, testnats.URL(t))
	proxy.Cut()
	s, o := newSink(t, func(o *Options) { o.URL = proxy.URL() }, fast)
	ev := sinktest.Event("src", "A", 1)
	if err := s.Deliver(context.Background(), ev); err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("deliver before NATS is up: %v, want a transient error", err)
	}
	proxy.Restore()
	waitStatus(t, s.nc, nats.CONNECTED)
	deliver(t, s, ev) // checks and creates the stream first
	if got := received(t, o); len(got) != 1 || got[0].ID != ev.ID {
		t.Fatalf("stream holds %+v, want the one event", got)
	}
}

func TestUnreachableServerFailsFastAndTransiently(t *testing.T) {
	o := *NewOptions()
	addr := closedPort(t)
	o.URL = "nats://alice:pw-s3cret-url@" + addr
	var log logBuffer
	start := time.Now()
	s, err := build(t, o, &log)
	if err != nil {
		t.Fatalf("build while NATS is down: %v, want a sink that connects later", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("build took %v while NATS was down, want it bounded", d)
	}

	start = time.Now()
	err = s.Deliver(context.Background(), sinktest.Event("src", "A", 1))
	switch {
	case err == nil:
		t.Fatal("deliver to an unreachable server succeeded")
	case pipeline.IsPermanent(err):
		t.Fatalf("unreachable server classed permanent (the event would be dead-lettered): %v", err)
	case !errors.Is(err, ErrNotConnected):
		t.Fatalf("error does not wrap ErrNotConnected: %v", err)
	case time.Since(start) > time.Second:
		t.Fatalf("deliver took %v, want it to fail fast", time.Since(start))
	case !strings.Contains(err.Error(), addr):
		t.Errorf("error does not say which server: %v", err)
	}
	t.Logf("deliver: %v", err)
	for _, text := range []string{err.Error(), log.String()} {
		if strings.Contains(text, "s3cret") || strings.Contains(text, "alice") {
			t.Fatalf("credentials leaked: %s", text)
		}
	}
}

func TestUnreachableServerWithTokenNeverShowsIt(t *testing.T) {
	o := *NewOptions()
	o.URL = "nats://" + closedPort(t)
	o.Token = "tok-s3cret-value"
	var log logBuffer
	s, err := build(t, o, &log, fast)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Deliver(context.Background(), sinktest.Event("src", "A", 1))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("got %v, want a transient error", err)
	}
	if strings.Contains(err.Error()+log.String(), "s3cret") {
		t.Fatalf("token leaked:\n%v\n%s", err, log.String())
	}
}

func TestTokenInURLNeverShowsInLogs(t *testing.T) {
	o := testOptions(t)
	u, err := url.Parse(o.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("tok-s3cret-value") // the server has no auth and ignores it
	o.URL = u.String()
	var log logBuffer
	s, err := build(t, o, &log)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, sinktest.Event("src", "A", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "connected to NATS") {
		t.Fatalf("no connection logged:\n%s", log.String())
	}
	if strings.Contains(log.String(), "s3cret") {
		t.Fatalf("token leaked into the logs:\n%s", log.String())
	}
}

func TestRegisteredAsNATSAndBuildsWhileDown(t *testing.T) {
	spec, ok := pipeline.LookupSink("nats")
	if !ok {
		t.Fatal(`sink type "nats" is not registered`)
	}
	cfg := spec.Config().(*Options)
	cfg.URL = "nats://" + closedPort(t)
	s, err := spec.Build(context.Background(), pipeline.Env{Name: "bus"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBuildRefusesStreamThatDoesNotCoverSubjects(t *testing.T) {
	o := testOptions(t)
	_, js := testnats.Conn(t, o.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: o.Stream, Subjects: []string{o.SubjectPrefix + ".dossier.*"}}); err != nil {
		t.Fatal(err)
	}
	_, err := build(t, o, nil)
	if err == nil {
		t.Fatal("build accepted a stream that stores only dossier events")
	}
	t.Logf("build: %v", err)
	for _, want := range []string{o.Stream, "do not cover", o.SubjectPrefix + ".>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestBuildRefusesMissingStreamWhenItMayNotCreateIt(t *testing.T) {
	o := testOptions(t)
	o.CreateStream = false
	_, err := build(t, o, nil)
	if err == nil || !strings.Contains(err.Error(), "does not exist and create_stream is false") {
		t.Fatalf("got %v, want a missing-stream error", err)
	}
}

func TestBuildUsesAnExistingStreamThatCoversSubjects(t *testing.T) {
	o := testOptions(t)
	o.CreateStream = false
	_, js := testnats.Conn(t, o.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: o.Stream, Subjects: []string{o.SubjectPrefix + ".>"},
		Duplicates: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	s, err := build(t, o, &log)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, sinktest.Event("src", "A", 1))
	if !strings.Contains(log.String(), "duplicate window is shorter") {
		t.Errorf("no warning about the stream's 30s duplicate window:\n%s", log.String())
	}
}

func TestBuildCreatesStreamWithConfiguredLimits(t *testing.T) {
	_, o := newSink(t, func(o *Options) {
		o.DuplicateWindow = config.Duration(90 * time.Second)
		o.MaxAge = config.Duration(48 * time.Hour)
	})
	_, js := testnats.Conn(t, o.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, o.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if !slices.Equal(cfg.Subjects, []string{o.SubjectPrefix + ".>"}) || cfg.Duplicates != 90*time.Second ||
		cfg.MaxAge != 48*time.Hour || cfg.Replicas != 1 || cfg.Storage != jetstream.FileStorage {
		t.Fatalf("stream config = %+v", cfg)
	}
}

func TestEventLargerThanMaxPayloadIsPermanent(t *testing.T) {
	s, _ := newSink(t, nil)
	ev := sinktest.Event("src", "BIG", 1)
	ev.After["scan"] = strings.Repeat("x", int(s.nc.MaxPayload())+1)
	err := s.Deliver(context.Background(), ev)
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("got %v, want a permanent max_payload error", err)
	}
	t.Logf("deliver: %v", err)
}

func TestEventLargerThanStreamMaxMsgSizeIsPermanent(t *testing.T) {
	o := testOptions(t)
	_, js := testnats.Conn(t, o.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: o.Stream, Subjects: []string{o.SubjectPrefix + ".>"},
		Duplicates: 2 * time.Minute, MaxMsgSize: 1024}); err != nil {
		t.Fatal(err)
	}
	s, err := build(t, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := sinktest.Event("src", "BIG", 1)
	ev.After["note"] = strings.Repeat("Đ", 1024)
	err = s.Deliver(context.Background(), ev)
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "message size exceeds maximum") {
		t.Fatalf("got %v, want a permanent message-size error", err)
	}
	t.Logf("deliver: %v", err)
}

// The stream's set-up is at fault, not the event: retried (never dead-lettered) until
// an operator fixes the streams.
func TestSubjectTakenOverByAnotherStreamIsTransient(t *testing.T) {
	s, o := newSink(t, nil)
	deliver(t, s, sinktest.Event("src", "A", 1))

	// An operator replaces the stream with one under another name.
	_, js := testnats.Conn(t, o.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, o.Stream); err != nil {
		t.Fatal(err)
	}
	other := o.Stream + "_NEW"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: other, Subjects: []string{o.SubjectPrefix + ".>"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), other) })

	err := s.Deliver(context.Background(), sinktest.Event("src", "A", 2))
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "fix the stream") {
		t.Fatalf("got %v, want a transient wrong-stream error", err)
	}
	t.Logf("deliver: %v", err)
}

func TestDeletedStreamIsCreatedAgain(t *testing.T) {
	s, o := newSink(t, nil)
	deliver(t, s, sinktest.Event("src", "A", 1))
	_, js := testnats.Conn(t, o.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, o.Stream); err != nil {
		t.Fatal(err)
	}
	ev := sinktest.Event("src", "A", 2)
	err := s.Deliver(context.Background(), ev)
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("deliver with the stream gone: %v, want a transient error", err)
	}
	t.Logf("deliver: %v", err)
	deliver(t, s, ev) // the retry finds no stream, creates it, and publishes
	if got := received(t, o); len(got) != 1 || got[0].ID != ev.ID {
		t.Fatalf("stream holds %+v, want the redelivered event", got)
	}
}

func TestEventWithoutIDIsPermanent(t *testing.T) {
	s, _ := newSink(t, nil)
	ev := sinktest.Event("src", "A", 1)
	ev.ID = ""
	if err := s.Deliver(context.Background(), ev); !pipeline.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent error", err)
	}
	if err := s.Deliver(context.Background(), nil); !pipeline.IsPermanent(err) {
		t.Fatalf("nil event: got %v, want a permanent error", err)
	}
}

func TestCloseTwiceAndDeliverAfterCloseIsTransient(t *testing.T) {
	s, _ := newSink(t, nil)
	deliver(t, s, sinktest.Event("src", "A", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if !s.nc.IsClosed() {
		t.Fatalf("connection is %v after Close, want closed", s.nc.Status())
	}
	err := s.Deliver(context.Background(), sinktest.Event("src", "A", 2))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("deliver after close: %v, want a transient error", err)
	}
}

// deliverBatch publishes evs as one batch and returns each event's result.
func deliverBatch(t *testing.T, s *Sink, evs ...*pipeline.Event) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := s.DeliverBatch(ctx, evs)
	if len(errs) != len(evs) {
		t.Fatalf("%d results for %d events", len(errs), len(evs))
	}
	return errs
}

// A batch offered while NATS is cut off fails transiently as a whole; offered again
// once NATS is back, each event lands once.
func TestBatchWhileCutOffIsTransientThenLandsOnce(t *testing.T) {
	proxy := testnats.NewProxy(t, testnats.URL(t))
	s, o := newSink(t, func(o *Options) { o.URL = proxy.URL() }, fast)
	a1, b1, c1 := sinktest.Event("src", "A", 1), sinktest.Event("src", "B", 1), sinktest.Event("src", "C", 1)
	for _, err := range deliverBatch(t, s, a1) {
		if err != nil {
			t.Fatal(err)
		}
	}
	proxy.Cut()
	waitStatus(t, s.nc, nats.RECONNECTING)
	for i, err := range deliverBatch(t, s, a1, b1, c1) {
		if err == nil || pipeline.IsPermanent(err) || !errors.Is(err, ErrNotConnected) {
			t.Fatalf("event %d while cut off: %v, want a transient ErrNotConnected", i, err)
		}
	}
	proxy.Restore()
	waitStatus(t, s.nc, nats.CONNECTED)
	for i, err := range deliverBatch(t, s, a1, b1, c1) {
		if err != nil {
			t.Fatalf("event %d after reconnecting: %v", i, err)
		}
	}
	var ids []string
	for _, ev := range received(t, o) {
		ids = append(ids, ev.ID)
	}
	slices.Sort(ids)
	want := []string{a1.ID, b1.ID, c1.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("stream holds %q, want %q (each once)", ids, want)
	}
}

// The stream refusing one message of a batch for its size fails that event alone,
// permanently; the rest of the batch lands.
func TestBatchWithAnEventTooLargeForTheStreamFailsOnlyThatEvent(t *testing.T) {
	o := testOptions(t)
	_, js := testnats.Conn(t, o.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: o.Stream, Subjects: []string{o.SubjectPrefix + ".>"},
		Duplicates: 2 * time.Minute, MaxMsgSize: 1024}); err != nil {
		t.Fatal(err)
	}
	s, err := build(t, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := sinktest.Event("src", "BIG", 1)
	big.After["note"] = strings.Repeat("Đ", 1024)
	errs := deliverBatch(t, s, sinktest.Event("src", "A", 1), big, sinktest.Event("src", "B", 1))
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("the others failed with the big one: %v", errs)
	}
	if !pipeline.IsPermanent(errs[1]) || !strings.Contains(errs[1].Error(), "message size exceeds maximum") {
		t.Fatalf("big event: %v, want a permanent message-size error", errs[1])
	}
	if got := received(t, o); len(got) != 2 {
		t.Fatalf("stream holds %d events, want 2", len(got))
	}
}

// A batch sent after the stream was deleted fails transiently; the retry creates
// the stream again and lands.
func TestBatchAfterTheStreamWasDeletedIsRetriedIntoANewStream(t *testing.T) {
	s, o := newSink(t, nil)
	deliver(t, s, sinktest.Event("src", "A", 1))
	_, js := testnats.Conn(t, o.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, o.Stream); err != nil {
		t.Fatal(err)
	}
	evs := []*pipeline.Event{sinktest.Event("src", "A", 2), sinktest.Event("src", "B", 1)}
	for i, err := range deliverBatch(t, s, evs...) {
		if err == nil || pipeline.IsPermanent(err) {
			t.Fatalf("event %d with the stream gone: %v, want a transient error", i, err)
		}
		t.Logf("event %d: %v", i, err)
	}
	for i, err := range deliverBatch(t, s, evs...) {
		if err != nil {
			t.Fatalf("event %d of the retry: %v", i, err)
		}
	}
	if got := received(t, o); len(got) != 2 {
		t.Fatalf("stream holds %d events, want the 2 redelivered", len(got))
	}
}
