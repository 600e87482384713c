-- facts as a rowid table (SQLite only; a PostgreSQL table is a heap already).
--
-- As a WITHOUT ROWID table, each facts row of ~250 bytes lived in the primary
-- key's B-tree, so a first sync, whose keys arrive in cursor order rather than key
-- order, inserted wide rows at random places and split pages all over the table:
-- writing the facts cost three times writing the snapshot. A rowid table appends
-- rows in commit order and keeps only the narrow key in a unique index, as the
-- snapshot does (0008). Columns, indexes and their meaning are those of 0011.
CREATE TABLE facts_new (
    source        TEXT    NOT NULL,
    entity        TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    agency        TEXT    NOT NULL DEFAULT '',
    state         TEXT    NOT NULL,
    supplement    INTEGER NOT NULL DEFAULT 0,
    received_at   TEXT,
    received_day  TEXT,
    finished_day  TEXT,
    due_day       TEXT,
    supplement_day TEXT,
    due_at        TEXT,
    finished_at   TEXT,
    supplement_at TEXT,
    on_time       INTEGER,
    online        INTEGER,
    digitised     INTEGER
);
INSERT INTO facts_new (source, entity, key, kind, agency, state, supplement, received_at, received_day,
    finished_day, due_day, supplement_day, due_at, finished_at, supplement_at, on_time, online, digitised)
SELECT source, entity, key, kind, agency, state, supplement, received_at, received_day,
    finished_day, due_day, supplement_day, due_at, finished_at, supplement_at, on_time, online, digitised
FROM facts;
DROP TABLE facts;
ALTER TABLE facts_new RENAME TO facts;
CREATE UNIQUE INDEX facts_key ON facts (source, entity, key);
CREATE INDEX facts_open ON facts (kind, due_at) WHERE state = 'open';
CREATE INDEX facts_received ON facts (kind, received_at);
CREATE INDEX facts_finished ON facts (kind, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX facts_supplement ON facts (kind, supplement_at) WHERE supplement_at IS NOT NULL;
