package engine

import (
	"context"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// The engine's parts each need a few roles of the state store, not all of it;
// they are declared here, where they are used, so a part's dependencies are read
// off its field type and a test fake implements only what the part calls.

// cursors is where a source's position and its last failure are kept.
type cursors interface {
	Cursor(ctx context.Context, source string) (store.CursorState, error)
	SetSourceError(ctx context.Context, source, msg string, at time.Time) error
}

// snapshots answers what was last stored of records, and commits what a batch
// changed, with its events, quarantine entries and cursor, in one transaction.
type snapshots interface {
	Snapshot(ctx context.Context, source, entity string, keys []string) (map[string]store.SnapshotEntry, error)
	HasSnapshot(ctx context.Context, source string) (bool, error)
	Commit(ctx context.Context, b store.Batch) error
	Epoch() int64
}

// bulkLoader is a store that can take a fresh first sync without keeping up,
// commit by commit, the snapshot indexes its keys reach in random order, and
// build them once when the sync ends (see store's BeginBulkLoad).
type bulkLoader interface {
	BeginBulkLoad(ctx context.Context, source string) (bool, error)
	EndBulkLoad(ctx context.Context) (bool, error)
}

// quarantine holds rows the mapping refused until they are reprocessed.
type quarantine interface {
	Quarantined(ctx context.Context, source string, limit int) ([]store.QuarantineEntry, error)
	HasQuarantine(ctx context.Context, source string) (bool, error)
}

// outbox is what the dispatcher reads due events from and records outcomes in;
// Stats tells a draining run how many events were left behind.
type outbox interface {
	Pending(ctx context.Context, sink string, now time.Time, limit int, skip ...int64) ([]store.Pending, error)
	PendingJSON(ctx context.Context, sink string, now time.Time, limit int, skip ...int64) ([]store.Pending, error)
	Settle(ctx context.Context, sink string, fence *store.Fence, outcomes []store.Outcome) (store.Settled, error)
	Stats(ctx context.Context) (store.Stats, error)
}

// locker takes the named locks that keep one reader per source and one
// dispatcher per sink across replicas.
type locker interface {
	TryLock(ctx context.Context, name string) (lock store.Lock, ok bool, err error)
}

// JobStore is what a source's job needs: its cursor, the snapshot, quarantine,
// the source's lock and the keys a full-set or reconcile pass has seen.
type JobStore interface {
	cursors
	snapshots
	quarantine
	locker
	store.Disappearance
}

// DispatchStore is what the dispatcher needs: the outbox and the sinks' locks.
type DispatchStore interface {
	outbox
	locker
}
