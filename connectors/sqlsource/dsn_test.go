package sqlsource

import "testing"

func TestSQLiteDSN(t *testing.T) {
	resolve := func(p string) string { return "/etc/egov-bridge/" + p }
	tests := []struct {
		in, dsn, file string
	}{
		{"data/agency.db", "/etc/egov-bridge/data/agency.db?_busy_timeout=5000", "/etc/egov-bridge/data/agency.db"},
		{"/var/lib/agency.db", "/var/lib/agency.db?_busy_timeout=5000", "/var/lib/agency.db"},
		{"agency.db?_pragma=busy_timeout(100)", "/etc/egov-bridge/agency.db?_pragma=busy_timeout(100)", "/etc/egov-bridge/agency.db"},
		{"agency.db?_txlock=immediate", "/etc/egov-bridge/agency.db?_txlock=immediate&_busy_timeout=5000", "/etc/egov-bridge/agency.db"},
		{"file:agency.db?mode=ro", "file:/etc/egov-bridge/agency.db?mode=ro&_busy_timeout=5000", ""},
		{"file:///srv/agency.db", "file:///srv/agency.db?_busy_timeout=5000", ""},
		{":memory:", ":memory:?_busy_timeout=5000", ""},
	}
	for _, tt := range tests {
		dsn, file := sqliteDSN(tt.in, resolve)
		if dsn != tt.dsn || file != tt.file {
			t.Errorf("sqliteDSN(%q) = %q, %q; want %q, %q", tt.in, dsn, file, tt.dsn, tt.file)
		}
	}
}
