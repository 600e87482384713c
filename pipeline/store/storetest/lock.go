package storetest

import (
	"testing"

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
