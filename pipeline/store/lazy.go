package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// A first sync stores every record twice over if each created event copies the
// record the snapshot row already holds. So a snapshot's created event is stored
// without its fields ("lazy"), marked in its payload; the snapshot row is marked
// too. Reading the event fills the fields from the snapshot row, which is still at
// the event's version; before the row moves to a later version, commit writes the
// fields into the event (materialize). Delivered events keep their fields either way.

// lazyMark is the payload key that says the event's after is its snapshot row.
const lazyMark = "after_in_snapshot"

// encodeEvent encodes ev with after (when given, the encoded ev.After) or without
// it when lazy. Records are encoded by hand (pipeline.AppendFieldsJSON); the rest of
// the event is small.
func encodeEvent(ev *pipeline.Event, after []byte, lazy bool) ([]byte, error) {
	head := *ev
	head.Before, head.After = nil, nil
	b, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	// Reopen the object, with room for the fields that follow: appended to the
	// head's exact-size slice, they made it grow (and copy) several times.
	b = slices.Grow(b[:len(b)-1], fieldsRoom(ev.Before)+len(after)+fieldsRoom(ev.After)+32)
	if ev.Before != nil {
		b = append(b, `,"before":`...)
		if b, err = pipeline.AppendFieldsJSON(b, ev.Before, nil); err != nil {
			return nil, err
		}
	}
	switch {
	case lazy:
		b = append(b, `,"`+lazyMark+`":true`...)
	case after != nil:
		b = append(b, `,"after":`...)
		b = append(b, after...)
	case ev.After != nil:
		b = append(b, `,"after":`...)
		if b, err = pipeline.AppendFieldsJSON(b, ev.After, nil); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// fieldsRoom is about what a record's fields take as JSON: keys and values of
// a few dozen bytes each.
func fieldsRoom(fields map[string]any) int { return 64 * len(fields) }

// storedEvent is an event as read back from the store.
type storedEvent struct {
	pipeline.Event
	Lazy bool `json:"after_in_snapshot"`
}

// decodeEvent decodes a stored payload; lazy reports that After is still to be read
// from the snapshot.
func decodeEvent(payload []byte, ev *pipeline.Event) (lazy bool, err error) {
	if !bytes.Contains(payload, []byte(lazyMark)) {
		return false, decodeJSON(payload, ev)
	}
	var se storedEvent
	if err := decodeJSON(payload, &se); err != nil {
		return false, err
	}
	*ev = se.Event
	return se.Lazy, nil
}

// errLazyMoved: a commit moved a lazy event's record on (and wrote the fields into
// the event) between reading the event and its snapshot row; reading again sees the
// event whole.
var errLazyMoved = errors.New("the record moved on while its event was read")

// fillLazy reads the fields of lazy events from their snapshot rows.
func (s *sqlStore) fillLazy(ctx context.Context, q sqlx.QueryerContext, evs []*pipeline.Event) error {
	type ref struct{ source, entity string }
	keys := map[ref][]string{}
	for _, ev := range evs {
		r := ref{ev.Source, ev.Entity}
		keys[r] = append(keys[r], ev.Key)
	}
	found := map[[3]string]snapshotFields{}
	for r, ks := range keys {
		err := forEachIn(s.d, "key", ks, func(cond string, args []any) error {
			return queryEach(ctx, q, s.q(`SELECT key, version, fields FROM snapshot WHERE source = ? AND entity = ? AND `+cond),
				append([]any{r.source, r.entity}, args...), func(rows *sqlx.Rows) error {
					var f snapshotFields
					if err := rows.Scan(&f.Key, &f.Version, &f.Fields); err != nil {
						return err
					}
					found[[3]string{r.source, r.entity, f.Key}] = f
					return nil
				})
		})
		if err != nil {
			return err
		}
	}
	for _, ev := range evs {
		f, ok := found[[3]string{ev.Source, ev.Entity, ev.Key}]
		if !ok || f.Version != ev.Version {
			return fmt.Errorf("event %s: its record %s/%s is no longer at version %d in the snapshot: %w", ev.ID, ev.Entity, ev.Key, ev.Version, errLazyMoved)
		}
		fields, err := s.decodeStored(ctx, q, f.Fields)
		if err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		ev.After = fields
	}
	return nil
}

type snapshotFields struct {
	Key     string
	Version int64
	Fields  []byte
}

// lazySeqs sets the seq of each snapshot row's lazy event: inserted by this commit,
// or, when the batch is a replay whose events exist already, as stored then.
func (s *sqlStore) lazySeqs(ctx context.Context, tx *sqlx.Tx, snap snapshotRows, inserted map[string]int64) error {
	var missing []string
	byID := map[string]*pendingSnapshot{}
	for _, r := range snap.list {
		if r.lazyID == "" || r.lazySeq != nil { // not lazy, or a feed event or a replay's (set already)
			continue
		}
		if seq, ok := inserted[r.lazyID]; ok {
			r.lazySeq = &seq
			continue
		}
		missing = append(missing, r.lazyID)
		byID[r.lazyID] = r
	}
	return forEachIn(s.d, "id", missing, func(cond string, args []any) error {
		return queryEach(ctx, tx, s.q(`SELECT id, seq FROM events WHERE `+cond), args, func(rows *sqlx.Rows) error {
			var id string
			var seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				return err
			}
			byID[id].lazySeq = &seq
			return nil
		})
	})
}
