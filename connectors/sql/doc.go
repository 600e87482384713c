// Package sqlsource is the `type: sql` source: it reads a table or a custom SELECT
// of an agency's PostgreSQL, SQL Server or SQLite database incrementally, in bounded
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
// Rows whose cursor column is NULL are never read: no comparison holds for NULL.
// Give such rows a value (for example COALESCE in a custom query) if they matter.
// The key must be unique and NOT NULL; a NULL key stops the source with an error.
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
// date; SQLite DATETIME/TIMESTAMP/DATE). An integer or binary cursor (a sequence, a
// rowversion) is read without an upper bound, and lookback is refused for it.
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
// Value types are time (RFC 3339 with nanoseconds), int, string and bytes (hex, for
// binary keys and rowversion), so every value binds back with its driver type.
//
// # Safety
//
// Identifiers from the config are validated (letters, digits, underscore) and quoted
// per dialect; every value is a bound parameter. The DSN and its password never
// appear in errors or logs: driver errors that quote them are redacted.
package sqlsource
