package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// logSource returns its rows in the order they were added, several of one key
// when so added (a change log, or a query that joins a record's history): its
// cursor is the number of rows read.
type logSource struct {
	mu    sync.Mutex
	rows  []pipeline.Row
	batch int
}

func (s *logSource) add(rows ...pipeline.Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, rows...)
}

func (s *logSource) ReadBatch(_ context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	after := 0
	if pos != nil {
		if err := json.Unmarshal(pos, &after); err != nil {
			return nil, false, err
		}
	}
	end := min(after+s.batch, len(s.rows))
	for _, r := range s.rows[after:end] {
		row := pipeline.Row{}
		for k, v := range r {
			row[k] = v
		}
		if err := out.Emit(row); err != nil {
			return nil, false, err
		}
	}
	next, _ := json.Marshal(end)
	return next, end-after < s.batch, nil
}

func (s *logSource) Close() error { return nil }

// sdRow is record A's row in the sequences below: "x" is the row with its
// soft-delete column set (its status, 7, must not matter), a digit a live row
// of that status.
func sdRow(s string) pipeline.Row {
	if s == "x" {
		return pipeline.Row{"code": "A", "status": "7", "DaXoa": "1"}
	}
	return pipeline.Row{"code": "A", "status": s, "DaXoa": "0"}
}

// A source batch may hold several rows of one record, soft-deleted and live, in
// any order, and so may the batches of a first sync's commit group. Each row is
// compared, in the order read, with the state the row before it left: the
// record's events carry versions one apart, each with the id of its own version
// and content, reach the sink in that order, and the snapshot ends as the last
// row read says. The wants hold every event of A since the source's first row,
// as type@version:status of the content the event's id is made of (a deletion's
// is the record as last known).
func TestSoftDeletedAndLiveRowsOfOneKeyKeepReadOrder(t *testing.T) {
	tests := []struct {
		name   string
		before []string // rows read by an earlier, complete first sync; none: the run is the first sync
		rows   []string // rows read by the run under test
		want   []string
	}{
		{"live then deleted", nil, []string{"2", "x"},
			[]string{"created@1:2", "deleted@2:2"}},
		{"deleted then live, never seen before", nil, []string{"x", "2"},
			[]string{"created@1:2"}},
		{"live, deleted, live again unchanged", nil, []string{"2", "x", "2"},
			[]string{"created@1:2", "deleted@2:2", "created@3:2"}},
		{"live, deleted, live again changed", nil, []string{"2", "x", "3"},
			[]string{"created@1:2", "deleted@2:2", "created@3:3"}},
		{"changed, then deleted twice", nil, []string{"2", "3", "x", "x"},
			[]string{"created@1:2", "updated@2:3", "deleted@3:3"}},
		{"deleted twice, never live", nil, []string{"x", "x"},
			nil},
		{"across commit groups", nil, []string{"2", "x", "2", "3", "x", "x", "4"},
			[]string{"created@1:2", "deleted@2:2", "created@3:2", "updated@4:3", "deleted@5:3", "created@6:4"}},
		{"stored: changed then deleted", []string{"2"}, []string{"3", "x"},
			[]string{"created@1:2", "updated@2:3", "deleted@3:3"}},
		{"stored: unchanged then deleted", []string{"2"}, []string{"2", "x"},
			[]string{"created@1:2", "deleted@2:2"}},
		{"stored: deleted then live unchanged", []string{"2"}, []string{"x", "2"},
			[]string{"created@1:2", "deleted@2:2", "created@3:2"}},
		{"stored: deleted then live changed", []string{"2"}, []string{"x", "3"},
			[]string{"created@1:2", "deleted@2:2", "created@3:3"}},
		{"stored: deleted twice then live", []string{"2"}, []string{"x", "x", "2"},
			[]string{"created@1:2", "deleted@2:2", "created@3:2"}},
		{"stored deleted: live then deleted", []string{"2", "x"}, []string{"2", "x"},
			[]string{"created@1:2", "deleted@2:2", "created@3:2", "deleted@4:2"}},
		{"stored deleted: deleted then live", []string{"2", "x"}, []string{"x", "3"},
			[]string{"created@1:2", "deleted@2:2", "created@3:3"}},
	}
	// A first sync begins fresh (nothing of the source stored: keys never read
	// are not looked up, and the snapshot is bulk-loaded), or resumes over a
	// stored record (every key is looked up).
	kinds := []string{"fresh", "resumed"}
	for _, tc := range tests {
		for _, kind := range kinds {
			if tc.before != nil && kind == "resumed" {
				continue // the run under test is not a first sync
			}
			// 16: one batch; 1: a batch a row (one commit group of a first sync, one
			// commit each after it); 2: a mix of both.
			for _, batch := range []int{16, 1, 2} {
				name := fmt.Sprintf("%s/%s/batch %d", tc.name, kind, batch)
				if tc.before != nil {
					name = fmt.Sprintf("%s/batch %d", tc.name, batch)
				}
				t.Run(name, func(t *testing.T) {
					checkSoftDeleteOrder(t, kind == "resumed", batch, tc.before, tc.rows, tc.want)
				})
			}
		}
	}
}

