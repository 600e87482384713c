package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func testLocks(t *testing.T, s store.Store) {
	ctx := t.Context()
	unlock, ok, err := s.TryLock(ctx, "source/motcua")
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v; want the lock", ok, err)
	}
	if _, ok, err := s.TryLock(ctx, "source/motcua"); err != nil || ok {
		t.Fatalf("second TryLock = %v, %v; want it refused while held", ok, err)
	}
	other, ok, err := s.TryLock(ctx, "dispatch/zalo")
	if err != nil || !ok {
		t.Fatalf("another name = %v, %v; want it free", ok, err)
	}
	if !unlock.Held(ctx) {
		t.Fatal("a lock just taken is not held")
	}
	unlock.Unlock()
	if unlock.Held(ctx) {
		t.Fatal("an unlocked lock still reports held")
	}
	again, ok, err := s.TryLock(ctx, "source/motcua")
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock = %v, %v; want the lock", ok, err)
	}
	unlock.Unlock() // a stale unlock must not release the new holder's lock
	if _, ok, _ := s.TryLock(ctx, "source/motcua"); ok {
		t.Fatal("a stale Unlock released a later acquisition")
	}
	if !again.Held(ctx) {
		t.Fatal("the later acquisition lost its lock to a stale Unlock")
	}
	again.Unlock()
	other.Unlock()
}

// testFence: a commit fenced with an acquisition that has since been superseded (the
// holder lost its lock and another took it) writes nothing.
func testFence(t *testing.T, s store.Store) {
	ctx := t.Context()
	first, ok, err := s.TryLock(ctx, "source/motcua")
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	stale := first.Fence()
	if stale.Name != "source/motcua" || stale.Generation < 1 {
		t.Fatalf("fence = %+v; want the lock's name and a generation", stale)
	}
	first.Unlock() // lost, as far as the store is concerned
	second, ok, err := s.TryLock(ctx, "source/motcua")
	if err != nil || !ok {
		t.Fatalf("TryLock again = %v, %v", ok, err)
	}
	defer second.Unlock()
	current := second.Fence()
	if current.Generation <= stale.Generation {
		t.Fatalf("generation %d after %d; want it to grow", current.Generation, stale.Generation)
	}
	b := store.Batch{Source: "motcua", Position: pipeline.Position(`{"n":1}`), At: t0,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: "A1", Hash: "h1", Version: 1, Fields: map[string]any{"status": 1}}}}
	b.Fence = &stale
	if err := s.Commit(ctx, b); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("commit with a superseded fence = %v; want ErrFenced", err)
	}
	if cur, _ := s.Cursor(ctx, "motcua"); cur.Position != nil {
		t.Fatalf("a fenced-off commit moved the cursor to %s", cur.Position)
	}
	b.Fence = &current
	if err := s.Commit(ctx, b); err != nil {
		t.Fatalf("commit with the current fence: %v", err)
	}
}

// testEpoch: a store knows when it was created, and keeps it.
func testEpoch(t *testing.T, s store.Store) {
	e := s.Epoch()
	if e < time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() || e > time.Now().Add(time.Hour).UnixMicro() {
		t.Fatalf("epoch %d is not the store's creation time in microseconds", e)
	}
}

// testSourceError: a run's error is kept with the source until a run succeeds.
func testSourceError(t *testing.T, s store.Store) {
	ctx := t.Context()
	at := time.Date(2026, 11, 28, 1, 2, 3, 0, time.UTC)
	if err := s.SetSourceError(ctx, "motcua", "column \"dien_thoai_x\" missing", at); err != nil {
		t.Fatal(err)
	}
	cur, err := s.Cursor(ctx, "motcua")
	if err != nil || cur.LastError != "column \"dien_thoai_x\" missing" || !cur.ErrorAt.Equal(at) || cur.Position != nil {
		t.Fatalf("cursor = %+v, %v; want the error kept and no position", cur, err)
	}
	commit(t, s, store.Batch{Source: "motcua", Position: pipeline.Position(`{"n":1}`), At: t0})
	if err := s.SetSourceError(ctx, "motcua", "", at); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.Cursor(ctx, "motcua"); cur.LastError != "" || cur.Position == nil {
		t.Fatalf("cursor = %+v; want the error cleared and the position kept", cur)
	}
}

// testFencedSettle: a dispatcher that lost its sink's lock records no outcome once
// another holder has taken it; the new holder's outcomes are recorded.
func testFencedSettle(t *testing.T, s store.Store) {
	ctx := t.Context()
	commit(t, s, store.Batch{Source: "src", At: t0, Events: []store.OutboxEvent{
		{Event: event("src", "d", "A", 1, map[string]any{"n": 1}), Sinks: []string{"a"}},
	}})
	p := pending(t, s, "a", t0)
	first, ok, err := s.TryLock(ctx, "dispatch/a")
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	stale := first.Fence()
	first.Unlock()
	second, ok, err := s.TryLock(ctx, "dispatch/a")
	if err != nil || !ok {
		t.Fatalf("TryLock again = %v, %v", ok, err)
	}
	defer second.Unlock()
	delivered := []store.Outcome{{Seq: p[0].Seq, Kind: store.OutcomeDelivered, Attempts: 1, At: t0}}
	if _, err := s.Settle(ctx, "a", &stale, delivered); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("Settle with a superseded fence = %v; want ErrFenced", err)
	}
	if st := stats(t, s); st.Outbox["a"] != 1 || st.Deliveries != 0 {
		t.Fatalf("a fenced-off settle recorded something: outbox %d, deliveries %d", st.Outbox["a"], st.Deliveries)
	}
	current := second.Fence()
	if res, err := s.Settle(ctx, "a", &current, delivered); err != nil || res.Errs[0] != nil {
		t.Fatalf("Settle with the current fence = %+v, %v", res, err)
	}
	if st := stats(t, s); st.Outbox["a"] != 0 || st.Deliveries != 1 {
		t.Fatalf("after the holder's settle: outbox %d, deliveries %d", st.Outbox["a"], st.Deliveries)
	}
}
