package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
)

// dialect is what differs between the two backends. Everything else is one SQL text
// written with '?' placeholders and rebound per dialect.
type dialect int

const (
	sqliteDialect dialect = iota
	postgresDialect
)

// sqliteTime is the fixed-width layout SQLite stores times in: always UTC, always
// nine fractional digits, so text order is time order.
const sqliteTime = "2006-01-02T15:04:05.000000000Z"

func (d dialect) String() string {
	if d == postgresDialect {
		return DriverPostgres
	}
	return DriverSQLite
}

// bindType is explicit rather than looked up by driver name: sqlx does not know the
// name "sqlite" that modernc.org/sqlite registers.
func (d dialect) bindType() int {
	if d == postgresDialect {
		return sqlx.DOLLAR
	}
	return sqlx.QUESTION
}

// timeArg turns a time into a bind value: timestamptz takes a time.Time, SQLite's
// TEXT columns take the fixed-width UTC text.
func (d dialect) timeArg(t time.Time) any {
	if d == postgresDialect {
		return t.UTC()
	}
	return t.UTC().Format(sqliteTime)
}

// jsonArg turns encoded JSON into a bind value. It is bound as a string because
// lib/pq would send []byte as bytea. PostgreSQL's jsonb cannot hold the NUL
// character, which agency data does contain now and then, so on PostgreSQL it is
// replaced by U+FFFD rather than failing the whole batch.
func (d dialect) jsonArg(b []byte) any {
	if d == postgresDialect {
		return string(pgtext.JSON(b))
	}
	return string(b)
}

// lockEvents makes seq order commit order. PostgreSQL hands out bigserial values
// when rows are inserted, not when they commit, so without it a transaction holding
// seq 9 could commit after one holding seq 10 was read and delivered; if both are
// events of one record, the record's order (Pending's hold-back by seq) would break,
// and pgtable feed readers paging by seq would skip 9. The lock is taken just before the
// events are inserted and held to the end of the transaction, so transactions that
// insert events commit one at a time, in the order of their seqs. SQLite has one
// writer and needs nothing.
func (d dialect) lockEvents(ctx context.Context, tx *sqlx.Tx) error {
	if d != postgresDialect {
		return nil
	}
	_, err := tx.ExecContext(ctx,
		`SELECT pg_advisory_xact_lock(hashtext('egov-bridge/events/' || coalesce(current_schema(), '')))`)
	if err != nil {
		return fmt.Errorf("take events lock: %w", err)
	}
	return nil
}

// dbTime scans a time column from either backend: lib/pq returns time.Time,
// SQLite returns the text timeArg wrote, or the unix nanoseconds rowTimeArg
// wrote.
type dbTime struct{ time.Time }

func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
	case time.Time:
		t.Time = v.UTC()
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	case int64:
		t.Time = time.Unix(0, v).UTC()
	default:
		return fmt.Errorf("cannot scan %T into a time", src)
	}
	return nil
}

func (t *dbTime) parse(s string) error {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("cannot parse stored time %q: %w", s, err)
	}
	t.Time = v.UTC()
	return nil
}

var _ sql.Scanner = (*dbTime)(nil)

// rowTimeArg is timeArg for the snapshot's updated_at, which SQL never compares:
// SQLite keeps it as unix nanoseconds, 8 bytes instead of 30 on every row (rows
// written before keep their text; dbTime reads both).
func (d dialect) rowTimeArg(t time.Time) any {
	if d == postgresDialect {
		return t.UTC()
	}
	return t.UnixNano()
}

// setAfter is the statement that writes a lazy event's fields into its payload
// (argument 1, JSON) and drops the lazy mark; argument 2 is the event's seq.
func (d dialect) setAfter() string {
	if d == postgresDialect {
		return `UPDATE events SET payload = (payload - '` + lazyMark + `') || jsonb_build_object('after', ?::jsonb) WHERE seq = ?`
	}
	return `UPDATE events SET payload = json_set(json_remove(payload, '$.` + lazyMark + `'), '$.after', json(?)) WHERE seq = ?`
}

// dbHash reads a snapshot row's hash. SQLite keeps a record's hash, lowercase
// hex (pipeline.Record.Hash), as its bytes (hashArg): half the width. Rows written
// before, and hashes of other forms, stay text, as PostgreSQL keeps them all.
type dbHash string

func (h *dbHash) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*h = ""
	case string:
		*h = dbHash(v)
	case []byte: // only hashArg writes a blob
		*h = dbHash(hex.EncodeToString(v))
	default:
		return fmt.Errorf("cannot scan %T into a hash", src)
	}
	return nil
}

// hashArg is a hash as the SQLite snapshot stores it: lowercase hex of even
// length as its bytes (dbHash reads it back the same), anything else as it is.
func hashArg(h string) any {
	if !isHexHash(h) {
		return h
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return h
	}
	return b
}

// isHexHash reports whether hashArg turns h into a blob.
func isHexHash(h string) bool {
	if h == "" || len(h)%2 != 0 || len(h) > 128 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
