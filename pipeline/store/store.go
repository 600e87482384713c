// Package store defines the daemon's state store: cursors, the snapshot used for change
// detection and look-ups, the outbox, deliveries, dead letters and quarantine. Two
// backends implement it (sqlite, the embedded default, and postgres) and both pass the
// one suite in storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// CursorState is what the store keeps per source.
type CursorState struct {
	Source      string
	Position    pipeline.Position // nil before the first committed batch
	InitialDone bool              // the first full sync (the snapshot) has completed
	UpdatedAt   time.Time
	// Edge is the source's mark taken when the first sync ended (see
	// pipeline.Horizon); nil when the source has none.
	Edge pipeline.Position
	// LastError is why the source's last run failed, "" after a run that succeeded.
	LastError string
	ErrorAt   time.Time
}

// SnapshotEntry is the last known state of one record.
type SnapshotEntry struct {
	Entity  string
	Key     string
	Hash    string
	Version int64          // grows by one with every change of the record
	Fields  map[string]any // as stored: JSON-decoded, numbers as json.Number, times as RFC 3339 strings
	Deleted bool
	// UpdatedAt is when the entry was last committed; set on read, ignored on write.
	UpdatedAt time.Time
	// New, on write, says the store holds no row of this key: the writer looked
	// and found none (or knows none can exist) while it held the source's lock, so
	// Commit skips its own look-up. It must never be set for a stored key: Commit
	// would then lose that row's undelivered first-sync event and figures. Ignored
	// on read.
	New bool
}

// OutboxEvent is an event to commit together with the sinks it is routed to.
type OutboxEvent struct {
	Event *pipeline.Event
	Sinks []string
}

// QuarantineEntry is a row that its mapping rejected, kept with the reason.
type QuarantineEntry struct {
	ID      int64
	Source  string
	Entity  string
	RowKey  string            // best-effort identity of the row (key column), may be empty
	Reason  string            // every field error, one per line
	Raw     map[string]string // the raw row, values as text
	Count   int               // how many times this same row was rejected
	FirstAt time.Time
	LastAt  time.Time
	// Snapshot: the row was rejected during the source's first sync, so a record it
	// later yields is part of that snapshot, not news to tell citizens.
	Snapshot bool
	// Rule, when set, makes this a failed notice rather than a bad row: the rule of
	// that name failed at run time on Event, the change it was evaluated on.
	Rule  string
	Event *pipeline.Event
}

// Batch is everything one source batch produced; Commit stores it atomically so the
// cursor never advances past changes that were not recorded.
type Batch struct {
	Source      string
	Position    pipeline.Position // the new cursor
	InitialDone bool              // set the source's InitialDone flag
	Snapshot    []SnapshotEntry
	Events      []OutboxEvent
	Quarantine  []QuarantineEntry
	// Resolved lists row keys (QuarantineEntry.RowKey) of rows that now map cleanly:
	// their quarantined bad rows are removed, so quarantine reflects the present.
	Resolved []string
	// ResolvedIDs are quarantine entries removed by this commit, before its own
	// Quarantine entries are stored (a reprocessed row keeps one current entry).
	ResolvedIDs []int64
	// Edge, when set, is stored as the source's mark (see CursorState.Edge).
	Edge pipeline.Position
	// Misses are miss counts of records a complete pass did not read (see
	// Disappearance), stored with the deleted events they lead to.
	Misses []MissCount
	// Fence, when set, makes the commit fail with ErrFenced unless the lock it was
	// taken from is still held by this acquisition.
	Fence *Fence
	At    time.Time
	// Facts and Timers keep the steering figures' facts and the deadline timers of
	// the batch's records (see facts.go), in the same transaction. TimersFired is
	// used by FactStore.FireTimers only.
	Facts       []Fact
	Timers      []TimerArm
	TimersFired []TimerKey
}

// Pending is one outbox row waiting for a sink.
type Pending struct {
	Seq  int64 // commit order; each record's events are delivered in Seq order
	Sink string
	// Record identifies the event's record (RecordID). Pending hands out one row
	// per record; a dispatcher keeps at most one row of a record in flight.
	Record   string
	Event    pipeline.Event
	Attempts int
	NextAt   time.Time
	LastErr  string
	// ReplayedAt is when the row, or the dead letter that held it back, was last
	// replayed (zero if never): its age for max_age counts from the later of this
	// and Event.DetectedAt.
	ReplayedAt time.Time
	// Feed says the row was read from a snapshot feed (decision 0014): its
	// outcome says so too (Outcome.Feed).
	Feed bool
}

