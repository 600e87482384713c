// Package sqlsource is the `type: sql` source: it reads a table or a custom SELECT
// of an agency's PostgreSQL, SQL Server, SQLite or MySQL/MariaDB database
// incrementally, in bounded
// batches, with nothing installed on the agency's side and only SELECT rights.
//
// # Cursor model
//
// Rows are read in (cursor, key) order, where cursor is the row's last-modified
// column and key its primary key. The position after a batch is the last row read;
// the next batch is the keyset
//
//	WHERE cursor >= :c AND (cursor > :c OR key > :k) AND cursor <= :upper
//	ORDER BY cursor, key LIMIT :batch_size
//
// (the first two conditions are "cursor > :c OR (cursor = :c AND key > :k)" in a form
// every database can seek an index with). The key makes the order total, so any
// number of rows may share one cursor value and each is read exactly once. A batch
// shorter than batch_size means there is nothing more for now. Rows are streamed to
// the engine as they arrive and nothing is kept here, so memory does not grow with
// the table.
//
// # Poison rows
//
// A row the source cannot place in cursor order goes to the Emitter's Reject (the
// engine quarantines it) with a reason naming the column, the key masked, and
// reading goes on; it counts towards the batch. There are two kinds:
//
//   - A NULL key, or a floating-point or boolean key. The row has a cursor value, so
//     the keyset returns it in its place and the read point moves past it (the
//     position can hold NULL and such values). NULL sorts first within a cursor value
//     on SQLite and SQL Server and last on PostgreSQL; the keyset conditions follow
//     each. When several NULL-key rows share one cursor value and a batch ends
//     between them, the rest of them are passed over.
//   - A NULL cursor, or on SQLite a cursor value of the wrong type: text that SQLite's
//     datetime() does not read in a time column, anything but an integer in an
//     integer column. No keyset comparison returns NULL, and the keyset leaves the
//     wrong-typed values out on purpose: SQLite sorts numbers before text, so such a
//     value as the read point would carry it past rows written later. Whenever the
//     keyset has caught up, the rest of the batch sweeps these rows instead, in key
//     order after the greatest key swept so far (kept in the position). Each is
//     rejected once. One written later is rejected if its key is greater than every
//     key swept before (as a sequence's are); otherwise it is not seen until the
//     source is read from the start. A row whose key and cursor are both NULL is
//     never read.
//
// Only emitted rows raise the high-water mark. Rows re-read by Rewind are rejected
// again, once per run. Give a nullable cursor a value (COALESCE in a custom query)
// if its rows matter.
//
// # Rows in flight and late rows
//
// A transaction that stamps a row at 10:00:00 and commits at 10:00:07 would be
// skipped by a reader that has already moved past 10:00:00. Two mechanisms cover it:
//
//   - lag: a batch never reads past the database's now minus lag, so a row becomes
//     visible only after its transaction has had lag to commit. The bound also keeps a
//     row stamped in the future (a wrong clock, a typo) from carrying the cursor past
//     every row written after it; such a row is read when its time comes.
//   - lookback: the position also keeps a high-water mark, the greatest (cursor,
//     key) ever read. At the start of every run the engine calls Rewind, which moves
//     the read point back to high-water cursor minus lookback (inclusive, lowest key),
//     so a row committed later than lag allows but inside the window is still read.
//     Re-read rows cost nothing: change detection drops them by content hash.
//
// Both apply only to time cursors (timestamp, datetime, datetime2, datetimeoffset,
// date; SQLite DATETIME/TIMESTAMP/DATE). The other cursor kinds:
//
//   - integer (smallint, int, bigint; SQLite INTEGER): there is no clock to lag
//     behind, and sequences commit out of order (a transaction holding id 41 may
//     commit after one holding 42 was read), so every run re-reads a window counted
//     in cursor values: Rewind moves the read point back to the high-water cursor
//     minus lookback_ids, inclusive (default 1000). It cannot be turned off:
//     lookback_ids: 0 is refused, as is lookback_ids on any other cursor.
//   - rowversion (SQL Server, cursor.kind: rowversion): read only below
//     MIN_ACTIVE_ROWVERSION(), so rows of open transactions hold the reader back
//     until they commit and none is skipped; lag and lookback do not apply.
//   - anything else (text, decimal, binary without kind: rowversion): read without
//     a bound or a window; a row committed out of cursor order can be skipped, and
//     the source logs a warning.
//
// # Columns, refetch and horizon
//
// Columns runs the describe query (WHERE 1 = 0) afresh on every call, so a column
// renamed while the daemon runs shows at once; names are as in emitted rows.
// Refetch reads the current version of rows by cursor.key (IN lists of bound
// parameters, 500 at a time), converting each key, possibly text, to the key
// column's type. Mark returns the database's instant for a time cursor, @@DBTS for a
// rowversion cursor (every write before it is at or below it, every later one
// above; it reads no table, so it never waits on locked rows) and MAX(cursor) for
// an integer one; Before compares a row's cursor value with it, false when the value
// cannot be read.
//
// # Time zones
//
// "Now" comes from the database's clock for PostgreSQL (now()) and SQL Server
// (SYSDATETIMEOFFSET()), as an instant; for SQLite, which runs in this process, from
// the daemon's clock. Zone-less columns (PostgreSQL timestamp and date, SQL Server
// datetime, datetime2, smalldatetime and date, SQLite DATETIME text) are taken to
// hold wall-clock time in the source's zone: the upper bound is bound as wall-clock
// time there, and emitted values are reinterpreted in that zone and converted to UTC.
// Zone-aware values are emitted in UTC. The cursor itself keeps the value exactly as
// the driver returned it, so it binds back equal to what is stored.
//
// MySQL and MariaDB: the connection always runs with parseTime, loc=UTC and the
// session time_zone '+00:00' (see mysqlDialect), and "now" is UTC_TIMESTAMP(6).
// DATETIME and DATE hold wall-clock time and are read in the source's zone like the
// zone-less columns above; TIMESTAMP holds an instant, which the UTC session returns
// exactly.
//
// SQLite has no time type: time cursors must be stored as text in the layout
// "2006-01-02 15:04:05" with fractional seconds only when non-zero, which is how they
// sort and how bounds are bound.
//
// # Position
//
// The position is JSON, opaque to the engine:
//
//	{"v":1,"after":{"cursor":{"type":"time","value":"2025-03-10T08:59:00Z"},
//	                "key":{"type":"int","value":"42"}},
//	       "high": {...same shape...}}
//
// After Rewind, "after" is replaced by "from" (a cursor value read inclusively).
// "swept" is the greatest key the sweep for poison cursors has rejected. Value
// types are time (RFC 3339 with nanoseconds), int, string and bytes (hex, for
// binary keys and rowversion), so every value binds back with its driver type; a
// rejected row's place may also be null, float or bool.
//
// # Key listing
//
// ReadKeys (pipeline.KeyLister) lists the rows a reconcile needs: only the given
// columns plus cursor and key, WHERE key IS NOT NULL AND key > :last ORDER BY key,
// a page at a time, with its own position {"v":1,"after_key":{...}}.
//
// # Safety
//
// Identifiers from the config are validated (letters, digits, underscore) and quoted
// per dialect; every value is a bound parameter. The DSN and its password never
// appear in errors or logs: driver errors that quote them are redacted.
package sqlsource
