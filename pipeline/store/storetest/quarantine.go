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
