package sourcetest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// start is where every case's clock begins: 09:00 in Hà Nội.
var start = time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC)

// Run runs every conformance case against h, each on a fresh table. A
// pipeline.FullSet source gets the full-set cases instead of the cursor cases.
func Run(t *testing.T, h Harness) {
	if isFullSet(t, h) {
		runFullSet(t, h)
		return
	}
	cases := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"InitialReadReturnsEveryRowOnceInCursorOrder", initialRead},
		{"ResumeFromStoredPositionReturnsOnlyNewerRows", resume},
		{"InsertsAndUpdatesAfterSyncArePickedUp", insertsAndUpdates},
		{"RowsSharingOneCursorValueAreEachReadOnce", sharedCursorValue},
		{"LateRowInsideLookbackIsReadAfterRewind", lateRowLookback},
		{"RewindWithoutLookbackKeepsPosition", rewindWithoutLookback},
		{"RowsNewerThanLagWaitForIt", lag},
		{"EmptyReadIsDoneAndKeepsPosition", emptyRead},
		{"ADiscardedReadChangesNothing", discardedRead},
		{"PoisonRowsAreRejectedAndReadingGoesOn", poisonRows},
		{"RefetchReturnsTheCurrentVersionOfRows", refetch},
		{"HorizonMarksWhatWasWrittenBeforeIt", horizon},
		{"ColumnsNameEveryFieldOfARow", columns},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
}

// settings are the defaults each case adjusts.
func settings(clock *Clock) Settings {
	return Settings{BatchSize: 10, Lag: time.Second, Clock: clock.Now}
}

func initialRead(t *testing.T, h Harness) {
	clock := NewClock(start)
	fx := h.Open(t, settings(clock))
	// 35 rows, three to a second, written in shuffled order over several
	// transactions, so neither insertion order nor key order is cursor order.
	items := make([]Item, 35)
	for i := range items {
		items[i] = Item{ID: int64(1000 - i), UpdatedAt: start.Add(-time.Hour + time.Duration(i/3)*time.Second), Payload: "p" + strconv.Itoa(i)}
	}
	shuffled := slices.Clone(items)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	fx.Put(t, shuffled[:10]...)
	fx.Put(t, shuffled[10:20]...)
	fx.Put(t, shuffled[20:]...)

	got, _ := drain(t, fx.Source, nil, 10, 5)
	assertItems(t, got, sorted(items))
}

func resume(t *testing.T, h Harness) {
	clock := NewClock(start)
	fx := h.Open(t, settings(clock))
	first := series(1, 20, start.Add(-time.Hour), time.Second)
	fx.Put(t, first...)

	b := readBatch(t, fx.Source, nil, 10)
	assertItems(t, b.items, first[:10])
	stored := bytes.Clone(b.next) // what the engine keeps between runs

	rest, pos := drain(t, fx.Source, stored, 10, 3)
	assertItems(t, rest, first[10:])

	newer := series(21, 5, start.Add(-time.Minute), time.Second)
	fx.Put(t, newer...)
	got, _ := drain(t, fx.Source, bytes.Clone(pos), 10, 3)
	assertItems(t, got, newer)
}

func insertsAndUpdates(t *testing.T, h Harness) {
	clock := NewClock(start)
	fx := h.Open(t, settings(clock))
	items := series(1, 10, start.Add(-time.Hour), time.Second)
	fx.Put(t, items...)
	_, pos := drain(t, fx.Source, nil, 10, 3)

	updated := Item{ID: 3, UpdatedAt: start.Add(-10 * time.Minute), Payload: "changed"}
	inserted := Item{ID: 11, UpdatedAt: start.Add(-9 * time.Minute), Payload: "new"}
	fx.Put(t, updated, inserted)
	got, _ := drain(t, fx.Source, pos, 10, 3)
	assertItems(t, got, []Item{updated, inserted})
}

