-- Steering figures and deadline timers (docs/decisions/0018).
--
-- facts holds, per record of a mapping that declares figures:, the facts the
-- steering figures count, extracted at commit in the same transaction as the
-- snapshot: its kind (dossier, outage), agency, state (open, finished, other),
-- whether it waits for a supplement, its times, and whether it was finished on
-- time, submitted online, digitised (NULL: unknown). Nothing time-dependent is
-- stored: "overdue now" and "due soon" are judged at query time from due_at.
-- supplement_at is when the record was first seen asking for a supplement (kept
-- across later changes). received_day is the received date in the province's zone,
-- for per-day counts (finished_day likewise). Each index serves one figure's range or group.
CREATE TABLE facts (
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
    due_at        TEXT,
    finished_at   TEXT,
    supplement_at TEXT,
    on_time       INTEGER,
    online        INTEGER,
    digitised     INTEGER,
    PRIMARY KEY (source, entity, key)
) WITHOUT ROWID;
CREATE INDEX facts_open ON facts (kind, state, agency, due_at, supplement);
CREATE INDEX facts_received ON facts (kind, received_at, agency, online, digitised);
CREATE INDEX facts_day ON facts (kind, received_day, agency);
CREATE INDEX facts_finished ON facts (kind, state, finished_at, agency, on_time);
CREATE INDEX facts_finished_day ON facts (kind, finished_day, agency);
CREATE INDEX facts_supplement ON facts (kind, supplement_at, agency);

-- timers holds, per record and timer rule (a rule with at:), when it fires. A
-- timer fires once (fired_at set in the transaction that commits its event, or
-- when its condition did not hold); a commit that moves fire_at re-arms it.
CREATE TABLE timers (
    source   TEXT NOT NULL,
    entity   TEXT NOT NULL,
    key      TEXT NOT NULL,
    rule     TEXT NOT NULL,
    fire_at  TEXT NOT NULL,
    fired_at TEXT,
    PRIMARY KEY (source, entity, key, rule)
) WITHOUT ROWID;
CREATE INDEX timers_due ON timers (source, fire_at) WHERE fired_at IS NULL;

-- Notices per route over a period (the steering figures' citizen reach).
CREATE INDEX zalo_sends_at ON zalo_sends (at);
