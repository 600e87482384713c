package webhook

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/sinktest"
)

type outcome int

const (
	delivered outcome = iota
	permanent
	transient
	alerted // transient, and the dispatcher raises an alert for the sink
)

func (o outcome) String() string {
	return [...]string{"delivered", "permanent", "transient", "transient with an alert"}[o]
}

func classOf(err error) outcome {
	var alert interface{ AlertReason() string }
	switch {
	case err == nil:
		return delivered
	case errors.Is(err, pipeline.ErrPermanent):
		return permanent
	case errors.As(err, &alert):
		return alerted
	default:
		return transient
	}
}

func TestStatusClassification(t *testing.T) {
	httpDate := testNow.Add(90 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		status     int
		retryAfter string
		want       outcome
		wait       time.Duration // > 0: a *RetryAfterError with this Wait
	}{
		{status: 200, want: delivered},
		{status: 201, want: delivered},
		{status: 204, want: delivered},
		// The event itself is refused: dead letters.
		{status: 400, want: permanent},
		{status: 409, want: permanent},
		{status: 413, want: permanent},
		{status: 422, want: permanent},
		// The sink is refused (a rotated key, a redeploy): retried and alerted.
		{status: 401, want: alerted},
		{status: 403, want: alerted},
		{status: 404, want: alerted},
		{status: 405, want: alerted},
		{status: 410, want: alerted},
		{status: 415, want: alerted},
		{status: 418, want: alerted},
		{status: 408, want: transient},
		{status: 425, want: transient},
		{status: 429, want: transient},
		{status: 500, want: transient},
		{status: 502, want: transient},
		{status: 503, want: transient},
		{status: 504, want: transient},
		{status: 429, retryAfter: "7", want: transient, wait: 7 * time.Second},
		{status: 503, retryAfter: "7", want: transient, wait: 7 * time.Second},
		{status: 429, retryAfter: httpDate, want: transient, wait: 90 * time.Second},
		{status: 503, retryAfter: httpDate, want: transient, wait: 90 * time.Second},
		{status: 503, retryAfter: "99999999999", want: transient, wait: MaxRetryAfter},
		// Nothing usable to wait for: the usual backoff applies.
		{status: 503, retryAfter: testNow.Add(-time.Minute).Format(http.TimeFormat), want: transient},
		{status: 503, retryAfter: "soon", want: transient},
		{status: 503, retryAfter: "-5", want: transient},
	}
	for _, tt := range tests {
		name := http.StatusText(tt.status)
		if tt.retryAfter != "" {
			name += " Retry-After " + tt.retryAfter
		}
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, "the receiver's reason")
			}))
			defer srv.Close()
			s := newSink(t, Options{URL: srv.URL + "/events?token=query-secret", Secret: testSecret})

			err := s.Deliver(context.Background(), sinktest.Event("src", "HS-1", 1))

			if got := classOf(err); got != tt.want {
				t.Fatalf("HTTP %d: %v (%v), want %v", tt.status, got, err, tt.want)
			}
			var rae *RetryAfterError
			switch {
			case tt.wait > 0 && !errors.As(err, &rae):
				t.Fatalf("error %v is not a *RetryAfterError", err)
			case tt.wait > 0 && rae.Wait != tt.wait:
				t.Fatalf("Wait = %s, want %s", rae.Wait, tt.wait)
			case tt.wait == 0 && errors.As(err, &rae):
				t.Fatalf("unexpected wait %s: %v", rae.Wait, err)
			}
			if err == nil {
				return
			}
			msg := err.Error()
			for _, want := range []string{`webhook sink "ioc"`, strings.TrimPrefix(srv.URL, "http://"), "HTTP " + strconv.Itoa(tt.status), "the receiver's reason"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if strings.Contains(msg, "query-secret") || strings.Contains(msg, testSecret) {
				t.Errorf("error leaks a secret: %q", msg)
			}
		})
	}
}

func TestRetryAfterIsMatchableWithoutImportingThePackage(t *testing.T) {
	var err error = &RetryAfterError{Wait: 7 * time.Second, Err: errors.New("HTTP 429")}
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != 7*time.Second {
		t.Fatalf("errors.As through the RetryAfter method failed for %v", err)
	}
	if pipeline.IsPermanent(err) {
		t.Fatal("a Retry-After error must be transient")
	}
}

func TestRefusalReasonKeepsTheStartOfTheBody(t *testing.T) {
	body := "Z" + strings.Repeat("é", 1000) // 2,001 bytes; the cut falls inside an é
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, body)
	}))
	defer srv.Close()
	s := newSink(t, Options{URL: srv.URL})

	err := s.Deliver(context.Background(), sinktest.Event("src", "HS-1", 1))

	if !pipeline.IsPermanent(err) {
		t.Fatalf("422 gave %v, want a permanent error", err)
	}
	msg := err.Error()
	if want := ": Z" + strings.Repeat("é", 255) + " [truncated]"; !strings.HasSuffix(msg, want) {
		t.Fatalf("error %q does not end with the first 511 bytes of the body, cut on a character boundary", msg)
	}
}

