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
    source        text        NOT NULL,
    entity        text        NOT NULL,
    key           text        NOT NULL,
    kind          text        NOT NULL,
    agency        text        NOT NULL DEFAULT '',
    state         text        NOT NULL,
    supplement    boolean     NOT NULL DEFAULT false,
    received_at   timestamptz,
    received_day  text,
    finished_day  text,
    due_at        timestamptz,
    finished_at   timestamptz,
    supplement_at timestamptz,
    on_time       boolean,
    online        boolean,
    digitised     boolean,
    PRIMARY KEY (source, entity, key)
);
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
    source   text NOT NULL,
    entity   text NOT NULL,
    key      text NOT NULL,
    rule     text NOT NULL,
    fire_at  timestamptz NOT NULL,
    fired_at timestamptz,
    PRIMARY KEY (source, entity, key, rule)
);
CREATE INDEX timers_due ON timers (source, fire_at) WHERE fired_at IS NULL;

-- Notices per route over a period (the steering figures' citizen reach).
CREATE INDEX zalo_sends_at ON zalo_sends (at);
