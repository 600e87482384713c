-- The store's epoch: when this store was created, in microseconds since 1970. Event
-- versions restart at 1 in a store rebuilt from nothing; consumers order a record's
-- versions by (epoch, version), so a rebuilt store's events are newer, not stale.
CREATE TABLE store_meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO store_meta (key, value)
VALUES ('epoch', CAST(CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) AS TEXT));

-- Fencing: every acquisition of a named lock takes the next generation; a commit made
-- under a lock checks, inside its transaction, that the generation is still its own,
-- so a replica that lost its lock cannot commit after another one took over.
CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    generation INTEGER NOT NULL
);

-- A source's last run error (a missing column stops a source until it is fixed),
-- shown by `state` and /readyz; and the mark taken when its first sync ended.
ALTER TABLE cursors ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE cursors ADD COLUMN error_at TEXT;
ALTER TABLE cursors ADD COLUMN edge BLOB;

-- snapshot: the row was quarantined during the source's first sync, so repairing it
-- later yields a snapshot record, not news. rule/event: a rule that failed at run time
-- (rule names it, event holds the change it was evaluated on) instead of a bad row.
ALTER TABLE quarantine ADD COLUMN snapshot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE quarantine ADD COLUMN rule TEXT NOT NULL DEFAULT '';
ALTER TABLE quarantine ADD COLUMN event TEXT;
CREATE INDEX quarantine_key ON quarantine (source, entity, row_key);

-- lazy_seq: this row's created event, stored without its fields (they are this
-- row's); before the row changes, commit writes them into the event.
ALTER TABLE snapshot ADD COLUMN lazy_seq INTEGER;
