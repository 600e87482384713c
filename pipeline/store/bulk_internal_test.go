package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// snapshotIndexes lists the snapshot's indexes as SQLite keeps them, by name, with
// IF NOT EXISTS taken out of their statements.
func snapshotIndexes(t *testing.T, s *sqlStore) map[string]string {
	t.Helper()
	var rows []struct {
		Name string `db:"name"`
		SQL  string `db:"sql"`
	}
	if err := s.db.SelectContext(t.Context(), &rows, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'snapshot' AND sql IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Name] = strings.Join(strings.Fields(strings.Replace(r.SQL, "IF NOT EXISTS ", "", 1)), " ")
	}
	return out
}

func openSQLiteAt(t *testing.T, path string) *sqlStore {
	t.Helper()
	st, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(*sqlStore)
}

func newEntries(keys ...string) []SnapshotEntry {
	var out []SnapshotEntry
	for _, k := range keys {
		out = append(out, SnapshotEntry{Entity: "d", Key: k, Hash: "h-" + k, Version: 1, Fields: map[string]any{"k": k}, New: true})
	}
	return out
}

// A bulk load leaves out exactly the indexes it names and puts them back as the
// migrations made them.
func TestBulkLoadRestoresTheMigratedIndexes(t *testing.T) {
	s := openSQLiteAt(t, filepath.Join(t.TempDir(), "x.db"))
	ctx := t.Context()
	want := snapshotIndexes(t, s)
	for _, ix := range bulkIndexes {
		if want[ix.name] == "" {
			t.Fatalf("the migrated schema has no index %s", ix.name)
		}
		if got := strings.Join(strings.Fields(strings.Replace(ix.create, "IF NOT EXISTS ", "", 1)), " "); got != want[ix.name] {
			t.Errorf("bulk load builds %s as\n  %s\nthe migrations made it\n  %s", ix.name, got, want[ix.name])
		}
	}
	if began, err := s.BeginBulkLoad(ctx, "src"); err != nil || !began {
		t.Fatalf("BeginBulkLoad on an empty snapshot = %v, %v", began, err)
	}
	during := snapshotIndexes(t, s)
	for _, ix := range bulkIndexes {
		if during[ix.name] != "" {
			t.Errorf("index %s kept during the bulk load", ix.name)
		}
	}
	if during["snapshot_lazy"] == "" {
		t.Error("snapshot_lazy dropped: the feed reads the first sync's events by it while the load runs")
	}
	if err := s.Commit(ctx, Batch{Source: "src", At: time.Now(), Snapshot: newEntries("A", "B")}); err != nil {
		t.Fatal(err)
	}
	if built, err := s.EndBulkLoad(ctx); err != nil || !built {
		t.Fatalf("EndBulkLoad = %v, %v; want the indexes built", built, err)
	}
	var threads int
	if err := s.db.GetContext(ctx, &threads, `PRAGMA threads`); err != nil || threads != 0 {
		t.Errorf("PRAGMA threads after the build = %d, %v; want 0 again", threads, err)
	}
	if got := snapshotIndexes(t, s); len(got) != len(want) {
		t.Errorf("indexes after the load %v, want %v", got, want)
	} else {
		for name, sql := range want {
			if got[name] != sql {
				t.Errorf("index %s after the load: %q, want %q", name, got[name], sql)
			}
		}
	}
}

// A bulk load left on by a process that stopped is ended by whoever needs the
// indexes next: a store opened afterwards on its first look-up, and a store
// already open on the same file on its first commit of a known record.
func TestBulkLoadLeftOnIsEndedByWhoeverNeedsTheIndexes(t *testing.T) {
	for _, tc := range []struct {
		name string
		need func(ctx context.Context, s *sqlStore) error
	}{
		{"look-up", func(ctx context.Context, s *sqlStore) error {
			got, err := s.Snapshot(ctx, "src", "d", []string{"A"})
			if err == nil && got["A"].Hash != "h-A" {
				t.Errorf("look-up of A = %+v", got)
			}
			return err
		}},
		{"commit of a known record", func(ctx context.Context, s *sqlStore) error {
			return s.Commit(ctx, Batch{Source: "src", At: time.Now(), Snapshot: []SnapshotEntry{
				{Entity: "d", Key: "A", Hash: "h2", Version: 2, Fields: map[string]any{"k": "A2"}}}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			ctx := t.Context()
			other := openSQLiteAt(t, path) // open before the load began: knows nothing of it
			loader, err := Open(ctx, Config{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			if began, err := loader.BeginBulkLoad(ctx, "src"); err != nil || !began {
				t.Fatalf("BeginBulkLoad = %v, %v", began, err)
			}
			if err := loader.Commit(ctx, Batch{Source: "src", At: time.Now(), Snapshot: newEntries("A", "B")}); err != nil {
				t.Fatal(err)
			}
			loader.Close() // stops without ending the load
			s := other
			if tc.name == "look-up" {
				s = openSQLiteAt(t, path) // opened after: finds the load on
			}
			if err := tc.need(ctx, s); err != nil {
				t.Fatal(err)
			}
			if got := snapshotIndexes(t, s); got["snapshot_key"] == "" || got["snapshot_fact_due"] == "" {
				t.Errorf("indexes after the %s: %v; want the left-out ones built", tc.name, got)
			}
			var on int
			if err := s.db.GetContext(ctx, &on, `SELECT COUNT(*) FROM snapshot_bulk`); err != nil || on != 0 {
				t.Errorf("bulk load rows after the %s: %d, %v; want none", tc.name, on, err)
			}
		})
	}
}
