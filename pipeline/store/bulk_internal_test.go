package store

import (
	"context"
	"fmt"
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

// pgSnapshotIndexes lists the snapshot's indexes as PostgreSQL describes them,
// by name, and marks the primary key constraint.
func pgSnapshotIndexes(t *testing.T, s *sqlStore) map[string]string {
	t.Helper()
	var rows []struct {
		Name string `db:"indexname"`
		Def  string `db:"indexdef"`
	}
	if err := s.db.SelectContext(t.Context(), &rows, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'snapshot'`); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Name] = r.Def
	}
	var pk []string
	if err := s.db.SelectContext(t.Context(), &pk, `SELECT conname FROM pg_constraint WHERE conrelid = 'snapshot'::regclass AND contype = 'p'`); err != nil {
		t.Fatal(err)
	}
	for _, name := range pk {
		out["primary key"] = name
	}
	return out
}

// bulkBackend is a store kind for the bulk load's tests: where a fresh store
// lives (a file or a schema), how to open a handle on it and how to list its
// snapshot's indexes.
type bulkBackend struct {
	name    string
	fresh   func(t *testing.T) string
	open    func(t *testing.T, at string) *sqlStore
	indexes func(t *testing.T, s *sqlStore) map[string]string
}

func bulkBackends() []bulkBackend {
	return []bulkBackend{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "x.db") }, openSQLiteAt, snapshotIndexes},
		{"postgres", pgSchema, openPGAt, pgSnapshotIndexes},
	}
}

// What SQLite built from a bulk load's statements is what its migrations wrote.
func TestBulkIndexesAreTheMigratedOnes(t *testing.T) {
	s := openSQLiteAt(t, filepath.Join(t.TempDir(), "x.db"))
	want := snapshotIndexes(t, s)
	for _, ix := range bulkIndexes {
		if want[ix.name] == "" {
			t.Fatalf("the migrated schema has no index %s", ix.name)
		}
		if got := strings.Join(strings.Fields(strings.Replace(ix.create[0], "IF NOT EXISTS ", "", 1)), " "); got != want[ix.name] {
			t.Errorf("bulk load builds %s as\n  %s\nthe migrations made it\n  %s", ix.name, got, want[ix.name])
		}
	}
}

// A bulk load leaves out exactly the indexes it names and puts them back as the
// migrations made them, on either backend.
func TestBulkLoadRestoresTheMigratedIndexes(t *testing.T) {
	for _, be := range bulkBackends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t, be.fresh(t))
			ctx := t.Context()
			want := be.indexes(t, s)
			if began, err := s.BeginBulkLoad(ctx, "src"); err != nil || !began {
				t.Fatalf("BeginBulkLoad on an empty snapshot = %v, %v", began, err)
			}
			during := be.indexes(t, s)
			for _, ix := range s.leftOut() {
				if want[ix.name] == "" {
					t.Errorf("the migrated schema has no index %s", ix.name)
				}
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
			if be.name == "sqlite" {
				var threads int
				if err := s.db.GetContext(ctx, &threads, `PRAGMA threads`); err != nil || threads != 0 {
					t.Errorf("PRAGMA threads after the build = %d, %v; want 0 again", threads, err)
				}
			} else {
				// The look-ups after the load are planned from fresh statistics.
				var analyzed bool
				if err := s.db.GetContext(ctx, &analyzed, `SELECT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'snapshot' AND attname = 'key')`); err != nil || !analyzed {
					t.Errorf("snapshot analyzed after the load = %v, %v; want its key column's statistics", analyzed, err)
				}
			}
			if got := be.indexes(t, s); len(got) != len(want) {
				t.Errorf("indexes after the load %v, want %v", got, want)
			} else {
				for name, def := range want {
					if got[name] != def {
						t.Errorf("index %s after the load: %q, want %q", name, got[name], def)
					}
				}
			}
		})
	}
}

// A bulk load left on by a process that stopped is ended by whoever needs the
// indexes next: a store opened afterwards on its first look-up, and a store
// already open on the same file on its first commit of a known record.
func TestBulkLoadLeftOnIsEndedByWhoeverNeedsTheIndexes(t *testing.T) {
	for _, be := range bulkBackends() {
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
			t.Run(be.name+"/"+tc.name, func(t *testing.T) {
				at := be.fresh(t)
				ctx := t.Context()
				other := be.open(t, at) // open before the load began: knows nothing of it
				loader := be.open(t, at)
				if began, err := loader.BeginBulkLoad(ctx, "src"); err != nil || !began {
					t.Fatalf("BeginBulkLoad = %v, %v", began, err)
				}
				if err := loader.Commit(ctx, Batch{Source: "src", At: time.Now(), Snapshot: newEntries("A", "B")}); err != nil {
					t.Fatal(err)
				}
				loader.Close() // stops without ending the load
				s := other
				if tc.name == "look-up" {
					s = be.open(t, at) // opened after: finds the load on
				}
				if err := tc.need(ctx, s); err != nil {
					t.Fatal(err)
				}
				got := be.indexes(t, s)
				for _, ix := range s.leftOut() {
					if got[ix.name] == "" {
						t.Errorf("index %s missing after the %s: %v", ix.name, tc.name, got)
					}
				}
				var on int
				if err := s.db.GetContext(ctx, &on, `SELECT COUNT(*) FROM snapshot_bulk`); err != nil || on != 0 {
					t.Errorf("bulk load rows after the %s: %d, %v; want none", tc.name, on, err)
				}
			})
		}
	}
}

// Two handles that begin a bulk load on one empty snapshot at once: one begins
// it, the other finds it on.
func TestBulkLoadBeginsOnce(t *testing.T) {
	for _, be := range bulkBackends() {
		t.Run(be.name, func(t *testing.T) {
			at := be.fresh(t)
			a, b := be.open(t, at), be.open(t, at)
			ctx := t.Context()
			began := make(chan bool, 2)
			errs := make(chan error, 2)
			for i, s := range []*sqlStore{a, b} {
				go func() {
					ok, err := s.BeginBulkLoad(ctx, fmt.Sprintf("src%d", i))
					began <- ok
					errs <- err
				}()
			}
			n := 0
			for range 2 {
				if <-began {
					n++
				}
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if n != 1 {
				t.Errorf("%d handles began a bulk load on one empty snapshot, want 1", n)
			}
		})
	}
}
