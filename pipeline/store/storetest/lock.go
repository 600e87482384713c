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
	unlock()
	unlock() // a second unlock is harmless
	again, ok, err := s.TryLock(ctx, "source/motcua")
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock = %v, %v; want the lock", ok, err)
	}
	again()
	other()
}
