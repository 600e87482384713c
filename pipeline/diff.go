package pipeline

import "time"

// Prior is what is known of a record before a change: its stored state.
type Prior struct {
	Hash    string
	Version int64
	Fields  map[string]any // typed like Record.Fields
	Deleted bool
}

// Diff returns the change event that turns prior into rec, or nil when the content
// is unchanged. hash is rec.Hash(), which callers store too, so it is computed once.
// prior is nil for a record never seen. The event's id is deterministic, so the same
// change always gets the same identity.
func Diff(source string, prior *Prior, rec Record, hash string, snapshot bool, at time.Time) *Event {
	if prior != nil && prior.Hash == hash && !prior.Deleted {
		return nil
	}
	ev := &Event{
		Type: EventCreated, Source: source, Entity: rec.Entity, Key: rec.Key, Agency: rec.Agency,
		Version: 1, Snapshot: snapshot, After: rec.Fields, DetectedAt: at,
	}
	if prior != nil {
		ev.Version = prior.Version + 1
		if !prior.Deleted {
			ev.Type = EventUpdated
			ev.Before = prior.Fields
			ev.Changed = ChangedFields(prior.Fields, rec.Fields)
		}
	}
	ev.ID = EventID(source, ev.Entity, ev.Key, ev.Version, ev.Type, hash)
	return ev
}
