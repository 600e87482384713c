package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// receiver is a local webhook endpoint: it answers 200 to every request, a share
// of them only after a delay, like a dashboard under load. It counts distinct
// events (Idempotency-Key) and remembers when the first request arrived, which is
// when the daemon finished syncing and began to deliver.
type receiver struct {
	srv   *http.Server
	url   string
	slow  float64
	delay time.Duration

	mu       sync.Mutex
	rng      *rand.Rand
	first    time.Time
	requests int
	slowed   int
	seen     map[string]struct{}
}

func startReceiver(slow float64, delay time.Duration) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	r := &receiver{slow: slow, delay: delay, seen: map[string]struct{}{}, rng: rand.New(rand.NewPCG(7, 11))}
	r.url = "http://" + ln.Addr().String() + "/events"
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "bench: webhook receiver stopped:", err)
		}
	}()
	return r, nil
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	r.mu.Lock()
	if r.first.IsZero() {
		r.first = time.Now()
	}
	r.requests++
	r.seen[req.Header.Get("Idempotency-Key")] = struct{}{}
	slow := r.slow > 0 && r.rng.Float64() < r.slow
	if slow {
		r.slowed++
	}
	r.mu.Unlock()
	if slow {
		// The receiver under test is slow on purpose: this is its answer time.
		select {
		case <-time.After(r.delay):
		case <-req.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// firstAt is when the first request arrived (zero before).
func (r *receiver) firstAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// stats returns distinct events, requests and slow answers so far.
func (r *receiver) stats() (events, requests, slowed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen), r.requests, r.slowed
}

// reset forgets everything, for the next phase.
func (r *receiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.first, r.requests, r.slowed = time.Time{}, 0, 0
	r.seen = map[string]struct{}{}
}

func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
}
