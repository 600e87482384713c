package pipeline

import (
	"context"
	"time"
)

// KeyLister is implemented by sources that can list the rows they hold now, read
// only for a few columns, in their own key order and in pages (an SQL table). The
// engine's reconcile reads every key this way and deletes the records whose rows
// are gone, holding one page in memory at a time.
type KeyLister interface {
	// ReadKeys emits at most limit rows after pos, each holding at least the given
	// columns, in the source's key order, and returns the position after them and
	// whether the listing is complete. A row the source cannot place is rejected.
	ReadKeys(ctx context.Context, columns []string, pos Position, limit int, out Emitter) (next Position, done bool, err error)
}

// Deletion is the event that says a record is gone from its source: a version
// after prior's, with the record as it was last known as Before and no After. Its
// id is deterministic like every change's.
func Deletion(source, entity, key, agency string, prior Prior, at time.Time) *Event {
	ev := &Event{
		Type: EventDeleted, Source: source, Entity: entity, Key: key, Agency: agency,
		Version: prior.Version + 1, Before: prior.Fields, DetectedAt: at,
	}
	ev.ID = EventID(source, entity, key, ev.Version, EventDeleted, prior.Hash)
	return ev
}
