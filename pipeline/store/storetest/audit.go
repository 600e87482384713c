package storetest

import (
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func testAuditLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, action := range []string{"reset-cursor", "replay", "quarantine reprocess"} {
		if err := s.Audit(ctx, store.AuditEntry{At: t0.Add(time.Duration(i) * time.Minute), Actor: "ops", Action: action, Detail: "nguồn motcua"}); err != nil {
			t.Fatal(err)
		}
	}
	log, err := s.AuditLog(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Action != "replay" || log[1].Action != "quarantine reprocess" || log[1].Detail != "nguồn motcua" ||
		!log[1].At.Equal(t0.Add(2*time.Minute)) || log[0].Actor != "ops" {
		t.Fatalf("AuditLog(2) = %+v", log)
	}
}

func testResolveQuarantine(t *testing.T, s store.Store) {
	ctx := t.Context()
	commit(t, s, store.Batch{Source: "src", At: t0, Quarantine: []store.QuarantineEntry{
		{Source: "src", Entity: "d", RowKey: "1", Reason: "bad", Raw: map[string]string{"a": "1"}, FirstAt: t0, LastAt: t0},
		{Source: "src", Entity: "d", RowKey: "2", Reason: "bad", Raw: map[string]string{"a": "2"}, FirstAt: t0, LastAt: t0},
	}})
	q, err := s.Quarantined(ctx, "src", 0)
	if err != nil || len(q) != 2 {
		t.Fatalf("Quarantined = %v, %v", q, err)
	}
	n, err := s.ResolveQuarantine(ctx, []int64{q[0].ID, q[0].ID + 1000})
	if err != nil || n != 1 {
		t.Fatalf("ResolveQuarantine = %d, %v; want 1", n, err)
	}
	q, _ = s.Quarantined(ctx, "src", 0)
	if len(q) != 1 || q[0].RowKey != "2" {
		t.Fatalf("left after resolve: %+v", q)
	}
}