// discardedRead: the engine reads the next batch while it commits the last one,
// and drops that read when the run stops first (cancelled as it starts, or after
// it returned); the next run reads the same batch from the same position.
func discardedRead(t *testing.T, h Harness) {
	clock := NewClock(start)
	fx := h.Open(t, settings(clock))
	items := series(1, 25, start.Add(-time.Hour), time.Second)
	fx.Put(t, items...)
	first := readBatch(t, fx.Source, nil, 10)
	assertItems(t, first.items, items[:10])

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var dropped recorder
	fx.Source.ReadBatch(ctx, bytes.Clone(first.next), &dropped) //nolint:errcheck // a cancelled read may fail or not; either way it is dropped
	ahead := readBatch(t, fx.Source, bytes.Clone(first.next), 10)
	assertItems(t, ahead.items, items[10:20])

	got, _ := drain(t, fx.Source, bytes.Clone(first.next), 10, 3)
	assertItems(t, got, items[10:])
}

func sharedCursorValue(t *testing.T, h Harness) {
	clock := NewClock(start)
	s := settings(clock)
	s.BatchSize = 100
	fx := h.Open(t, s)
	at := start.Add(-time.Hour)
	items := make([]Item, 500)
	for i := range items {
		items[i] = Item{ID: int64(i + 1), UpdatedAt: at, Payload: "same second"}
	}
	fx.Put(t, items...)

	got, _ := drain(t, fx.Source, nil, 100, 7)
	assertItems(t, got, items)
}

func lateRowLookback(t *testing.T, h Harness) {
	clock := NewClock(start)
	s := settings(clock)
	s.BatchSize = 3
	s.Lookback = 10 * time.Minute
	fx := h.Open(t, s)
	rw, ok := fx.Source.(pipeline.Rewinder)
	if !ok {
		t.Skipf("%T does not implement pipeline.Rewinder", fx.Source)
	}
	ago := func(n int) time.Time { return start.Add(time.Duration(-n) * time.Minute) }
	fx.Put(t,
		Item{ID: 1, UpdatedAt: ago(60), Payload: "old"},
		Item{ID: 2, UpdatedAt: ago(15), Payload: "before the window"},
		Item{ID: 3, UpdatedAt: ago(9), Payload: "a"},
		Item{ID: 4, UpdatedAt: ago(8), Payload: "b"},
		Item{ID: 5, UpdatedAt: ago(7), Payload: "c"},
		Item{ID: 6, UpdatedAt: ago(6), Payload: "d"},
		Item{ID: 7, UpdatedAt: ago(2), Payload: "high-water mark"},
	)
	_, stored := drain(t, fx.Source, nil, 3, 4)
	windowStart := ago(2).Add(-s.Lookback)

	// A transaction that stamped its row at -5m commits only now, after the reader
	// has passed -2m.
	late := Item{ID: 100, UpdatedAt: ago(5), Payload: "late"}
	fx.Put(t, late)

	got, pos := drain(t, fx.Source, rw.Rewind(stored), 3, 5)
	assertContains(t, got, late)
	assertNotBefore(t, got, windowStart)

	// The run stops inside the window: the stored position's read point is now
	// before the high-water mark, and the next Rewind must still measure the
	// window from the mark, not from the read point.
	b := readBatch(t, fx.Source, rw.Rewind(pos), 3)
	if len(b.items) == 0 || b.done {
		t.Fatalf("re-reading the window: got %d rows, done=%v; want a full batch", len(b.items), b.done)
	}
	late2 := Item{ID: 101, UpdatedAt: ago(8).Add(30 * time.Second), Payload: "later still"}
	fx.Put(t, late2)
	got, pos = drain(t, fx.Source, rw.Rewind(b.next), 3, 5)
	assertContains(t, got, late2)
	assertNotBefore(t, got, windowStart)

	// Without Rewind, the window is not read again.
	got, _ = drain(t, fx.Source, pos, 3, 1)
	assertItems(t, got, nil)
}

func rewindWithoutLookback(t *testing.T, h Harness) {
	clock := NewClock(start)
	fx := h.Open(t, settings(clock))
	rw, ok := fx.Source.(pipeline.Rewinder)
	if !ok {
		t.Skipf("%T does not implement pipeline.Rewinder", fx.Source)
	}
	fx.Put(t, series(1, 5, start.Add(-time.Hour), time.Second)...)
	_, stored := drain(t, fx.Source, nil, 10, 2)
	if got := rw.Rewind(bytes.Clone(stored)); !bytes.Equal(got, stored) {
		t.Fatalf("Rewind with lookback 0 changed the position:\n got  %s\n want %s", got, stored)
	}
}

