package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/sinktest"
)

// testNow is the injected clock of every test sink and receiver.
var testNow = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

const testSecret = "a-shared-secret-for-tests-only"

// receiver stands in for a dashboard that follows the package's contract: it
// verifies every request, checks the Idempotency-Key, and keeps the events in
// arrival order (without deduplicating, so the suite sees redeliveries).
type receiver struct {
	secret string
	now    func() time.Time

	mu     sync.Mutex
	events []pipeline.Event
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := Verify(rc.secret, r.Header.Get(SignatureHeader), body, rc.now(), time.Minute); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "Content-Type is "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var ev pipeline.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != ev.ID {
		http.Error(w, fmt.Sprintf("Idempotency-Key %q is not the event id %q", key, ev.ID), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.events = append(rc.events, ev)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) received(*testing.T) []pipeline.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]pipeline.Event(nil), rc.events...)
}

func testEnv() pipeline.Env {
	return pipeline.Env{Name: "ioc", Clock: func() time.Time { return testNow }}
}

// newSink builds a sink for o with the test clock and closes it at the end.
func newSink(t *testing.T, o Options) *Sink {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = NewOptions().Timeout
	}
	s, err := New(testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Harness {
		rc := &receiver{secret: testSecret, now: func() time.Time { return testNow }}
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		s, err := New(testEnv(), Options{URL: srv.URL + "/events", Secret: testSecret, Timeout: NewOptions().Timeout})
		if err != nil {
			t.Fatal(err)
		}
		return sinktest.Harness{Sink: s, Received: rc.received, Dedupes: false}
	})
}
