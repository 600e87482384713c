package store

import (
	"path/filepath"
	"testing"
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
