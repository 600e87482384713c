package storetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func quarantined(t *testing.T, s store.Store, source string, limit int) []store.QuarantineEntry {
	t.Helper()
	q, err := s.Quarantined(t.Context(), source, limit)
	if err != nil {
		t.Fatalf("Quarantined: %v", err)
	}
	return q
}

func testQuarantineDedupe(t *testing.T, s store.Store) {
	const badStatus = "status: 99 is not one of [1 2 3]\nphone: not a Vietnamese number"
	t1 := t0.Add(time.Minute)
	commit(t, s, store.Batch{Source: "src", At: t0, Quarantine: []store.QuarantineEntry{
		{Entity: "dossier", RowKey: "HS1", Reason: badStatus, Raw: map[string]string{"MaHoSo": "HS1", "TrangThai": "99"}},
		{Entity: "dossier", Reason: "code: required", Raw: map[string]string{"ChuHoSo": "Nguyễn Văn Đức"}},
	}})
	commit(t, s, store.Batch{Source: "src", At: t1, Quarantine: []store.QuarantineEntry{
		// same key, same reason: counted, raw refreshed
		{Entity: "dossier", RowKey: "HS1", Reason: badStatus, Raw: map[string]string{"MaHoSo": "HS1", "TrangThai": "98"}},
		// no key: the same raw row twice in one batch, both counted
		{Entity: "dossier", Reason: "code: required", Raw: map[string]string{"ChuHoSo": "Nguyễn Văn Đức"}},
		{Entity: "dossier", Reason: "code: required", Raw: map[string]string{"ChuHoSo": "Nguyễn Văn Đức"}},
		// no key, another raw row: a new entry
		{Entity: "dossier", Reason: "code: required", Raw: map[string]string{"ChuHoSo": "Trần Thị Bình"}},
		// same key, another reason: a new entry
		{Entity: "dossier", RowKey: "HS1", Reason: "due_at: not a time", Raw: map[string]string{"MaHoSo": "HS1"}},
		// same key under another entity: a new entry
		{Entity: "outage", RowKey: "HS1", Reason: badStatus, Raw: map[string]string{}},
	}})

	got := quarantined(t, s, "src", 0)
	find := func(entity, rowKey, reason string, raw map[string]string) *store.QuarantineEntry {
		for i, e := range got {
			if e.Entity == entity && e.RowKey == rowKey && e.Reason == reason && (rowKey != "" || maps.Equal(e.Raw, raw)) {
				return &got[i]
			}
		}
		return nil
	}
	if len(got) != 5 {
		t.Fatalf("Quarantined = %d entries, want 5: %+v", len(got), got)
	}
	checks := []struct {
		entity, rowKey, reason string
		raw                    map[string]string
		count                  int
		first, last            time.Time
	}{
		{"dossier", "HS1", badStatus, map[string]string{"MaHoSo": "HS1", "TrangThai": "98"}, 2, t0, t1},
		{"dossier", "", "code: required", map[string]string{"ChuHoSo": "Nguyễn Văn Đức"}, 3, t0, t1},
		{"dossier", "", "code: required", map[string]string{"ChuHoSo": "Trần Thị Bình"}, 1, t1, t1},
		{"dossier", "HS1", "due_at: not a time", map[string]string{"MaHoSo": "HS1"}, 1, t1, t1},
		{"outage", "HS1", badStatus, map[string]string{}, 1, t1, t1},
	}
	for _, c := range checks {
		e := find(c.entity, c.rowKey, c.reason, c.raw)
		if e == nil {
			t.Errorf("no entry for %s %q %q %v", c.entity, c.rowKey, c.reason, c.raw)
			continue
		}
		if e.Source != "src" || e.Count != c.count || !e.FirstAt.Equal(c.first) || !e.LastAt.Equal(c.last) || !maps.Equal(e.Raw, c.raw) {
			t.Errorf("entry %s %q %q = count %d first %v last %v raw %v; want %d %v %v %v",
				c.entity, c.rowKey, c.reason, e.Count, e.FirstAt, e.LastAt, e.Raw, c.count, c.first, c.last, c.raw)
		}
	}
	if n := stats(t, s).Quarantined["src"]; n != 5 {
		t.Errorf("Stats.Quarantined[src] = %d, want 5", n)
	}

	// A row that is bad through and through (NUL, invalid UTF-8) is still kept.
	commit(t, s, store.Batch{Source: "src", At: t1, Quarantine: []store.QuarantineEntry{
		{Entity: "dossier", RowKey: "K\x00\xff", Reason: "bad\x00", Raw: map[string]string{"c": "\xff\x00"}},
	}})
	if n := len(quarantined(t, s, "src", 0)); n != 6 {
		t.Errorf("row with NUL and invalid UTF-8 not kept: %d entries, want 6", n)
	}
}

