package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func testCursorUnknown(t *testing.T, s store.Store) {
	c := cursor(t, s, "never")
	if c.Position != nil || c.InitialDone || !c.UpdatedAt.IsZero() {
		t.Errorf("Cursor of unknown source = %+v, want no position, not initial done, zero time", c)
	}
}

func testCursorRoundTrip(t *testing.T, s store.Store) {
	zone := time.FixedZone("ICT", 7*3600)
	// A binary position, as a connector may encode it.
	pos := []byte{0, 1, 2, 0xff, 'a', 0}
	commit(t, s, store.Batch{Source: "src", Position: pos, At: t0.In(zone)})
	c := cursor(t, s, "src")
	if c.Source != "src" || !bytes.Equal(c.Position, pos) || c.InitialDone {
		t.Fatalf("after first commit: %+v", c)
	}
	if !c.UpdatedAt.Equal(t0) || c.UpdatedAt.Location() != time.UTC {
		t.Errorf("UpdatedAt = %v, want %v in UTC", c.UpdatedAt, t0)
	}

	// InitialDone sticks once set; a nil position leaves the stored one alone.
	commit(t, s, store.Batch{Source: "src", Position: []byte("p2"), InitialDone: true, At: t0.Add(time.Second)})
	commit(t, s, store.Batch{Source: "src", Position: nil, At: t0.Add(2 * time.Second)})
	c = cursor(t, s, "src")
	if string(c.Position) != "p2" || !c.InitialDone || !c.UpdatedAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("after later commits: position %q initial %v updated %v; want p2, true, %v",
			c.Position, c.InitialDone, c.UpdatedAt, t0.Add(2*time.Second))
	}
	if other := cursor(t, s, "other"); other.Position != nil {
		t.Errorf("cursor leaked to another source: %+v", other)
	}
}

func testResetCursor(t *testing.T, s store.Store) {
	ctx := t.Context()
	commit(t, s, store.Batch{
		Source: "src", Position: []byte("p1"), InitialDone: true, At: t0,
		Snapshot: []store.SnapshotEntry{{Entity: "dossier", Key: "HS1", Hash: "h1", Version: 1, Fields: map[string]any{"a": "b"}}},
	})
	if err := s.ResetCursor(ctx, "src"); err != nil {
		t.Fatalf("ResetCursor: %v", err)
	}
	c := cursor(t, s, "src")
	if c.Position != nil || !c.InitialDone {
		t.Errorf("after reset: position %q initial done %v; want nil, true", c.Position, c.InitialDone)
	}
	snap, err := s.Snapshot(ctx, "src", "dossier", []string{"HS1"})
	if err != nil {
		t.Fatal(err)
	}
	if snap["HS1"].Hash != "h1" {
		t.Errorf("snapshot lost by reset: %+v", snap)
	}
}

func testResetUnknown(t *testing.T, s store.Store) {
	wantNotFound(t, "ResetCursor(unknown)", s.ResetCursor(t.Context(), "unknown"))
}
