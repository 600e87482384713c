package main

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/connectors/webhook"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// receiver is a dashboard endpoint that behaves as the webhook contract asks:
// it verifies the signature and deduplicates on Idempotency-Key.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	failRate float64               // share of requests answered 503
	reject   map[string]bool       // keys answered 422 (a permanent rejection)
	rejectIf func(key string) bool // more keys answered 422, when set
	down     bool                  // every request answered 503
	requests int
	seen     map[string]bool             // accepted ids
	byKey    map[string][]pipeline.Event // accepted events per key, first acceptance order
	unsigned int
	now      func() time.Time // the receiver's clock, for the signature's age; time.Now unless a test injects the daemon's
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, secret: "whsec-test", reject: map[string]bool{}, seen: map[string]bool{}, byKey: map[string][]pipeline.Event{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	if err := webhook.Verify(r.secret, req.Header.Get("X-Egov-Signature"), body, now(), 5*time.Minute); err != nil {
		r.unsigned++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.down || (r.failRate > 0 && rand.Float64() < r.failRate) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var ev pipeline.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "not an event", http.StatusBadRequest)
		return
	}
	if r.reject[ev.Key] || (r.rejectIf != nil && r.rejectIf(ev.Key)) {
		http.Error(w, `{"error":"unknown agency code"}`, http.StatusUnprocessableEntity)
		return
	}
	id := req.Header.Get("Idempotency-Key")
	if id != ev.ID {
		http.Error(w, "Idempotency-Key differs from the event id", http.StatusBadRequest)
		return
	}
	if !r.seen[id] {
		r.seen[id] = true
		r.byKey[ev.Key] = append(r.byKey[ev.Key], ev)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) set(f func(r *receiver)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// accepted returns a copy of the events accepted per key.
func (r *receiver) accepted() map[string][]pipeline.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]pipeline.Event, len(r.byKey))
	for k, v := range r.byKey {
		out[k] = append([]pipeline.Event(nil), v...)
	}
	return out
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}
