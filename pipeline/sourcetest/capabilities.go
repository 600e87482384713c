package sourcetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// poisonRows: rows a source cannot place (a NULL key, a NULL cursor) are handed to
// Reject once per read through the table, every good row around them is emitted
// exactly once and in order, and the source finishes: a poison row neither stops
// it nor makes it read the same batch again.
func poisonRows(t *testing.T, h Harness) {
	clock := NewClock(start)
	s := settings(clock)
	s.BatchSize = 2
	fx := h.Open(t, s)
	if fx.PutRaw == nil {
		t.Skip("the harness has no PutRaw: it cannot write NULLs")
	}
	at := func(n int) time.Time { return start.Add(-time.Hour + time.Duration(n)*time.Second) }
	good := series(1, 6, at(0), time.Second)
	fx.Put(t, good...)
	fx.PutRaw(t,
		Raw{UpdatedAt: ptr(at(3)), Payload: "no key, same cursor as item 4"},
		Raw{ID: ptr(int64(50)), Payload: "no cursor"},
		Raw{UpdatedAt: ptr(at(5)), Payload: "no key, last"},
	)

	b := drainAll(t, fx.Source, nil, s.BatchSize, 12)
	assertItems(t, b.items, good)
	assertRejected(t, b.rejected, map[string]int{"no key, same cursor as item 4": 1, "no cursor": 1, "no key, last": 1})

	// Reading on from the stored position: new rows, good and poison, are handed
	// over; the poison rows already rejected may come again (once per read), but
	// nothing is emitted twice.
	later := series(7, 2, at(10), time.Second)
	fx.Put(t, later...)
	fx.PutRaw(t, Raw{ID: ptr(int64(51)), Payload: "no cursor, later"})
	b = drainAll(t, fx.Source, b.next, s.BatchSize, 8)
	assertItems(t, b.items, later)
	assertRejected(t, b.rejected, map[string]int{"no cursor, later": 1, "no key, same cursor as item 4": -1, "no cursor": -1, "no key, last": -1})
}

// refetch: Refetch emits what the source holds now for rows read earlier, whether
// they come back as emitted or as text (how the engine keeps quarantined rows),
// and leaves out rows without a key and keys that were never written.
func refetch(t *testing.T, h Harness) {
	clock := NewClock(start)
	fx := h.Open(t, settings(clock))
	rf, ok := fx.Source.(pipeline.Refetcher)
	if !ok {
		t.Skipf("%T does not implement pipeline.Refetcher", fx.Source)
	}
	items := series(1, 5, start.Add(-time.Hour), time.Second)
	fx.Put(t, items...)
	b := drainAll(t, fx.Source, nil, 10, 2)
	if len(b.rows) != len(items) {
		t.Fatalf("read %d rows, want %d", len(b.rows), len(items))
	}
	changed := Item{ID: 2, UpdatedAt: start.Add(-time.Minute), Payload: "changed since"}
	fx.Put(t, changed)

	asked := []pipeline.Row{
		b.rows[0], // as emitted
		// As quarantined; the same row twice is read once.
		TextRow(b.rows[1]), TextRow(b.rows[2]), TextRow(b.rows[2]),
		{ValueField: "no key"},
		TextRow(pipeline.Row{KeyField: int64(999), CursorField: start.Add(-time.Hour), ValueField: "never written"}),
	}
	var rec recorder
	if err := rf.Refetch(t.Context(), asked, &rec); err != nil {
		t.Fatalf("Refetch: %v", err)
	}
	assertItems(t, sorted(rec.items), sorted([]Item{items[0], changed, items[2]}))
	if len(rec.rejected) > 0 {
		t.Fatalf("Refetch rejected %v", rec.rejected[0].reason)
	}

	if fx.PutRaw == nil {
		return
	}
	// A row that has become poison is rejected, as ReadBatch would.
	fx.PutRaw(t, Raw{ID: ptr(int64(60)), Payload: "no cursor"})
	rec = recorder{}
	if err := rf.Refetch(t.Context(), []pipeline.Row{{KeyField: "60", CursorField: "", ValueField: "as it was"}}, &rec); err != nil {
		t.Fatalf("Refetch: %v", err)
	}
	if len(rec.items) != 0 {
		t.Fatalf("Refetch emitted %v, a row without a cursor", rec.items)
	}
	assertRejected(t, rec.rejected, map[string]int{"no cursor": 1})
}

