package sourcetest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// The cases for a pipeline.FullSet source (a feed, a dropped file), which Run runs
// instead of the cursor cases: such a source has no cursor, lag or lookback, and
// the engine reads it from the start on every poll. What it must guarantee is that
// every read from a nil position yields exactly the whole current set, in batches
// of at most the batch size, and that a read that cannot be completed is an error,
// never a short or empty set (which the engine would count as disappearances).
//
// The harness's Fixture must have Delete; Break, when given, lets the suite check
// that a failing backend is an error.
var fullSetCases = []struct {
	name string
	run  func(t *testing.T, h Harness)
}{
	{"EveryReadFromTheStartYieldsTheWholeSet", fullSetWhole},
	{"ChangesAndRemovalsShowInTheNextRead", fullSetChanges},
	{"EmptySetIsDoneWithNoRows", fullSetEmpty},
	{"FailedReadIsAnErrorNotAShortSet", fullSetBroken},
}

func runFullSet(t *testing.T, h Harness) {
	for _, c := range fullSetCases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
}

// isFullSet opens one fixture to learn what kind of source the harness builds.
func isFullSet(t *testing.T, h Harness) bool {
	var full bool
	t.Run("Kind", func(t *testing.T) {
		fx := h.Open(t, settings(NewClock(start)))
		_, full = fx.Source.(pipeline.FullSet)
		if full && fx.Delete == nil {
			t.Fatalf("%T is a pipeline.FullSet source but its harness has no Fixture.Delete", fx.Source)
		}
	})
	return full
}

func fullSetWhole(t *testing.T, h Harness) {
	fx := h.Open(t, settings(NewClock(start)))
	items := make([]Item, 35)
	for i := range items {
		items[i] = Item{ID: int64(1000 - i), UpdatedAt: start.Add(-time.Hour + time.Duration(i/3)*time.Second), Payload: "p" + strconv.Itoa(i)}
	}
	shuffled := slices.Clone(items)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	fx.Put(t, shuffled[:20]...)
	fx.Put(t, shuffled[20:]...)

	for read := 1; read <= 2; read++ {
		got := readFullSet(t, fx, 10)
		assertSet(t, fmt.Sprintf("read %d from the start", read), got, items)
	}
}

func fullSetChanges(t *testing.T, h Harness) {
	fx := h.Open(t, settings(NewClock(start)))
	items := series(1, 10, start.Add(-time.Hour), time.Second)
	fx.Put(t, items...)
	assertSet(t, "first read", readFullSet(t, fx, 10), items)

	updated := Item{ID: 3, UpdatedAt: start.Add(-10 * time.Minute), Payload: "changed"}
	inserted := Item{ID: 11, UpdatedAt: start.Add(-9 * time.Minute), Payload: "new"}
	fx.Put(t, updated, inserted)
	fx.Delete(t, 5, 7)
	var want []Item
	for _, it := range items {
		switch it.ID {
		case 3:
			want = append(want, updated)
		case 5, 7:
		default:
			want = append(want, it)
		}
	}
	want = append(want, inserted)
	assertSet(t, "read after changes", readFullSet(t, fx, 10), want)
}

func fullSetEmpty(t *testing.T, h Harness) {
	fx := h.Open(t, settings(NewClock(start)))
	assertSet(t, "empty backend", readFullSet(t, fx, 10), nil)

	fx.Put(t, series(1, 3, start.Add(-time.Hour), time.Second)...)
	fx.Delete(t, 1, 2, 3)
	assertSet(t, "every item removed", readFullSet(t, fx, 10), nil)
}

func fullSetBroken(t *testing.T, h Harness) {
	fx := h.Open(t, settings(NewClock(start)))
	if fx.Break == nil {
		t.Skip("the harness has no Break: it cannot make its backend fail")
	}
	items := series(1, 5, start.Add(-time.Hour), time.Second)
	fx.Put(t, items...)
	restore := fx.Break(t)

	var pos pipeline.Position
	var read int
	for range 50 {
		var rec recorder
		next, done, err := fx.Source.ReadBatch(t.Context(), pos, &rec)
		if err != nil {
			break
		}
		read += len(rec.items)
		if done {
			t.Fatalf("a read of a failing backend finished without an error after %d rows: the engine would count the rest as gone", read)
		}
		pos = next
	}
	restore()
	assertSet(t, "read after the backend recovered", readFullSet(t, fx, 10), items)
}

// readFullSet reads the whole set from a nil position, as one poll does.
func readFullSet(t *testing.T, fx Fixture, batchSize int) []Item {
	t.Helper()
	decode := fx.Decode
	if decode == nil {
		decode = decodeTextRow
	}
	var pos pipeline.Position
	var out []Item
	for range 200 {
		var rows rowRecorder
		next, done, err := fx.Source.ReadBatch(t.Context(), pos, &rows)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		if len(rows.rejected) > 0 {
			t.Fatalf("the source rejected a row of a well-formed set because: %v", rows.rejected[0])
		}
		if len(rows.rows) > batchSize {
			t.Fatalf("ReadBatch handed over %d rows, more than the batch size %d", len(rows.rows), batchSize)
		}
		for _, r := range rows.rows {
			it, err := decode(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, it)
		}
		if done {
			return out
		}
		pos = next
	}
	t.Fatalf("source not done after 200 batches (%d rows read)", len(out))
	return nil
}

type rowRecorder struct {
	rows     []pipeline.Row
	rejected []error
}

func (r *rowRecorder) Emit(row pipeline.Row) error { r.rows = append(r.rows, row); return nil }
func (r *rowRecorder) Reject(_ pipeline.Row, reason error) error {
	r.rejected = append(r.rejected, reason)
	return nil
}

// decodeTextRow is decodeRow that also takes the cursor as RFC 3339 text, the
// way text formats (CSV, JSON) carry it.
func decodeTextRow(r pipeline.Row) (Item, error) {
	if s, ok := r[CursorField].(string); ok {
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Item{}, fmt.Errorf("row %v: %s %q is not RFC 3339", r, CursorField, s)
		}
		c := make(pipeline.Row, len(r))
		for k, v := range r {
			c[k] = v
		}
		c[CursorField] = at.UTC()
		r = c
	}
	return decodeRow(r)
}

// assertSet wants exactly want, in any order, each item once.
func assertSet(t *testing.T, what string, got, want []Item) {
	t.Helper()
	byID := func(a, b Item) int { return cmp.Compare(a.ID, b.ID) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	if len(got) != len(want) {
		t.Fatalf("%s: got %d rows, want %d\n got  %v\n want %v", what, len(got), len(want), head(got), head(want))
	}
	for i := range want {
		if !sameItem(got[i], want[i]) {
			t.Fatalf("%s: row %v, want %v", what, got[i], want[i])
		}
	}
}
