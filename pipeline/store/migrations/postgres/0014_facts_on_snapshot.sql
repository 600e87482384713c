-- The steering figures' facts move onto the record's snapshot row (decision 0022).
-- (PostgreSQL has no 0013: SQLite's 0013 rebuilt its facts table as a rowid table,
-- which a PostgreSQL heap already is.)
--
-- A separate facts table cost each commit a second row per record, a second
-- look-up of the rows it replaces, a primary key and four indexes on timestamps:
-- a third of a first sync's work per record. The snapshot row is written and
-- looked up anyway, so its facts ride along as nullable compact columns (NULL
-- fact_kind: no facts):
--   fact_kind, fact_agency  as in 0011 (kind, agency);
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
ALTER TABLE snapshot
    ADD COLUMN fact_kind text,
    ADD COLUMN fact_agency text,
    ADD COLUMN fact_state smallint,
    ADD COLUMN fact_flags smallint,
    ADD COLUMN fact_received_at bigint,
    ADD COLUMN fact_due_at bigint,
    ADD COLUMN fact_finished_at bigint,
    ADD COLUMN fact_supplement_at bigint,
    ADD COLUMN fact_received_day integer,
    ADD COLUMN fact_due_day integer,
    ADD COLUMN fact_finished_day integer,
    ADD COLUMN fact_supplement_day integer;

INSERT INTO snapshot (source, entity, key, hash, version, fields, deleted, updated_at)
SELECT f.source, f.entity, f.key, '', 0, '{}', true, 'epoch' FROM facts f
WHERE NOT EXISTS (SELECT 1 FROM snapshot n WHERE n.source = f.source AND n.entity = f.entity AND n.key = f.key);

UPDATE snapshot n SET
    fact_kind = f.kind,
    fact_agency = f.agency,
    fact_state = CASE f.state WHEN 'open' THEN 1 WHEN 'finished' THEN 2 ELSE 0 END,
    fact_flags = (CASE WHEN f.supplement THEN 1 ELSE 0 END)
        | (CASE WHEN f.online IS NULL THEN 0 WHEN f.online THEN 6 ELSE 2 END)
        | (CASE WHEN f.digitised IS NULL THEN 0 WHEN f.digitised THEN 24 ELSE 8 END)
        | (CASE WHEN f.on_time IS NULL THEN 0 WHEN f.on_time THEN 96 ELSE 32 END),
    fact_received_at = floor(extract(epoch FROM f.received_at))::bigint,
    fact_due_at = floor(extract(epoch FROM f.due_at))::bigint,
    fact_finished_at = floor(extract(epoch FROM f.finished_at))::bigint,
    fact_supplement_at = floor(extract(epoch FROM f.supplement_at))::bigint,
    fact_received_day = f.received_day::date - DATE '1970-01-01',
    fact_due_day = f.due_day::date - DATE '1970-01-01',
    fact_finished_day = f.finished_day::date - DATE '1970-01-01',
    fact_supplement_day = f.supplement_day::date - DATE '1970-01-01'
FROM facts f
WHERE f.source = n.source AND f.entity = n.entity AND f.key = n.key;

DROP TABLE facts;

CREATE INDEX snapshot_fact_received ON snapshot (fact_received_at) WHERE fact_received_at IS NOT NULL;
CREATE INDEX snapshot_fact_finished ON snapshot (fact_finished_at) WHERE fact_finished_at IS NOT NULL;
CREATE INDEX snapshot_fact_supplement ON snapshot (fact_supplement_at) WHERE fact_supplement_at IS NOT NULL;
CREATE INDEX snapshot_fact_due ON snapshot (fact_due_at) WHERE fact_state = 1;
