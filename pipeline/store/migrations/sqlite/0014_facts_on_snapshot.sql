-- The steering figures' facts move onto the record's snapshot row (decision 0022).
--
-- A separate facts table cost each commit a second row per record, a second
-- look-up of the rows it replaces, a unique key index and four indexes on text
-- times: ~370 bytes and a third of a first sync's CPU per record. The snapshot
-- row is written and looked up anyway, so its facts ride along as nullable
-- compact columns (NULL fact_group: no facts):
--   fact_group              the facts' kind and agency, as a row of fact_groups;
--   fact_state              0 other, 1 open, 2 finished;
--   fact_flags              bits: 1 supplement, 2 online known, 4 online,
--                           8 digitised known, 16 digitised, 32 on time known,
--                           64 on time;
--   fact_*_at               unix seconds (to the second);
--   fact_*_day              days since 1970-01-01 of the province's date.
-- Only the times the figures count over short ranges are indexed, each index
-- partial and on one integer: received, finished and supplement times for a
-- period's partial days, the due time of open records for overdue today and due
-- soon. fact_days, fact_open and timers stay as 0011 made them.
--
-- A fact whose record has no snapshot row (facts committed without their
-- records) gets a placeholder row: deleted, version 0, empty hash and fields.
--
-- The table is rebuilt (as 0008 did) so the row's own columns get narrower too:
-- hash has no text affinity, and a record's hash, lowercase hex, is kept as its
-- bytes (16; 32 characters before); updated_at is INTEGER, unix nanoseconds (8
-- bytes; 30 characters before). Rows copied over keep their updated_at text,
-- which the store reads as before.
CREATE TABLE fact_groups (
    id     INTEGER NOT NULL PRIMARY KEY,
    kind   TEXT    NOT NULL,
    agency TEXT    NOT NULL,
    UNIQUE (kind, agency)
);
INSERT INTO fact_groups (kind, agency) SELECT DISTINCT kind, agency FROM facts ORDER BY kind, agency;

CREATE TABLE snapshot_new (
    id         INTEGER NOT NULL PRIMARY KEY,
    source     TEXT    NOT NULL,
    entity     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    fields     TEXT    NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    lazy_seq   INTEGER,
    fact_group          INTEGER,
    fact_state          INTEGER,
    fact_flags          INTEGER,
    fact_received_at    INTEGER,
    fact_due_at         INTEGER,
    fact_finished_at    INTEGER,
    fact_supplement_at  INTEGER,
    fact_received_day   INTEGER,
    fact_due_day        INTEGER,
    fact_finished_day   INTEGER,
    fact_supplement_day INTEGER
);
-- facts with their group id and columns converted, for both inserts below.
CREATE TEMP TABLE facts_carried AS
SELECT f.source, f.entity, f.key, g.id AS fact_group,
    CASE f.state WHEN 'open' THEN 1 WHEN 'finished' THEN 2 ELSE 0 END AS fact_state,
    (CASE WHEN f.supplement THEN 1 ELSE 0 END)
        | (CASE WHEN f.online IS NULL THEN 0 WHEN f.online THEN 6 ELSE 2 END)
        | (CASE WHEN f.digitised IS NULL THEN 0 WHEN f.digitised THEN 24 ELSE 8 END)
        | (CASE WHEN f.on_time IS NULL THEN 0 WHEN f.on_time THEN 96 ELSE 32 END) AS fact_flags,
    unixepoch(f.received_at) AS fact_received_at, unixepoch(f.due_at) AS fact_due_at,
    unixepoch(f.finished_at) AS fact_finished_at, unixepoch(f.supplement_at) AS fact_supplement_at,
    unixepoch(f.received_day) / 86400 AS fact_received_day, unixepoch(f.due_day) / 86400 AS fact_due_day,
    unixepoch(f.finished_day) / 86400 AS fact_finished_day, unixepoch(f.supplement_day) / 86400 AS fact_supplement_day
FROM facts f JOIN fact_groups g ON g.kind = f.kind AND g.agency = f.agency;
CREATE UNIQUE INDEX temp.facts_carried_key ON facts_carried (source, entity, key);

INSERT INTO snapshot_new (id, source, entity, key, hash, version, fields, deleted, updated_at, lazy_seq, fact_group,
    fact_state, fact_flags, fact_received_at, fact_due_at, fact_finished_at, fact_supplement_at,
    fact_received_day, fact_due_day, fact_finished_day, fact_supplement_day)
SELECT n.id, n.source, n.entity, n.key,
    CASE WHEN length(n.hash) BETWEEN 2 AND 128 AND length(n.hash) % 2 = 0 AND n.hash NOT GLOB '*[^0-9a-f]*'
        THEN unhex(n.hash) ELSE n.hash END,
    n.version, n.fields, n.deleted, n.updated_at, n.lazy_seq, c.fact_group,
    c.fact_state, c.fact_flags, c.fact_received_at, c.fact_due_at, c.fact_finished_at, c.fact_supplement_at,
    c.fact_received_day, c.fact_due_day, c.fact_finished_day, c.fact_supplement_day
FROM snapshot n LEFT JOIN facts_carried c ON c.source = n.source AND c.entity = n.entity AND c.key = n.key;
INSERT INTO snapshot_new (source, entity, key, hash, version, fields, deleted, updated_at, fact_group,
    fact_state, fact_flags, fact_received_at, fact_due_at, fact_finished_at, fact_supplement_at,
    fact_received_day, fact_due_day, fact_finished_day, fact_supplement_day)
SELECT c.source, c.entity, c.key, '', 0, '{}', 1, 0, c.fact_group,
    c.fact_state, c.fact_flags, c.fact_received_at, c.fact_due_at, c.fact_finished_at, c.fact_supplement_at,
    c.fact_received_day, c.fact_due_day, c.fact_finished_day, c.fact_supplement_day
FROM facts_carried c
WHERE NOT EXISTS (SELECT 1 FROM snapshot n WHERE n.source = c.source AND n.entity = c.entity AND n.key = c.key);
DROP TABLE facts_carried;
DROP TABLE snapshot;
DROP TABLE facts;
ALTER TABLE snapshot_new RENAME TO snapshot;
CREATE UNIQUE INDEX snapshot_key ON snapshot (source, entity, key);
CREATE INDEX snapshot_lazy ON snapshot (lazy_seq) WHERE lazy_seq IS NOT NULL;
CREATE INDEX snapshot_fact_received ON snapshot (fact_received_at) WHERE fact_received_at IS NOT NULL;
CREATE INDEX snapshot_fact_finished ON snapshot (fact_finished_at) WHERE fact_finished_at IS NOT NULL;
CREATE INDEX snapshot_fact_supplement ON snapshot (fact_supplement_at) WHERE fact_supplement_at IS NOT NULL;
CREATE INDEX snapshot_fact_due ON snapshot (fact_due_at) WHERE fact_state = 1;
