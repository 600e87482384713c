-- Steering figures and deadline timers (docs/decisions/0018).
--
-- facts holds, per record of a mapping that declares figures:, the facts the
-- steering figures count, extracted at commit in the same transaction as the
-- snapshot: its kind (dossier, outage), agency, state (open, finished, other),
-- whether it waits for a supplement, its times, and whether it was finished on
-- time, submitted online, digitised (NULL: unknown). Nothing time-dependent is
-- stored: "overdue now" and "due soon" are judged at query time from due_at.
-- supplement_at is when the record was first seen asking for a supplement (kept
-- across later changes). finished_at is set only while the state is finished.
-- The *_day columns are the dates (YYYY-MM-DD) in the province's zone that the
-- per-day aggregates below are keyed by. Each index serves one exact count over a
-- short range (the partial days at the edges of a period, the open dossiers due
-- soon).
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
    due_day       text,
    supplement_day text,
    due_at        timestamptz,
    finished_at   timestamptz,
    supplement_at timestamptz,
    on_time       boolean,
    online        boolean,
    digitised     boolean,
    PRIMARY KEY (source, entity, key)
);
-- Narrow, partial indexes: they serve short ranges only (a period's partial days,
-- today's overdue, the due-soon window), and every commit writes them.
CREATE INDEX facts_open ON facts (kind, due_at) WHERE state = 'open';
CREATE INDEX facts_received ON facts (kind, received_at);
CREATE INDEX facts_finished ON facts (kind, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX facts_supplement ON facts (kind, supplement_at) WHERE supplement_at IS NOT NULL;

-- fact_days and fact_open are aggregates maintained at commit from the changes of
-- facts (each commit adds and removes the contributions of the rows it changes):
-- fact_days counts the flows per source, kind, agency and day (received, online,
-- online_known, digitised, digitised_known on the received day; finished, on_time,
-- late on the finished day; supplement on the day first asked);
-- fact_open counts the records open now per due day ('' when none), and those of
-- them waiting for a supplement. A period's figures sum whole days here and count
-- only its partial first and last days from facts, so a query costs what its
-- period spans in days, not the number of dossiers.
CREATE TABLE fact_days (
    source          text    NOT NULL,
    kind            text    NOT NULL,
    agency          text    NOT NULL,
    day             text    NOT NULL,
    received        bigint  NOT NULL DEFAULT 0,
    online          bigint  NOT NULL DEFAULT 0,
    online_known    bigint  NOT NULL DEFAULT 0,
    digitised       bigint  NOT NULL DEFAULT 0,
    digitised_known bigint  NOT NULL DEFAULT 0,
    finished        bigint  NOT NULL DEFAULT 0,
    on_time         bigint  NOT NULL DEFAULT 0,
    late            bigint  NOT NULL DEFAULT 0,
    supplement      bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, day, agency, source)
);
CREATE INDEX fact_days_source ON fact_days (source);
CREATE TABLE fact_open (
    source     text    NOT NULL,
    kind       text    NOT NULL,
    agency     text    NOT NULL,
    due_day    text    NOT NULL,
    n          bigint  NOT NULL,
    supplement bigint  NOT NULL,
    PRIMARY KEY (kind, due_day, agency, source)
);
CREATE INDEX fact_open_source ON fact_open (source);

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
