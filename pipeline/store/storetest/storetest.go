// Package storetest is the conformance suite every state store backend runs: it
// states, as tests, what the rest of the daemon relies on the store for.
package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Run runs the suite. open must return a fresh, empty store for each call; the suite
// closes it when the subtest ends. Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"cursor of a source that never committed has no position", testCursorUnknown},
		{"cursor round trip", testCursorRoundTrip},
		{"reset cursor forgets position but keeps initial done and snapshot", testResetCursor},
		{"reset cursor of unknown source is not found", testResetUnknown},

		{"snapshot round trip keeps fields exactly", testSnapshotRoundTrip},
		{"snapshot upsert replaces and last duplicate wins", testSnapshotUpsert},
		{"snapshot look-up of many keys", testSnapshotManyKeys},
		{"HasSnapshot says whether a source has snapshot records", testHasSnapshot},
		{"a commit of many events queues every one", testCommitManyEvents},
		{"snapshot stores text with NUL", testSnapshotNul},

		{"failed commit changes nothing", testCommitAtomicPayload},
		{"commit cancelled part-way changes nothing", testCommitAtomicCancel},
		{"commit with cancelled context fails", testCommitCancelledBefore},
		{"replayed batch creates no second event or outbox row", testCommitReplay},
		{"snapshot events come out whole before and after their record changes", testSnapshotEventsKeepTheirFields},
		{"a first sync's events are fed to sinks from the snapshot", testSnapshotFeed},
		{"a record's later events wait for its snapshot feed event", testSnapshotFeedRecordOrder},
		{"consecutive snapshot feed blocks are read as one", testSnapshotFeedAcrossBlocks},
		{"a sink behind by more blocks than one read gets the later ones", testSnapshotFeedBeyondOnePageOfBlocks},
		{"snapshot feeds every sink has are purged with the events", testSnapshotFeedPurge},
		{"a feed block whose last waiting record moved on completes", testSnapshotFeedMovedTailCompletes},
		{"blocks whose last waiting records moved on do not hide later feeds", testSnapshotFeedManyMovedTails},
		{"a feed event whose record moves on while in flight is settled once", testSnapshotFeedMovedInFlight},
		{"a record deleted and created again in one commit keeps its waiting feed event", testSnapshotFeedDeletedAndCreatedAgain},
		{"a record marked new that the store holds fails a mixed batch", testNewBrokenInMixedBatch},
		{"records marked new are stored, fed and then changed like any", testNewRecordsThenChange},
		{"outcomes are found in the feed and the outbox whatever their Feed says", testSettleFeedHint},
		{"a bulk load stores, feeds and changes records as any commit does", testBulkLoad},
		{"records bulk-loaded are found by key once the load ends", testBulkLoadEnded},

		{"pending follows seq across commits and sinks", testPendingOrder},
		{"pending returns only rows due now", testPendingDue},
		{"delivered removes the row and records the delivery", testDelivered},
		{"retry records attempt, error and next time", testRetry},
		{"dead letters and replay", testDeadAndReplay},
		{"dead letters list newest last by sink", testDeadLettersList},
		{"a holding dead letter holds its record until replayed", testDeadHoldsRecordUntilReplay},
		{"a dead letter under skip is superseded and not replayed", testDeadSkipIsSuperseded},
		{"delivery supersedes an older event replayed meanwhile", testDeliveredSupersedesReplayedOlderEvent},
		{"dismissing a dead letter releases its record", testDismissReleasesRecord},
		{"a commit makes only a record's first waiting row its head", testCommitMarksHeads},
		{"settle records delivered, retry and dead outcomes at once", testSettleBatch},
		{"a replayed event takes its record's head", testReplayTakesTheHead},
		{"a down sink's backlog is not due behind its heads", testDownSinkBacklog},

		{"quarantine counts the same bad row once", testQuarantineDedupe},
		{"quarantine lists newest last by source", testQuarantineList},
		{"resolved quarantine entries are removed", testResolveQuarantine},
		{"audit log keeps operator actions", testAuditLog},
		{"events are listed by seq, filtered by agency, type, entity and time", testEventsList},
		{"named locks are exclusive until unlocked", testLocks},
		{"a commit fenced by a superseded lock writes nothing", testFence},
		{"outcomes fenced by a superseded lock record nothing", testFencedSettle},
		{"the store keeps its creation epoch", testEpoch},
		{"a source's last error is kept until cleared", testSourceError},
		{"quarantine is resolved inside the commit", testQuarantineResolvedInCommit},

		{"stats fills every field", testStats},
		{"purge keeps what still waits and removes what served", testPurge},
		{"concurrent commits and deliveries lose nothing", testConcurrent},
	}
	tests = append(tests, zaloTests...)
	tests = append(tests, disappearTests...)
	tests = append(tests, citizenTests...)
	tests = append(tests, announceTests...)
	tests = append(tests, struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{"feedback and ratings are counted per agency and period for the steering figures", testCitizenCounts})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close store: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// t0 has microsecond precision, what PostgreSQL keeps.
var t0 = time.Date(2025, 3, 1, 0, 30, 0, 123456000, time.UTC)

// event builds an event the way change detection does, with a deterministic id.
func event(source, entity, key string, version int64, after map[string]any) *pipeline.Event {
	typ := pipeline.EventUpdated
	if version == 1 {
		typ = pipeline.EventCreated
	}
	return &pipeline.Event{
		ID: pipeline.EventID(source, entity, key, version, typ, ""), Type: typ,
		Source: source, Entity: entity, Key: key, Version: version,
		After: after, DetectedAt: t0,
	}
}

func commit(t *testing.T, s store.Store, b store.Batch) {
	t.Helper()
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func pending(t *testing.T, s store.Store, sink string, now time.Time) []store.Pending {
	t.Helper()
	p, err := s.Pending(t.Context(), sink, now, 0)
	if err != nil {
		t.Fatalf("Pending(%s): %v", sink, err)
	}
	return p
}

func stats(t *testing.T, s store.Store) store.Stats {
	t.Helper()
	st, err := s.Stats(t.Context())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

func cursor(t *testing.T, s store.Store, source string) store.CursorState {
	t.Helper()
	c, err := s.Cursor(t.Context(), source)
	if err != nil {
		t.Fatalf("Cursor(%s): %v", source, err)
	}
	return c
}

// sameEvent compares events by their JSON: what the store returns is decoded with
// numbers as json.Number, which encode exactly like the ints they were.
func sameEvent(t *testing.T, got pipeline.Event, want *pipeline.Event) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("event differs:\n got  %s\n want %s", g, w)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: got error %v, want ErrNotFound", what, err)
	}
}

func seqs(ps []store.Pending) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.Seq
	}
	return out
}
