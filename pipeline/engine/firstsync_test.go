package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// spyStore records the keys the job looks up and can hold the first commit until
// released, to catch a group while it is in flight.
type spyStore struct {
	store.Store
	mu      sync.Mutex
	looked  []string
	commits int
	hold    chan struct{} // when set, the first Commit waits for it
	onLook  func(keys []string)
	// calls lists the bulk load's steps and the look-ups, in order.
	calls []string
}

func (s *spyStore) note(call string) {
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
}

func (s *spyStore) BeginBulkLoad(ctx context.Context, source string) (bool, error) {
	began, err := s.Store.BeginBulkLoad(ctx, source)
	s.note(fmt.Sprintf("begin %v", began))
	return began, err
}

func (s *spyStore) EndBulkLoad(ctx context.Context) (bool, error) {
	built, err := s.Store.EndBulkLoad(ctx)
	s.note(fmt.Sprintf("end %v", built))
	return built, err
}

func (s *spyStore) Snapshot(ctx context.Context, source, entity string, keys []string) (map[string]store.SnapshotEntry, error) {
	s.mu.Lock()
	s.looked = append(s.looked, keys...)
	s.calls = append(s.calls, "look "+strings.Join(keys, ","))
	onLook := s.onLook
	s.mu.Unlock()
	snap, err := s.Store.Snapshot(ctx, source, entity, keys)
	if onLook != nil {
		onLook(keys)
	}
	return snap, err
}

func (s *spyStore) Commit(ctx context.Context, b store.Batch) error {
	s.mu.Lock()
	s.commits++
	first := s.commits == 1
	s.mu.Unlock()
	if first && s.hold != nil {
		select {
		case <-s.hold:
		case <-time.After(10 * time.Second):
			return errors.New("the first group's commit was held 10 s: nothing was read while it was in flight")
		}
	}
	return s.Store.Commit(ctx, b)
}

func (s *spyStore) lookedUp() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.looked)
}

// firstSyncFixture has n records K00, K01, … read one per batch; before read
// number touchAt, K00 is written again (status 9), so it is read once more last.
func firstSyncFixture(t *testing.T, n, touchAt int) (*jobFixture, *spyStore) {
	t.Helper()
	return firstSyncFixtureOn(t, newJobFixture(t, 1), n, touchAt)
}

// firstSyncFixtureOn is firstSyncFixture on f's store.
func firstSyncFixtureOn(t *testing.T, f *jobFixture, n, touchAt int) (*jobFixture, *spyStore) {
	t.Helper()
	spy := &spyStore{Store: f.store}
	f.job.Store = spy
	for i := range n {
		f.src.put(fmt.Sprintf("K%02d", i), pipeline.Row{"status": "2"})
	}
	f.job.Source = &touchingSource{memSource: f.src, at: touchAt, touch: func() {
		f.src.put("K00", pipeline.Row{"status": "9"})
	}}
	return f, spy
}

// checkReadTwice asserts the first sync left K00 created, then updated.
func checkReadTwice(t *testing.T, f *jobFixture, st RunStats, n int) {
	t.Helper()
	if st.Events != n+1 {
		t.Errorf("first sync %+v: want %d events (%d created, K00 updated)", st, n+1, n)
	}
	snap, err := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"K00", "K01"})
	if err != nil {
		t.Fatal(err)
	}
	if snap["K00"].Version != 2 || snap["K01"].Version != 1 {
		t.Fatalf("versions K00 %d K01 %d, want 2 1: K00 read again was not compared with its first read", snap["K00"].Version, snap["K01"].Version)
	}
	f.rounds(t, 3, time.Second)
	got := strings.Join(f.sink.keys(), " ")
	if strings.Count(got, "K00@") != 2 || strings.Index(got, "K00@1") > strings.Index(got, "K00@2") || strings.Index(got, "K00@1") < 0 {
		t.Fatalf("delivered %q: want K00@1 before K00@2", got)
	}
}

// A record read again while the group that first held it is still being
// committed is compared with that group's entry, not with the store, which does
// not hold it yet.
func TestFirstSyncComparesWithTheGroupInFlight(t *testing.T) {
	const n = firstSyncBatches + 2
	f, spy := firstSyncFixture(t, n, firstSyncBatches+1) // K00 again after the first group
	spy.hold = make(chan struct{})
	var once sync.Once
	spy.onLook = func(keys []string) {
		if slices.Contains(keys, "K00") {
			once.Do(func() { close(spy.hold) }) // K00 read again and looked up: let the first group land
		}
	}
	checkReadTwice(t, f, f.run(t), n)
}

// A fresh first sync looks up only the keys it has read before in the run; one
// read again after its first group was committed is found in the store.
func TestFreshFirstSyncLooksUpOnlyKeysReadBefore(t *testing.T) {
	const n = 2*firstSyncBatches + 5
	f, spy := firstSyncFixture(t, n, 2*firstSyncBatches+1) // K00 again after two groups
	checkReadTwice(t, f, f.run(t), n)
	if got := spy.lookedUp(); !slices.Equal(got, []string{"K00"}) {
		t.Errorf("looked up %v, want only K00 (read twice)", got)
	}
}

