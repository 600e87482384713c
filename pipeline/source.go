package pipeline

import (
	"context"
	"io"
	"time"
)

// Position is a source's resume point, opaque to the engine and owned by the
// connector (for SQL: the composite cursor). A nil Position means "from the start".
type Position []byte

// Source reads an agency system in bounded batches after a position.
type Source interface {
	// ReadBatch streams at most one batch of rows after pos to emit, in cursor order,
	// and returns the position after them and whether the source has nothing more
	// for now. Memory stays bounded by the batch size, not the table.
	ReadBatch(ctx context.Context, pos Position, emit func(Row) error) (next Position, done bool, err error)
	io.Closer
}

// Rewinder is implemented by sources that re-read a window before their stored
// position at the start of every run (the SQL lookback), so that rows committed late
// with an old cursor value are still seen.
type Rewinder interface {
	Rewind(stored Position) Position
}

// Sink delivers events to one destination. An error marked with Permanent goes
// straight to dead letters; any other error is retried with backoff.
type Sink interface {
	Deliver(ctx context.Context, ev *Event) error
	io.Closer
}

// Clock tells the time; injected wherever behaviour depends on it.
type Clock func() time.Time