func testQuarantineList(t *testing.T, s store.Store) {
	for i, key := range []string{"K1", "K2", "K3"} {
		commit(t, s, store.Batch{Source: "src1", At: t0.Add(time.Duration(i) * time.Minute), Quarantine: []store.QuarantineEntry{
			{Entity: "dossier", RowKey: key, Reason: "r", Raw: map[string]string{"k": key}},
		}})
	}
	commit(t, s, store.Batch{Source: "src2", At: t0, Quarantine: []store.QuarantineEntry{
		{Entity: "dossier", RowKey: "K1", Reason: "r", Raw: map[string]string{"k": "K1"}},
	}})
	keys := func(q []store.QuarantineEntry) []string {
		var out []string
		for _, e := range q {
			out = append(out, e.Source+"/"+e.RowKey)
		}
		return out
	}
	if got := keys(quarantined(t, s, "src1", 0)); !slices.Equal(got, []string{"src1/K1", "src1/K2", "src1/K3"}) {
		t.Errorf("Quarantined(src1) = %v", got)
	}
	if got := keys(quarantined(t, s, "src1", 2)); !slices.Equal(got, []string{"src1/K2", "src1/K3"}) {
		t.Errorf("Quarantined(src1, 2) = %v, want the newest two, oldest first", got)
	}
	if got := quarantined(t, s, "", 0); len(got) != 4 {
		t.Errorf("Quarantined(all) = %v, want 4 entries", keys(got))
	}
}

// testQuarantineResolvedInCommit: rows that now map cleanly clear their bad rows
// (not failed notices) in the same commit, and entries removed by id make room for
// the current entry of the same row.
func testQuarantineResolvedInCommit(t *testing.T, s store.Store) {
	ev := event("src", "dossier", "HS1", 2, map[string]any{"status": 9})
	commit(t, s, store.Batch{Source: "src", At: t0, Quarantine: []store.QuarantineEntry{
		{Entity: "dossier", RowKey: "HS1", Reason: "status: 99 is not allowed", Raw: map[string]string{"MaHoSo": "HS1"}, Snapshot: true},
		{Entity: "dossier", RowKey: "HS2", Reason: "status: 98 is not allowed", Raw: map[string]string{"MaHoSo": "HS2"}},
		{Entity: "dossier", RowKey: "HS1", Reason: "rule r: template failed", Raw: map[string]string{}, Rule: "r", Event: ev},
	}})
	q := quarantined(t, s, "src", 0)
	if len(q) != 3 || !q[0].Snapshot || q[1].Snapshot || q[2].Rule != "r" || q[2].Event == nil || q[2].Event.ID != ev.ID {
		t.Fatalf("quarantine = %+v; want the snapshot mark and the failed notice kept", q)
	}
	commit(t, s, store.Batch{Source: "src", At: t0, Resolved: []string{"HS1"}})
	q = quarantined(t, s, "src", 0)
	if len(q) != 2 || q[0].RowKey != "HS2" || q[1].Rule != "r" {
		t.Fatalf("after HS1 mapped cleanly: %+v; want HS2's row and HS1's failed notice", q)
	}
	// Reprocessing HS2 with the same reason: the old entry goes, the current one stays.
	commit(t, s, store.Batch{Source: "src", At: t0.Add(time.Minute), ResolvedIDs: []int64{q[0].ID}, Quarantine: []store.QuarantineEntry{
		{Entity: "dossier", RowKey: "HS2", Reason: "status: 98 is not allowed", Raw: map[string]string{"MaHoSo": "HS2", "new": "1"}},
	}})
	q = quarantined(t, s, "src", 0)
	if len(q) != 2 || q[1].RowKey != "HS2" || q[1].Raw["new"] != "1" {
		t.Fatalf("after reprocessing HS2: %+v; want its current entry", q)
	}
	if has, err := s.HasQuarantine(t.Context(), "src"); err != nil || !has {
		t.Fatalf("HasQuarantine = %v, %v", has, err)
	}
	if has, err := s.HasQuarantine(t.Context(), "other"); err != nil || has {
		t.Fatalf("HasQuarantine(other) = %v, %v", has, err)
	}
}