func checkSoftDeleteOrder(t *testing.T, resumed bool, batch int, before, rows, want []string) {
	ctx := context.Background()
	f := newJobFixture(t, batch)
	f.job.Deletes = DeletesConfig{Column: "DaXoa"}
	src := &logSource{batch: batch}
	f.job.Source = src
	if resumed {
		err := f.store.Commit(ctx, store.Batch{Source: "motcua", At: f.clock.Now(), Snapshot: []store.SnapshotEntry{
			{Entity: "dossier", Key: "Z", Hash: "z", Version: 1, Fields: map[string]any{"code": "Z", "status": int64(1)}},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	runOver := func(seq []string) RunStats {
		for _, s := range seq {
			src.add(sdRow(s))
		}
		st := f.run(t)
		if _, err := f.disp.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if before != nil {
		if st := runOver(before); !st.Snapshot {
			t.Fatalf("the earlier run %+v was not the first sync", st)
		}
	}
	st := runOver(rows)
	if st.Snapshot != (before == nil) {
		t.Fatalf("run %+v: first sync = %v, want %v", st, st.Snapshot, before == nil)
	}

	hash := func(status string) string {
		rec, err := f.job.Map.Apply(sdRow(status), f.job.Agency)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Hash()
	}
	// What the sink got, in order, and what each event's id says it is.
	var got []string
	for i, ev := range f.sink.got {
		if ev.Key != "A" {
			t.Fatalf("event %d is of record %q; only A was read", i, ev.Key)
		}
		fields := ev.After
		if ev.Type == pipeline.EventDeleted {
			fields = ev.Before
		}
		status := fmt.Sprint(fields["status"])
		got = append(got, fmt.Sprintf("%s@%d:%s", ev.Type, ev.Version, status))
		if id := pipeline.EventID("motcua", "dossier", "A", ev.Version, ev.Type, hash(status)); ev.ID != id {
			t.Errorf("event %d (%s@%d): id %s, want %s: the id is not that of its own version and content", i, ev.Type, ev.Version, ev.ID, id)
		}
		if ev.Version != int64(i+1) {
			t.Errorf("event %d (%s) has version %d, want %d: versions must grow by one per change", i, ev.Type, ev.Version, i+1)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the sink got %v, want %v", got, want)
	}

	// The snapshot holds the state of the last row read.
	snap, err := f.store.Snapshot(ctx, "motcua", "dossier", []string{"A"})
	if err != nil {
		t.Fatal(err)
	}
	e, ok := snap["A"]
	if len(want) == 0 {
		if ok {
			t.Fatalf("A stored as %+v; it was never live", e)
		}
		return
	}
	last := rows[len(rows)-1]
	lastEv := want[len(want)-1]
	if !ok || e.Version != int64(len(want)) || e.Deleted != (last == "x") {
		t.Fatalf("A stored as %+v (found %v); want version %d, deleted %v (the last row read was %q)", e, ok, len(want), last == "x", last)
	}
	if content := lastEv[strings.LastIndex(lastEv, ":")+1:]; e.Hash != hash(content) {
		t.Errorf("A stored with hash %s, want that of status %s", e.Hash, content)
	}
}

// A fresh first sync looks up a soft-deleted row's key only when a row of it was
// read in an earlier batch of the run: a record deleted before it was ever read,
// or read live earlier in the same batch, is not in the store, and a look-up
// would end the snapshot's bulk load for nothing.
func TestFreshFirstSyncLooksUpSoftDeletedKeysOnlyWhenReadBefore(t *testing.T) {
	f := newJobFixture(t, 3)
	spy := &spyStore{Store: f.store}
	f.job.Store = spy
	f.job.Deletes = DeletesConfig{Column: "DaXoa"}
	src := &logSource{batch: 3}
	f.job.Source = src
	row := func(key, s string) pipeline.Row {
		r := sdRow(s)
		r["code"] = key
		return r
	}
	src.add(
		row("A", "2"), row("N", "x"), row("A", "x"), // A created and deleted in one batch; N never live
		row("B", "2"), row("A", "x"), row("C", "2"), // A read before: looked up, already deleted
	)
	st := f.run(t)
	if st.Events != 4 || st.Deleted != 1 {
		t.Fatalf("first sync %+v: want 4 events (A created and deleted, B and C created)", st)
	}
	if got, want := strings.Join(spy.calls, " | "), "begin true | end true | look A"; got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
	snap, err := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"A", "B", "C", "N"})
	if err != nil || len(snap) != 3 || !snap["A"].Deleted || snap["A"].Version != 2 || snap["B"].Deleted {
		t.Fatalf("snapshot %+v (%v): want A deleted at version 2, B and C live, N absent", snap, err)
	}
}
