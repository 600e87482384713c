package sqlsource

import (
	"path/filepath"
	"strings"
)

// sqliteDSN resolves a relative database path against the config's folder and sets
// a busy timeout, so a read during the agency application's write waits instead of
// failing with SQLITE_BUSY. It also returns the file that must exist.
func sqliteDSN(dsn string, resolve func(string) string) (string, string) {
	if resolve == nil {
		resolve = func(p string) string { return p }
	}
	rest := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn, rest = dsn[:i], dsn[i:]
	}
	file := ""
	switch {
	case dsn == ":memory:" || strings.HasPrefix(dsn, "file::memory:"):
	case strings.HasPrefix(dsn, "file:"):
		// file:///abs and file:rel; SQLite checks existence itself with mode=ro|rw.
		if p := strings.TrimPrefix(dsn, "file:"); !strings.HasPrefix(p, "/") {
			dsn = "file:" + resolve(p)
		}
	default:
		if !filepath.IsAbs(dsn) {
			dsn = resolve(dsn)
		}
		file = dsn
	}
	if !strings.Contains(rest, "busy_timeout") && !strings.Contains(rest, "_timeout=") {
		if rest == "" {
			rest = "?"
		} else {
			rest += "&"
		}
		rest += "_busy_timeout=5000"
	}
	return dsn + rest, file
}
