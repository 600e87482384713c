// Package sourcetest is the conformance suite for pipeline sources. Each source runs
// it from its own tests against a real backend (a database schema, a temporary
// file, a test server), so every source is held to the same guarantees: every row
// once and in order, exact resume, ties on one cursor value, late rows caught by the
// lookback, rows in flight held back by the lag, and an empty read that changes
// nothing.
//
// The suite works on one kind of table: a unique integer key, a time cursor and a
// text payload (see Item). A harness creates that table in its backend and a source
// over it, and writes the items the suite asks for:
//
//	func TestConformance(t *testing.T) {
//		sourcetest.Run(t, sourcetest.Harness{Open: func(t *testing.T, s sourcetest.Settings) sourcetest.Fixture {
//			db := freshDatabase(t) // CREATE TABLE items (id, updated_at, payload)
//			src := openMySource(t, db, s.BatchSize, s.Lag, s.Lookback, s.Clock)
//			return sourcetest.Fixture{Source: src, Put: func(t *testing.T, items ...sourcetest.Item) {
//				upsert(t, db, items) // one transaction
//			}}
//		}})
//	}
//
// A pipeline.FullSet source (no cursor: every read from the start yields the whole
// current set) is held to the full-set cases instead (see fullset.go); its harness
// gives Fixture.Delete, and Break when it can make its backend fail.
//
// Cases that need pipeline.Rewinder, Refetcher, Horizon or Describer are skipped for
// sources without it. The poison-row cases need Fixture.PutRaw, which writes rows
// with a NULL key or cursor; they are skipped for harnesses that leave it nil.
package sourcetest

import (
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// The fields every row the source emits must carry. ID may come back as any
// integer type or its decimal text; UpdatedAt as a time.Time; Payload as a string
// or []byte.
const (
	KeyField    = "id"
	CursorField = "updated_at"
	ValueField  = "payload"
)

// Item is one row of the suite's table.
type Item struct {
	ID        int64
	UpdatedAt time.Time // whole milliseconds, so every backend stores it exactly
	Payload   string
}

// Settings configure the source a harness opens.
type Settings struct {
	BatchSize int
	// Lag holds back rows whose cursor is newer than Clock() - Lag.
	Lag time.Duration
	// Lookback is the window Rewind re-reads; 0 means none.
	Lookback time.Duration
	// Clock is "now" for the source's lag. The harness must make the source measure
	// its lag from it (a source that asks its database for the time needs a test
	// hook); the suite moves it forward.
	Clock pipeline.Clock
}

// Harness is how the suite reaches a source implementation.
type Harness struct {
	// Open creates a fresh, empty table and a source over it configured with s. The
	// harness releases both when t ends.
	Open func(t *testing.T, s Settings) Fixture
}

// Fixture is one table and the source reading it.
type Fixture struct {
	Source pipeline.Source
	// Put writes items in one committed transaction: an unknown ID is inserted, a
	// known one has its cursor and payload updated.
	Put func(t *testing.T, items ...Item)
	// PutRaw inserts rows as given, NULLs included, in one committed transaction.
	// Optional. A harness that offers it creates the id and cursor columns without
	// NOT NULL, id unique among its non-NULL values.
	PutRaw func(t *testing.T, rows ...Raw)
	// Delete removes items by ID. Required for a pipeline.FullSet source, whose
	// cases check that a removed item is gone from the next read.
	Delete func(t *testing.T, ids ...int64)
	// Break makes the backend fail (an error answer, a page in an unknown shape,
	// an unreadable file) until the returned function restores it. Optional; for
	// FullSet sources.
	Break func(t *testing.T) (restore func())
	// Decode turns an emitted row back into an Item, for a source whose rows carry
	// the item's fields under other names or shapes (a preset with fixed columns).
	// Optional; the default reads the id, updated_at and payload fields, the cursor
	// as a time.Time or RFC 3339 text. Used by the FullSet cases.
	Decode func(pipeline.Row) (Item, error)
}

// Raw is a row that may break the rules a source needs: a nil ID or UpdatedAt is
// written as NULL. Payload identifies it in the suite's checks.
type Raw struct {
	ID        *int64
	UpdatedAt *time.Time
	Payload   string
}

// Clock is a test clock that moves only when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now is a pipeline.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