func TestRefusalReasonStaysOnOneLine(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "{\"error\": \"bad status\"}\r\nlevel=ERROR msg=forged\x1b[31m\n")
	}))
	defer srv.Close()
	s := newSink(t, Options{URL: srv.URL})

	err := s.Deliver(context.Background(), sinktest.Event("src", "HS-1", 1))

	if !pipeline.IsPermanent(err) {
		t.Fatalf("400 gave %v, want a permanent error", err)
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n\x1b") || !strings.HasSuffix(msg, `: {"error": "bad status"}  level=ERROR msg=forged [31m`) {
		t.Fatalf("error %q: want the body on one line, control characters blanked", msg)
	}
}

func TestRefusedSinkIsRetriedWithAnAlertReason(t *testing.T) {
	for _, code := range []int{401, 403, 404} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
		}))
		s := newSink(t, Options{URL: srv.URL})
		err := s.Deliver(context.Background(), sinktest.Event("src", "HS-1", 1))
		srv.Close()
		var refused *RefusedError
		if pipeline.IsPermanent(err) || !errors.As(err, &refused) || refused.Status != code {
			t.Fatalf("HTTP %d gave %v, want a transient *RefusedError", code, err)
		}
		if got, want := refused.AlertReason(), "http_"+strconv.Itoa(code); got != want {
			t.Errorf("AlertReason = %q, want %q", got, want)
		}
	}
}

func TestRedirectIsRetriedWithAnAlertAndNotFollowed(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "https://user:pw@ioc.example.gov.vn/v2/events?sig=location-secret")
		w.WriteHeader(http.StatusMovedPermanently)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := newSink(t, Options{URL: srv.URL + "/old"})

	err := s.Deliver(context.Background(), sinktest.Event("src", "HS-1", 1))

	if got := classOf(err); got != alerted {
		t.Fatalf("301 gave %v (%v), want a transient error with an alert: the endpoint moved", got, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "HTTP 301") || !strings.Contains(msg, "https://ioc.example.gov.vn/v2/events") {
		t.Errorf("error %q does not name the status and the Location", msg)
	}
	if strings.Contains(msg, "pw@") || strings.Contains(msg, "location-secret") {
		t.Errorf("error %q quotes the Location's credentials", msg)
	}
	if followed.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

func TestRequestCarriesTheContractHeadersAndTheEventJSON(t *testing.T) {
	type captured struct {
		header http.Header
		body   []byte
	}
	got := make(chan captured, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{r.Header.Clone(), b}
	}))
	defer srv.Close()
	s := newSink(t, Options{URL: srv.URL, Headers: map[string]string{"X-Api-Key": "gateway-key"}})
	ev := sinktest.Event("src", "HS-1", 2)

	if err := s.Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}

	c := <-got
	want := map[string]string{
		"Content-Type":    "application/json",
		"User-Agent":      "egov-bridge",
		"Idempotency-Key": ev.ID,
		"X-Api-Key":       "gateway-key",
		SignatureHeader:   "", // no secret, no signature
	}
	for k, v := range want {
		if c.header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, c.header.Get(k), v)
		}
	}
	wantBody, _ := json.Marshal(ev)
	if string(c.body) != string(wantBody) {
		t.Errorf("body = %s\nwant the event's JSON %s", c.body, wantBody)
	}
}

func TestSignedRequestsVerify(t *testing.T) {
	type captured struct {
		sig, key string
		body     []byte
	}
	got := make(chan captured, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{r.Header.Get(SignatureHeader), r.Header.Get("Idempotency-Key"), b}
	}))
	defer srv.Close()
	s := newSink(t, Options{URL: srv.URL, Secret: testSecret})
	ev := sinktest.Event("src", "HS-1", 1)

	if err := s.Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}

	c := <-got
	if c.key != ev.ID {
		t.Errorf("Idempotency-Key = %q, want the event id %q", c.key, ev.ID)
	}
	if !strings.HasPrefix(c.sig, "t=1795766400,v1=") { // testNow in unix seconds
		t.Errorf("signature %q is not stamped with the injected clock", c.sig)
	}
	if err := Verify(testSecret, c.sig, c.body, testNow.Add(30*time.Second), time.Minute); err != nil {
		t.Fatalf("a genuine request does not verify: %v", err)
	}
	tampered := append([]byte(nil), c.body...)
	tampered[len(tampered)-2] ^= 1
	rejections := []struct {
		name   string
		secret string
		body   []byte
		now    time.Time
		want   error
	}{
		{"tampered body", testSecret, tampered, testNow, ErrSignatureMismatch},
		{"wrong secret", "another-secret", c.body, testNow, ErrSignatureMismatch},
		{"stale timestamp", testSecret, c.body, testNow.Add(2 * time.Minute), ErrSignatureExpired},
		{"timestamp from the future", testSecret, c.body, testNow.Add(-2 * time.Minute), ErrSignatureExpired},
	}
	for _, r := range rejections {
		if err := Verify(r.secret, c.sig, r.body, r.now, time.Minute); !errors.Is(err, r.want) {
			t.Errorf("%s: Verify = %v, want %v", r.name, err, r.want)
		}
	}
}

