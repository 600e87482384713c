package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func testEventsList(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(key, agency string, v int64) *pipeline.Event {
		e := event("src", "dossier", key, v, map[string]any{"status": v})
		e.Agency = agency
		return e
	}
	// seq 1..3 at t0 (a snapshot: the created events are stored lazily), 4..5 an hour later.
	commit(t, s, store.Batch{Source: "src", At: t0, InitialDone: true,
		Snapshot: []store.SnapshotEntry{
			{Entity: "dossier", Key: "a", Hash: "a1", Version: 1, Fields: map[string]any{"status": 1}},
			{Entity: "dossier", Key: "b", Hash: "b1", Version: 1, Fields: map[string]any{"status": 1}},
			{Entity: "dossier", Key: "c", Hash: "c1", Version: 1, Fields: map[string]any{"status": 1}},
		},
		Events: []store.OutboxEvent{
			{Event: snapshotEvent(mk("a", "UBND-A", 1))}, {Event: snapshotEvent(mk("b", "UBND-B", 1))}, {Event: snapshotEvent(mk("c", "UBND-A", 1))},
		}})
	rule := mk("a", "UBND-A", 2)
	rule.Type, rule.Rule, rule.ID = "rule", "dossier.result_ready", "rule-a-2"
	commit(t, s, store.Batch{Source: "src", At: t0.Add(time.Hour),
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: "a", Hash: "a2", Version: 2, Fields: map[string]any{"status": 2}}},
		Events:   []store.OutboxEvent{{Event: mk("a", "UBND-A", 2)}, {Event: rule}}})

	keys := func(q store.EventQuery) []string {
		t.Helper()
		evs, err := s.Events(ctx, q)
		if err != nil {
			t.Fatalf("Events(%+v): %v", q, err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.Event.Key+e.Event.Type)
			if e.Event.After == nil {
				t.Errorf("event seq %d (%s) came back without its fields", e.Seq, e.Event.Key)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    store.EventQuery
		want []string
	}{
		{"newest first", store.EventQuery{}, []string{"arule", "aupdated", "ccreated", "bcreated", "acreated"}},
		{"oldest first after a seq", store.EventQuery{AfterSeq: 2, Ascending: true}, []string{"ccreated", "aupdated", "arule"}},
		{"a page before a seq", store.EventQuery{BeforeSeq: 4, Limit: 2}, []string{"ccreated", "bcreated"}},
		{"by agency", store.EventQuery{Agencies: []string{"UBND-B"}}, []string{"bcreated"}},
		{"an empty scope sees nothing", store.EventQuery{Agencies: []string{}}, nil},
		{"by type or rule name", store.EventQuery{Types: []string{"dossier.result_ready", "created"}, Agencies: []string{"UBND-A"}}, []string{"arule", "ccreated", "acreated"}},
		{"by time", store.EventQuery{Since: t0.Add(time.Minute)}, []string{"arule", "aupdated"}},
		{"until excludes", store.EventQuery{Until: t0.Add(time.Hour)}, []string{"ccreated", "bcreated", "acreated"}},
		{"by entity", store.EventQuery{Entity: "outage"}, nil},
	} {
		if got := keys(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func snapshotEvent(e *pipeline.Event) *pipeline.Event {
	e.Snapshot = true
	return e
}
