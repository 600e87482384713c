package store

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The connection options are passed as DSN parameters; check that they took.
func TestSQLiteConnectionSettings(t *testing.T) {
	st, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "new", "folder", "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "10000",
		"synchronous":  "2", // FULL: a delivery recorded is not lost to a power cut
	} {
		var got string
		if err := s.db.GetContext(t.Context(), &got, "PRAGMA "+pragma); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	if n := s.db.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1", n)
	}
}

// SQLite keeps a record's hash (lowercase hex) as its bytes and the row's time as
// an integer; other hashes stay text. Both read back as they were written.
func TestSQLiteSnapshotRowIsCompact(t *testing.T) {
	st, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	ctx := t.Context()
	at := time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.UTC)
	hex := strings.Repeat("9f", 16)
	for _, tc := range []struct{ key, hash, typ string }{{"A", hex, "blob"}, {"B", "h1", "text"}, {"C", strings.ToUpper(hex), "text"}, {"D", "abc", "text"}} {
		if err := s.Commit(ctx, Batch{Source: "src", At: at, Snapshot: []SnapshotEntry{
			{Entity: "d", Key: tc.key, Hash: tc.hash, Version: 1, Fields: map[string]any{"k": tc.key}}}}); err != nil {
			t.Fatal(err)
		}
		var typ, timeTyp string
		if err := s.db.GetContext(ctx, &typ, `SELECT typeof(hash) || ' ' || typeof(updated_at) FROM snapshot WHERE key = ?`, tc.key); err != nil {
			t.Fatal(err)
		}
		if typ, timeTyp, _ = strings.Cut(typ, " "); typ != tc.typ || timeTyp != "integer" {
			t.Errorf("%s: hash stored as %s, updated_at as %s; want %s, integer", tc.key, typ, timeTyp, tc.typ)
		}
		snap, err := s.Snapshot(ctx, "src", "d", []string{tc.key})
		if got := snap[tc.key]; err != nil || got.Hash != tc.hash || !got.UpdatedAt.Equal(at) {
			t.Errorf("%s: read back %+v, %v; want hash %s at %s", tc.key, got, err, tc.hash, at)
		}
	}
}