// A first sync that resumes over snapshot records already stored looks every
// key up: a stored record read again is updated, not created twice.
func TestResumedFirstSyncLooksUpEveryKey(t *testing.T) {
	const n = 3
	f, spy := firstSyncFixture(t, n, 0)
	err := f.store.Commit(context.Background(), store.Batch{Source: "motcua", At: f.clock.Now(), Snapshot: []store.SnapshotEntry{
		{Entity: "dossier", Key: "K00", Hash: "old", Version: 1, Fields: map[string]any{"code": "K00", "status": int64(1)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t)
	if got := spy.lookedUp(); len(got) != n {
		t.Errorf("looked up %v, want all %d keys", got, n)
	}
	snap, err := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"K00"})
	if err != nil {
		t.Fatal(err)
	}
	if snap["K00"].Version != 2 {
		t.Fatalf("K00 version %d, want 2: the stored record was not compared", snap["K00"].Version)
	}
}

// A fresh first sync bulk-loads the snapshot, on either store: it ends the
// load, so the store builds its indexes, before it looks up a key read twice,
// or, with no key read twice, when the sync ends; the records come out as from
// any first sync.
func TestFreshFirstSyncBulkLoadsUntilItNeedsALookUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		touchAt int // 0: no key is read twice
		want    string
	}{
		{"a key read twice", 2*firstSyncBatches + 1, "begin true | end true | look K00"},
		{"no key read twice", 0, "begin true | end true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeBackends(t, func(t *testing.T, st store.Store) {
				const n = 2*firstSyncBatches + 5
				f, spy := firstSyncFixtureOn(t, newJobFixtureOn(t, 1, st), n, tc.touchAt)
				stats := f.run(t)
				if got := strings.Join(spy.calls, " | "); got != tc.want {
					t.Errorf("calls %q, want %q", got, tc.want)
				}
				if tc.touchAt > 0 {
					checkReadTwice(t, f, stats, n)
					return
				}
				snap, err := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"K00", "K14"})
				if err != nil || len(snap) != 2 || stats.Events != n {
					t.Fatalf("after the sync: %d events, snapshot %v, %v; want %d events and K00, K14 stored", stats.Events, snap, err, n)
				}
			})
		})
	}
}

// scriptedSource is a memSource that runs touches[n] before its read number n.
type scriptedSource struct {
	*memSource
	reads   int
	touches map[int]func()
}

func (s *scriptedSource) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	s.reads++
	if touch := s.touches[s.reads]; touch != nil {
		touch()
	}
	return s.memSource.ReadBatch(ctx, pos, out)
}

// A record whose created event was committed in a first sync's first group,
// and not yet delivered, is read deleted (soft-delete column) and then live
// again within the second group: one commit holds its deletion and its new
// creation. The sink gets its first creation, whole, then the deletion, then the
// new creation: each once, in order.
func TestFirstSyncRecordDeletedAndCreatedAgainInOneGroup(t *testing.T) {
	f := newJobFixture(t, 1)
	f.job.Deletes = DeletesConfig{Column: "DaXoa"}
	for i := range firstSyncBatches + 2 {
		f.src.put(fmt.Sprintf("K%02d", i), pipeline.Row{"status": "2", "DaXoa": "0"})
	}
	// Reads 1-5 are the first group (K00-K04); K00 is read deleted by read 8
	// and live again by read 9, both in the second group.
	f.job.Source = &scriptedSource{memSource: f.src, touches: map[int]func(){
		firstSyncBatches + 1: func() { f.src.put("K00", pipeline.Row{"status": "2", "DaXoa": "1"}) },
		firstSyncBatches + 4: func() { f.src.put("K00", pipeline.Row{"status": "5", "DaXoa": "0"}) },
	}}
	st := f.run(t)
	if want := firstSyncBatches + 2 + 2; st.Events != want || st.Deleted != 1 {
		t.Fatalf("first sync %+v: want %d events (one deletion, one creation again)", st, want)
	}
	snap, err := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"K00"})
	if err != nil || snap["K00"].Version != 3 || snap["K00"].Deleted {
		t.Fatalf("K00 in the snapshot = %+v, %v; want live at version 3", snap["K00"], err)
	}
	f.rounds(t, 5, time.Second)
	var k00 []string
	for _, k := range f.sink.keys() {
		if strings.HasPrefix(k, "K00@") {
			k00 = append(k00, k)
		}
	}
	if !slices.Equal(k00, []string{"K00@1", "K00@2", "K00@3"}) {
		t.Fatalf("K00's events delivered: %v, want K00@1 K00@2 K00@3 (all: %v)", k00, f.sink.keys())
	}
	if n := len(f.sink.keys()); n != st.Events {
		t.Errorf("the sink got %d events, want the %d the sync detected", n, st.Events)
	}
}