// AgeFrom is the instant the row's age counts from: the later of its detection
// and its last replay.
func (p Pending) AgeFrom() time.Time {
	if p.ReplayedAt.After(p.Event.DetectedAt) {
		return p.ReplayedAt
	}
	return p.Event.DetectedAt
}

// OnDead says what a dead letter does to the later events of its record for the
// same sink. The zero value means OnDeadHold.
type OnDead string

const (
	// OnDeadHold holds the record's later events behind the dead letter until it
	// is replayed (then all are delivered in order) or dismissed.
	OnDeadHold OnDead = "hold"
	// OnDeadSkip lets the later events flow; the dead letter is superseded, and
	// never resent, once a newer event of the record reaches the sink.
	OnDeadSkip OnDead = "skip"
)

// DeadState is where a dead letter stands.
type DeadState string

const (
	DeadHolding    DeadState = "holding"    // made under OnDeadHold: its record's later events wait
	DeadOpen       DeadState = "open"       // made under OnDeadSkip: replayable, holds nothing
	DeadSuperseded DeadState = "superseded" // a newer event of the record reached the sink: never resent
	DeadDismissed  DeadState = "dismissed"  // an operator gave it up: never resent
)

// Replayable reports whether resending the dead letter keeps every consumer from
// receiving an older version of its record after a newer one.
func (s DeadState) Replayable() bool { return s == DeadHolding || s == DeadOpen }

// OutcomeKind says how a delivery attempt ended.
type OutcomeKind int

const (
	OutcomeDelivered OutcomeKind = iota + 1 // the sink has the event
	OutcomeRetry                            // failed; try again at NextAt
	OutcomeDead                             // given up: to dead letters
)

// Outcome is how one delivery attempt of an outbox row ended, for Settle.
type Outcome struct {
	Seq      int64
	Kind     OutcomeKind
	Attempts int       // attempts made, this one included
	At       time.Time // when the attempt ended: the delivery's or the dead letter's time
	NextAt   time.Time // OutcomeRetry: when the row is due again
	Err      string    // OutcomeRetry: the error; OutcomeDead: the reason
	OnDead   OnDead    // OutcomeDead: what the dead letter does to its record's later events
	// Feed is Pending.Feed of the row: Settle then looks for the row in the
	// sink's feed before its outbox. Only the order of the look-ups depends on
	// it; the row is found wherever it is.
	Feed bool
}

// Settled is what Settle did with a batch of outcomes.
type Settled struct {
	// Errs holds one entry per outcome: nil when it was recorded, ErrNotFound when
	// its row is no longer in the outbox (the others are still recorded), or why
	// the outcome itself is invalid.
	Errs []error
	// Heads counts the rows that became their record's head: events that Pending
	// can now hand out that it could not before.
	Heads int
}

// DeadLetter is a delivery that was given up on, with the reason.
type DeadLetter struct {
	ID       int64
	Sink     string
	Seq      int64
	Event    pipeline.Event
	Attempts int
	Reason   string
	At       time.Time
	State    DeadState
	StateAt  time.Time // when it was superseded or dismissed; zero otherwise
	// Held counts the record's later events waiting behind it for the sink (only
	// while it is DeadHolding).
	Held int
}

// ReplayResult says what Replay did with the dead letters it was given.
type ReplayResult struct {
	Replayed   int // back in the outbox
	Superseded int // not resent: a newer event of the record already reached the sink
	Dismissed  int // not resent: an operator dismissed them
}

// AuditEntry is one operator action (replay, reset, reprocess), kept in the store.
type AuditEntry struct {
	ID     int64
	At     time.Time
	Actor  string // the OS user who ran the command
	Action string // e.g. "replay", "reset-cursor", "quarantine reprocess"
	Detail string
}

// Stats is the operator's overview.
type Stats struct {
	Cursors     []CursorState
	Outbox      map[string]int // pending rows per sink
	DeadLetters map[string]int // per sink
	Quarantined map[string]int // per source
	Events      int64
	Deliveries  int64
	// HeldRecords counts, per sink, the records whose later events wait behind a
	// holding dead letter; HeldEvents the outbox rows so waiting.
	HeldRecords map[string]int
	HeldEvents  map[string]int
}