// horizon: a row whose cursor is at or before a mark was written before it; one
// written later is not, and a row without a readable cursor never is.
func horizon(t *testing.T, h Harness) {
	clock := NewClock(start)
	fx := h.Open(t, settings(clock))
	hz, ok := fx.Source.(pipeline.Horizon)
	if !ok {
		t.Skipf("%T does not implement pipeline.Horizon", fx.Source)
	}
	old := Item{ID: 1, UpdatedAt: start.Add(-time.Hour), Payload: "long before"}
	edge := Item{ID: 2, UpdatedAt: start, Payload: "at the mark"}
	fx.Put(t, old, edge)
	mark, err := hz.Mark(t.Context())
	if err != nil {
		t.Fatalf("Mark: %v", err)
	}
	clock.Advance(time.Minute)
	after := Item{ID: 3, UpdatedAt: start.Add(30 * time.Second), Payload: "after the mark"}
	fx.Put(t, after)

	b := drainAll(t, fx.Source, nil, 10, 2)
	want := map[int64]bool{1: true, 2: true, 3: false}
	if len(b.rows) != len(want) {
		t.Fatalf("read %v, want items 1 to 3", b.items)
	}
	for i, r := range b.rows {
		if got := hz.Before(mark, r); got != want[b.items[i].ID] {
			t.Errorf("Before(mark, %v) = %v, want %v", b.items[i], got, want[b.items[i].ID])
		}
	}
	if hz.Before(mark, pipeline.Row{KeyField: int64(4), CursorField: nil, ValueField: "no cursor"}) {
		t.Error("Before is true for a row without a cursor value")
	}
}

// columns: Columns names every field of an emitted row, spelled as in the row.
func columns(t *testing.T, h Harness) {
	clock := NewClock(start)
	fx := h.Open(t, settings(clock))
	d, ok := fx.Source.(pipeline.Describer)
	if !ok {
		t.Skipf("%T does not implement pipeline.Describer", fx.Source)
	}
	fx.Put(t, series(1, 1, start.Add(-time.Hour), time.Second)...)
	b := drainAll(t, fx.Source, nil, 10, 2)
	cols, err := d.Columns(t.Context())
	if err != nil {
		t.Fatalf("Columns: %v", err)
	}
	for _, name := range []string{KeyField, CursorField, ValueField} {
		if !slices.Contains(cols, name) {
			t.Errorf("Columns() = %v, missing %q", cols, name)
		}
	}
	for name := range b.rows[0] {
		if !slices.Contains(cols, name) {
			t.Errorf("emitted rows carry %q, which Columns() = %v does not name", name, cols)
		}
	}
}

// TextRow turns a row into text the way the engine keeps a quarantined row: NULL
// as "", bytes as their text, times as RFC 3339 in UTC, anything else printed.
func TextRow(r pipeline.Row) pipeline.Row {
	out := make(pipeline.Row, len(r))
	for k, v := range r.Text() {
		out[k] = v
	}
	return out
}

// assertRejected checks how often each payload was rejected: want[p] times, or any
// number of times at most once when want[p] is -1; nothing else may be rejected.
func assertRejected(t *testing.T, got []rejection, want map[string]int) {
	t.Helper()
	count := map[string]int{}
	for _, r := range got {
		count[r.payload]++
	}
	var bad []string
	for p, n := range count {
		w, ok := want[p]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%q rejected %d times, want none (%v)", p, n, reasonOf(got, p)))
		case w == -1 && n > 1:
			bad = append(bad, fmt.Sprintf("%q rejected %d times in one read, want at most once", p, n))
		case w >= 0 && n != w:
			bad = append(bad, fmt.Sprintf("%q rejected %d times, want %d", p, n, w))
		}
	}
	for p, w := range want {
		if w > 0 && count[p] == 0 {
			bad = append(bad, fmt.Sprintf("%q was not rejected", p))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Fatalf("rejected rows:\n  %s", strings.Join(bad, "\n  "))
	}
}

func reasonOf(got []rejection, payload string) error {
	for _, r := range got {
		if r.payload == payload {
			return r.reason
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