func lag(t *testing.T, h Harness) {
	clock := NewClock(start)
	s := settings(clock)
	s.Lag = time.Minute
	fx := h.Open(t, s)
	old := Item{ID: 1, UpdatedAt: start.Add(-2 * time.Minute), Payload: "committed long ago"}
	recent := Item{ID: 2, UpdatedAt: start.Add(-30 * time.Second), Payload: "inside the lag"}
	now := Item{ID: 3, UpdatedAt: start, Payload: "just written"}
	fx.Put(t, old, recent, now)

	got, pos := drain(t, fx.Source, nil, 10, 2)
	assertItems(t, got, []Item{old})

	clock.Advance(45 * time.Second) // now - lag = start - 15s
	got, pos = drain(t, fx.Source, pos, 10, 2)
	assertItems(t, got, []Item{recent})

	clock.Advance(time.Minute)
	got, _ = drain(t, fx.Source, pos, 10, 2)
	assertItems(t, got, []Item{now})
}

func emptyRead(t *testing.T, h Harness) {
	clock := NewClock(start)
	fx := h.Open(t, settings(clock))
	b := readBatch(t, fx.Source, nil, 10)
	if len(b.items) != 0 || !b.done || len(b.next) != 0 {
		t.Fatalf("empty table: got %d rows, done=%v, position %q; want none, done, no position", len(b.items), b.done, b.next)
	}

	fx.Put(t, series(1, 3, start.Add(-time.Hour), time.Second)...)
	_, stored := drain(t, fx.Source, nil, 10, 2)
	b = readBatch(t, fx.Source, bytes.Clone(stored), 10)
	if len(b.items) != 0 || !b.done || !bytes.Equal(b.next, stored) {
		t.Fatalf("nothing new: got %d rows, done=%v, position %s; want none, done, position %s", len(b.items), b.done, b.next, stored)
	}
}

// series returns n items with IDs from first, step apart from at.
func series(first int64, n int, at time.Time, step time.Duration) []Item {
	out := make([]Item, n)
	for i := range out {
		out[i] = Item{ID: first + int64(i), UpdatedAt: at.Add(time.Duration(i) * step), Payload: fmt.Sprintf("item %d", first+int64(i))}
	}
	return out
}

