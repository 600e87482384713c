package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Position is a source's resume point, opaque to the engine and owned by the
// connector (for SQL: the composite cursor). A nil Position means "from the start".
type Position []byte

// Emitter receives what a source reads.
type Emitter interface {
	// Emit hands over one row.
	Emit(Row) error
	// Reject hands over a row the source itself cannot place (a NULL key, a cursor
	// value it cannot read), with the reason. The engine quarantines it and reading
	// goes on: one poison row must not stall a source.
	Reject(row Row, reason error) error
}

// EmitFunc adapts a function that takes rows to an Emitter whose Reject fails with
// the reason, for callers that need every row to be usable.
type EmitFunc func(Row) error

// Emit calls f.
func (f EmitFunc) Emit(r Row) error { return f(r) }

// Reject returns the reason as an error.
func (f EmitFunc) Reject(_ Row, reason error) error {
	return fmt.Errorf("row rejected by the source: %w", reason)
}

// Source reads an agency system in bounded batches after a position.
type Source interface {
	// ReadBatch streams at most one batch of rows after pos to out, in cursor order,
	// and returns the position after them and whether the source has nothing more
	// for now. Memory stays bounded by the batch size, not the table. Rejected rows
	// count towards the batch.
	//
	// The engine reads the next batch while it maps and commits the one before, on
	// a goroutine of its own: calls of ReadBatch never overlap one another, but one
	// may run while the engine calls the source's other methods (Horizon.Before).
	// A batch read ahead is discarded, its context cancelled, when the run stops
	// before it: reading must have no effect beyond the rows it hands over.
	ReadBatch(ctx context.Context, pos Position, out Emitter) (next Position, done bool, err error)
	io.Closer
}

// Rewinder is implemented by sources that re-read a window before their stored
// position at the start of every run (the SQL lookback), so that rows committed late
// with an old cursor value are still seen.
type Rewinder interface {
	Rewind(stored Position) Position
}

// Describer is implemented by sources whose rows have a known set of columns (a
// table or query). The engine checks every column a mapping reads against it before
// each run, so a renamed or mistyped column stops the source instead of turning into
// NULLs.
type Describer interface {
	// Columns asks the source afresh for the names of the columns its rows carry,
	// spelled exactly as they appear in emitted rows.
	Columns(ctx context.Context) ([]string, error)
}

// Refetcher is implemented by sources that can read the current version of rows
// they emitted before, so that reprocessing a quarantined row uses what the agency
// holds now, not a copy that may be months old.
type Refetcher interface {
	// Refetch emits the current version of each given row (as read earlier, matched
	// by the source's own key) that still exists; rows gone from the source are not
	// emitted.
	Refetch(ctx context.Context, rows []Row, out Emitter) error
}

// Horizon is implemented by sources that can tell when a row was last written
// relative to a mark. Rows touched while a source's first sync runs move past the
// reader (behind its lag bound); they existed before the sync and are not news. When
// the first sync's reader has caught up, the engine takes a mark and reads the rows
// up to it without the lag bound (ReadUntil) as part of the snapshot; later, a
// record first seen but written before the mark is a snapshot record too.
type Horizon interface {
	// Mark returns an opaque mark of everything written to the source until now.
	Mark(ctx context.Context) (Position, error)
	// Before reports whether row was last written at or before mark.
	Before(mark Position, row Row) bool
	// ReadUntil is ReadBatch with the upper bound at mark instead of the lag bound.
	// The engine does not keep the position it returns as its cursor: the rows are
	// read again, under the lag bound, by the next run.
	ReadUntil(ctx context.Context, pos, mark Position, out Emitter) (next Position, done bool, err error)
}

// FullSet is implemented by sources that have no cursor: every read from a nil
// position yields the whole current set of records (a feed, a file dropped by an
// agency). The engine reads such a source from the start on every poll, diffs what
// it read against the snapshot, and counts a record that is missing from a complete,
// successful read towards its disappearance (a deleted event after the configured
// number of consecutive misses). A read that fails, or a page in an unknown shape,
// must return an error so that nothing is counted as missing.
type FullSet interface {
	FullSet()
}

// Sink delivers events to one destination. An error marked with Permanent goes
// straight to dead letters; any other error is retried with backoff.
type Sink interface {
	Deliver(ctx context.Context, ev *Event) error
	io.Closer
}

// BatchSink is implemented by sinks that deliver several events at once for about
// the price of one (one write, one statement, one round of acknowledgements). The
// dispatcher then hands them up to its `batch` setting of due events per call;
// a plain Sink gets one event per Deliver.
//
// The events of one call belong to different records, so the sink may deliver them
// in any order or in parallel; calls may run concurrently. DeliverBatch returns
// one result per event, in the order of evs: nil when that event was delivered,
// otherwise an error classified as Deliver's are (Permanent, RetryAfter,
// WithDetail). An event that cannot be delivered must not fail the others when the
// sink can tell which one it is; a failure of the whole call (a lost connection)
// is that error for every event. A result slice of the wrong length counts as a
// transient failure of every event.
type BatchSink interface {
	Sink
	DeliverBatch(ctx context.Context, evs []*Event) []error
}

// DeliverEach delivers evs one by one through s, for a sink whose batch path
// must fall back to single deliveries (for example to find which event of a
// batch a destination refuses).
func DeliverEach(ctx context.Context, s Sink, evs []*Event) []error {
	errs := make([]error, len(evs))
	for i, ev := range evs {
		errs[i] = s.Deliver(ctx, ev)
	}
	return errs
}

// Mounter is implemented by connectors that answer HTTP on the daemon's endpoint
// (a webhook an outside platform calls). The daemon calls Mount once, before it
// serves, beside /healthz, /readyz and /metrics.
type Mounter interface {
	Mount(mux *http.ServeMux)
}

// Clock tells the time; injected wherever behaviour depends on it.
type Clock func() time.Time