func TestHungReceiverTimesOutAsTransient(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for handlers
	s := newSink(t, Options{URL: srv.URL, Timeout: config.Duration(100 * time.Millisecond)})

	start := time.Now()
	err := s.Deliver(context.Background(), sinktest.Event("src", "HS-1", 1))
	elapsed := time.Since(start)

	if classOf(err) != transient || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung receiver gave %v, want a transient deadline error", err)
	}
	if !strings.Contains(err.Error(), "no response within 100ms") {
		t.Errorf("error %q does not say it timed out", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("Deliver took %s with a 100ms timeout", elapsed)
	}
}

func TestCancellationInFlightIsTransient(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s := newSink(t, Options{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()

	err := s.Deliver(ctx, sinktest.Event("src", "HS-1", 1))

	if classOf(err) != transient || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled delivery gave %v, want a transient error wrapping context.Canceled", err)
	}
}

func TestNetworkErrorIsTransientAndKeepsURLSecretsOut(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close() // nothing listens there any more
	s := newSink(t, Options{URL: "http://ioc-user:userinfo-secret@" + addr + "/hooks/path-secret?token=query-secret", Secret: testSecret})

	err := s.Deliver(context.Background(), sinktest.Event("src", "HS-1", 1))

	if classOf(err) != transient {
		t.Fatalf("refused connection gave %v, want transient", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `webhook sink "ioc" (`+addr+`)`) {
		t.Errorf("error %q does not name the sink and host", msg)
	}
	for _, secret := range []string{"userinfo-secret", "path-secret", "query-secret", testSecret} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q leaks %q", msg, secret)
		}
	}
}

func TestEventWithoutIDIsPermanent(t *testing.T) {
	s := newSink(t, Options{URL: "http://127.0.0.1:1/never-called"})
	for _, ev := range []*pipeline.Event{nil, {Type: "created"}} {
		if err := s.Deliver(context.Background(), ev); !pipeline.IsPermanent(err) {
			t.Errorf("Deliver(%v) = %v, want a permanent error", ev, err)
		}
	}
}

func TestCloseReleasesIdleConnections(t *testing.T) {
	closed := make(chan struct{})
	var once sync.Once
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			once.Do(func() { close(closed) })
		}
	}
	srv.Start()
	defer srv.Close()
	s := newSink(t, Options{URL: srv.URL})
	if err := s.Deliver(context.Background(), sinktest.Event("src", "HS-1", 1)); err != nil {
		t.Fatal(err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle connection was still open 5s after Close")
	}
}

func TestPrivateCAFromCAFile(t *testing.T) {
	rc := &receiver{secret: testSecret, now: func() time.Time { return testNow }}
	srv := httptest.NewTLSServer(rc)
	defer srv.Close()
	dir := t.TempDir()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ioc-ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := testEnv()
	env.Resolve = func(p string) string { return filepath.Join(dir, p) }
	ev := sinktest.Event("src", "HS-1", 1)

	trusting, err := New(env, Options{URL: srv.URL, Secret: testSecret, Timeout: NewOptions().Timeout, CAFile: "ioc-ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	defer trusting.Close()
	if err := trusting.Deliver(context.Background(), ev); err != nil {
		t.Fatalf("delivery to a receiver signed by ca_file failed: %v", err)
	}

	plain := newSink(t, Options{URL: srv.URL, Secret: testSecret})
	if err := plain.Deliver(context.Background(), ev); classOf(err) != transient || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: %v, want a transient certificate error", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "not-pem.txt"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(env, Options{URL: srv.URL, Timeout: NewOptions().Timeout, CAFile: "not-pem.txt"}); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Fatalf("a ca_file without certificates gave %v", err)
	}
}

// Many deliveries in flight at once reuse their connections afterwards: the idle
// pool holds as many as the dispatcher may have in flight.
func TestConcurrentDeliveriesReuseTheirConnections(t *testing.T) {
	const n = 64
	var opened, arrived atomic.Int32
	gate := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if arrived.Add(1) <= n {
			<-gate // the first round is in flight all at once
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s := newSink(t, Options{URL: srv.URL})
	round := func(version int64, whileInFlight func()) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Deliver(context.Background(), sinktest.Event("src", strconv.Itoa(i), version)); err != nil {
					t.Error(err)
				}
			}()
		}
		whileInFlight()
		wg.Wait()
	}
	round(1, func() {
		for arrived.Load() < n {
			runtime.Gosched()
		}
		close(gate)
	})
	first := opened.Load()
	round(2, func() {})
	if first != n || opened.Load() != first {
		t.Fatalf("connections opened: %d for %d deliveries at once, then %d more for the next %d; want %d and none",
			first, n, opened.Load()-first, n, n)
	}
}