func sorted(items []Item) []Item {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b Item) int {
		return cmp.Or(a.UpdatedAt.Compare(b.UpdatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

type batch struct {
	items    []Item
	rows     []pipeline.Row // as emitted, for cases that hand them back
	rejected []rejection
	next     pipeline.Position
	done     bool
}

// rejection is a row a source handed to Reject, known by its payload.
type rejection struct {
	payload string
	row     pipeline.Row
	reason  error
}

// recorder is the Emitter the suite reads into.
type recorder struct {
	items    []Item
	rows     []pipeline.Row
	rejected []rejection
}

func (r *recorder) Emit(row pipeline.Row) error {
	it, err := decodeRow(row)
	if err != nil {
		return err
	}
	r.items = append(r.items, it)
	r.rows = append(r.rows, row)
	return nil
}

func (r *recorder) Reject(row pipeline.Row, reason error) error {
	if reason == nil || reason.Error() == "" {
		return fmt.Errorf("row %v rejected without a reason", row)
	}
	r.rejected = append(r.rejected, rejection{payload: payloadOf(row), row: row, reason: reason})
	return nil
}

// readBatch reads one batch, failing the test on an error or an oversized batch
// (rejected rows count towards it).
func readBatch(t *testing.T, src pipeline.Source, pos pipeline.Position, batchSize int) batch {
	t.Helper()
	var rec recorder
	next, done, err := src.ReadBatch(t.Context(), pos, &rec)
	if err != nil {
		t.Fatalf("ReadBatch: %v", err)
	}
	if n := len(rec.items) + len(rec.rejected); n > batchSize {
		t.Fatalf("ReadBatch handed over %d rows, more than the batch size %d", n, batchSize)
	}
	return batch{items: rec.items, rows: rec.rows, rejected: rec.rejected, next: next, done: done}
}

// drain reads from pos until the source is done, as one engine run does, failing
// when that takes more than maxBatches batches (a source that never finishes) or
// when a row is rejected.
func drain(t *testing.T, src pipeline.Source, pos pipeline.Position, batchSize, maxBatches int) ([]Item, pipeline.Position) {
	t.Helper()
	b := drainAll(t, src, pos, batchSize, maxBatches)
	if len(b.rejected) > 0 {
		t.Fatalf("the source rejected %d rows of a well-formed table, the first because: %v", len(b.rejected), b.rejected[0].reason)
	}
	return b.items, b.next
}

// drainAll is drain that keeps what was rejected and the rows as emitted.
func drainAll(t *testing.T, src pipeline.Source, pos pipeline.Position, batchSize, maxBatches int) batch {
	t.Helper()
	var all batch
	for range maxBatches {
		b := readBatch(t, src, pos, batchSize)
		all.items = append(all.items, b.items...)
		all.rows = append(all.rows, b.rows...)
		all.rejected = append(all.rejected, b.rejected...)
		pos = b.next
		if b.done {
			all.next, all.done = pos, true
			return all
		}
	}
	t.Fatalf("source not done after %d batches (%d rows read, %d rejected)", maxBatches, len(all.items), len(all.rejected))
	return batch{}
}

func decodeRow(r pipeline.Row) (Item, error) {
	var it Item
	switch v := r[KeyField].(type) {
	case int64:
		it.ID = v
	case int32:
		it.ID = int64(v)
	case int:
		it.ID = int64(v)
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return it, fmt.Errorf("row %v: %s %q is not an integer", r, KeyField, v)
		}
		it.ID = n
	default:
		return it, fmt.Errorf("row %v: %s is %T, want an integer", r, KeyField, v)
	}
	at, ok := r[CursorField].(time.Time)
	if !ok {
		return it, fmt.Errorf("row %v: %s is %T, want time.Time", r, CursorField, r[CursorField])
	}
	if at.Location() != time.UTC {
		return it, fmt.Errorf("row %v: %s is in %s, want UTC", r, CursorField, at.Location())
	}
	it.UpdatedAt = at
	switch v := r[ValueField].(type) {
	case string:
		it.Payload = v
	case []byte:
		it.Payload = string(v)
	case nil:
	default:
		return it, fmt.Errorf("row %v: %s is %T, want text", r, ValueField, v)
	}
	return it, nil
}

// payloadOf is a row's payload as text, whatever else is wrong with the row.
func payloadOf(r pipeline.Row) string {
	switch v := r[ValueField].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return fmt.Sprint(r[ValueField])
}

func (it Item) String() string {
	return fmt.Sprintf("{%d %s %q}", it.ID, it.UpdatedAt.UTC().Format(time.RFC3339Nano), it.Payload)
}

func sameItem(a, b Item) bool {
	return a.ID == b.ID && a.UpdatedAt.Equal(b.UpdatedAt) && a.Payload == b.Payload
}

// assertItems wants exactly want, in that order.
func assertItems(t *testing.T, got, want []Item) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d\n got  %v\n want %v", len(got), len(want), head(got), head(want))
	}
	for i := range want {
		if !sameItem(got[i], want[i]) {
			t.Fatalf("row %d is %v, want %v", i, got[i], want[i])
		}
	}
}

func assertContains(t *testing.T, got []Item, want Item) {
	t.Helper()
	for _, it := range got {
		if sameItem(it, want) {
			return
		}
	}
	t.Fatalf("rows %v do not include %v", head(got), want)
}

// assertNotBefore checks that a re-read stayed inside its window.
func assertNotBefore(t *testing.T, got []Item, from time.Time) {
	t.Helper()
	for _, it := range got {
		if it.UpdatedAt.Before(from) {
			t.Fatalf("re-read %v, which is before the lookback window starting %s", it, from.Format(time.RFC3339))
		}
	}
}

// head keeps failure messages readable when a case reads hundreds of rows.
func head(items []Item) []Item {
	if len(items) > 12 {
		return items[:12]
	}
	return items
}
