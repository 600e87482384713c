package demo

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPrepareSeedsOnceAndStepAdvancesStatuses(t *testing.T) {
	ctx := context.Background()
	seed, err := os.ReadFile("../../testdata/demo/seed.sql")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agency.db")
	created, err := Prepare(ctx, path, seed)
	if err != nil || !created {
		t.Fatalf("first Prepare: created=%v err=%v", created, err)
	}
	created, err = Prepare(ctx, path, seed)
	if err != nil || created {
		t.Fatalf("second Prepare must keep the data: created=%v err=%v", created, err)
	}
	db, err := open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 27, 9, 30, 0, 0, time.FixedZone("ICT", 7*3600))
	n, err := Step(ctx, db, 5, now)
	if err != nil || n != 5 {
		t.Fatalf("Step = %d, %v; want 5 dossiers advanced", n, err)
	}
	var stamped int
	if err := db.QueryRow(`SELECT count(*) FROM HoSo WHERE NgayCapNhat = '2026-11-27 09:30:00'`).Scan(&stamped); err != nil {
		t.Fatal(err)
	}
	if stamped != 5 {
		t.Fatalf("%d dossiers carry the new NgayCapNhat, want 5", stamped)
	}
}