// Store is the state store. Every method is safe for concurrent use.
type Store interface {
	// Cursor returns the source's cursor state; a zero CursorState (nil Position) when
	// the source has never committed.
	Cursor(ctx context.Context, source string) (CursorState, error)
	// SetSourceError records why the source's last run failed ("" clears it), for
	// `state` and /readyz; it does not touch the position.
	SetSourceError(ctx context.Context, source, msg string, at time.Time) error
	// ResetCursor forgets the source's position so the next run re-reads from the start;
	// the snapshot is kept, so unchanged records produce no events.
	ResetCursor(ctx context.Context, source string) error

	// Snapshot returns the stored entries for the given keys; absent keys are absent.
	// It sees what was committed before it was called, and never waits for a
	// commit in progress.
	Snapshot(ctx context.Context, source, entity string, keys []string) (map[string]SnapshotEntry, error)
	// HasSnapshot reports whether the snapshot holds any record of the source.
	HasSnapshot(ctx context.Context, source string) (bool, error)
	// BeginBulkLoad readies an empty snapshot for a fresh first sync of source, to
	// be committed in batches whose entries are all New: the indexes its keys
	// would reach in random order are left out until EndBulkLoad, or until
	// anything needs them. It reports false, and changes nothing, when the
	// snapshot holds rows, another load is on, or the store does not bulk-load.
	BeginBulkLoad(ctx context.Context, source string) (bool, error)
	// EndBulkLoad builds what a bulk load left out, if one is on, and reports
	// whether it did.
	EndBulkLoad(ctx context.Context) (bool, error)

	// Commit stores a batch in one transaction: snapshot upserts, events and their
	// outbox rows, quarantine entries and the cursor. Events whose id already exists
	// are skipped (with their outbox rows), which keeps a replayed batch idempotent.
	Commit(ctx context.Context, b Batch) error

	// Pending returns up to limit outbox rows for the sink that are due at now,
	// oldest due first (by next_at, then Seq), at most one per record: only each
	// record's head is a candidate, its oldest row still waiting for the sink, and
	// none while an earlier event of the record is a holding dead letter of the
	// sink. Each record's delivery thus follows Seq even across restarts and dead
	// letters, while other records go on. The rows come from an index of heads, so
	// a poll costs what is due, not what is pending. Rows whose Seq is in skip are
	// left out: a dispatcher passes those it has in flight.
	Pending(ctx context.Context, sink string, now time.Time, limit int, skip ...int64) ([]Pending, error)
	// PendingJSON is Pending for a sink that reads records only as JSON
	// (pipeline.FieldsJSON): an event may come with Event.AfterJSON and a nil
	// After. The events, their order and what is left out are Pending's.
	PendingJSON(ctx context.Context, sink string, now time.Time, limit int, skip ...int64) ([]Pending, error)
	// Settle records the outcomes of delivery attempts to the sink in one
	// transaction, each as Delivered, Retry or Dead would, and says what it did
	// (see Settled). When err is set nothing was recorded. Outcomes of one record
	// are applied in Seq order.
	// A non-nil fence makes the whole batch fail with ErrFenced, recording nothing,
	// once another holder has taken the sink's lock.
	Settle(ctx context.Context, sink string, fence *Fence, outcomes []Outcome) (Settled, error)
	// Delivered removes an outbox row and records the delivery. The record's older
	// dead letters of the sink become DeadSuperseded, and any older outbox row of the
	// record (a replay racing the delivery) is moved to dead letters as superseded:
	// after a newer event, an older one is never sent. The record's next row becomes
	// its head.
	Delivered(ctx context.Context, sink string, seq int64, attempts int, at time.Time) error
	// Retry records a failed attempt and when to try again; the row stays its
	// record's head.
	Retry(ctx context.Context, sink string, seq int64, attempts int, nextAt time.Time, errMsg string) error
	// Dead moves an outbox row to dead letters with the reason; under OnDeadHold the
	// dead letter holds the record's later events for the sink (DeadHolding), under
	// OnDeadSkip it does not (DeadOpen) and the record's next row becomes its head.
	Dead(ctx context.Context, sink string, seq int64, attempts int, reason string, at time.Time, onDead OnDead) error
	// DeadLetters lists dead letters, newest last; sink "" means every sink.
	DeadLetters(ctx context.Context, sink string, limit int) ([]DeadLetter, error)
	// Replay moves the given replayable dead letters back into the outbox, due at at
	// with zero attempts; their age, and that of the later events they held, counts
	// from at. A replayed event becomes its record's head: the record's rows wait
	// behind it. Superseded and dismissed ones stay where they are and are counted.
	Replay(ctx context.Context, ids []int64, at time.Time) (ReplayResult, error)
	// Dismiss gives the given replayable dead letters up (DeadDismissed): they are
	// kept for the record, never resent, and hold nothing any more; the events they
	// held count their age from at, and the first of them becomes its record's
	// head. It returns how many it dismissed.
	Dismiss(ctx context.Context, ids []int64, at time.Time) (int, error)

	// Quarantined lists quarantine entries of a source ("" for all), newest last.
	Quarantined(ctx context.Context, source string, limit int) ([]QuarantineEntry, error)

	// ResolveQuarantine deletes quarantine entries whose rows were reprocessed.
	ResolveQuarantine(ctx context.Context, ids []int64) (int, error)
	// HasQuarantine reports whether the source has any quarantined bad row.
	HasQuarantine(ctx context.Context, source string) (bool, error)

	// Epoch is when this store was created (microseconds since 1970). A record's
	// versions restart at 1 in a store rebuilt from nothing; (epoch, version) orders
	// every version a consumer may have seen from any store.
	Epoch() int64

	// Events lists stored events, filtered and paged by seq (see EventQuery): the
	// API's event list and, polled with AfterSeq, its live stream.
	Events(ctx context.Context, q EventQuery) ([]StoredEvent, error)

	// Audit records an operator action; AuditLog lists the most recent, oldest first.
	Audit(ctx context.Context, e AuditEntry) error
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)

	// TryLock takes a named lock shared by every process using this store, without
	// waiting; ok is false when another holder has it. The lock is released by
	// Unlock, by Close, or when the process dies; a holder checks Held before each
	// piece of guarded work. One reader per source and one dispatcher per sink across
	// replicas rest on it.
	TryLock(ctx context.Context, name string) (lock Lock, ok bool, err error)

	// Disappearance keeps the keys a pass has read and the miss counts of records
	// it did not (disappear.go).
	Disappearance

	// Purge removes what the retention allows (see Retention), measured from now.
	Purge(ctx context.Context, r Retention, now time.Time) (PurgeResult, error)

	// Stats summarises the store for `egov-bridge state`.
	Stats(ctx context.Context) (Stats, error)

	Close() error

	// --- Zalo OA (connectors/zalo, `egov-bridge zalo`); see zalo.go. ---

	// ZaloToken returns the OA's stored token pair, or ErrZaloTokenMissing.
	ZaloToken(ctx context.Context, oaID string) (ZaloToken, error)
	// SaveZaloToken stores a new pair (clearing a refusal) and returns its
	// generation; with a fence it writes nothing, and fails with ErrFenced, once the
	// fence's lock was taken over.
	SaveZaloToken(ctx context.Context, t ZaloToken, fence *Fence) (int64, error)
	// RefuseZaloToken marks the stored pair of that generation refused by Zalo.
	RefuseZaloToken(ctx context.Context, oaID string, generation int64, reason string, at time.Time) error
	// UpsertZaloFollowers inserts or replaces followers and returns how many.
	UpsertZaloFollowers(ctx context.Context, fs []ZaloFollower) (int, error)
	// ZaloFollowerByPhone returns the follower linked to the phone (one still
	// following first), or ErrNotFound.
	ZaloFollowerByPhone(ctx context.Context, oaID, phone string) (ZaloFollower, error)
	// CountZaloFollowers counts the OA's followers and those with a phone linked.
	CountZaloFollowers(ctx context.Context, oaID string) (following, withPhone int, err error)
	// RecordZaloSend records a message sent or a notice not sent; a second record
	// of the same (sink, event, part) is ignored.
	RecordZaloSend(ctx context.Context, r ZaloSend) error
	// ZaloSends returns one event's records for the sink (eventID ""; all, oldest
	// first, up to limit).
	ZaloSends(ctx context.Context, sink, eventID string, limit int) ([]ZaloSend, error)
	// ZaloUsage counts notices and messages per month, agency and route (sink and
	// month "" mean all).
	ZaloUsage(ctx context.Context, sink, month string) ([]ZaloUsage, error)
}
