-- The state store's first schema (PostgreSQL). Tables are created unqualified so
-- they land in the first schema of the connection's search_path.

CREATE TABLE cursors (
    source       text        NOT NULL PRIMARY KEY,
    position     bytea,
    initial_done boolean     NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE snapshot (
    source     text        NOT NULL,
    entity     text        NOT NULL,
    key        text        NOT NULL,
    hash       text        NOT NULL,
    version    bigint      NOT NULL,
    fields     jsonb       NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (source, entity, key)
);

CREATE TABLE events (
    seq        bigserial   NOT NULL PRIMARY KEY,
    id         text        NOT NULL UNIQUE,
    source     text        NOT NULL,
    entity     text        NOT NULL,
    key        text        NOT NULL,
    type       text        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE outbox (
    sink       text        NOT NULL,
    seq        bigint      NOT NULL REFERENCES events (seq),
    attempts   integer     NOT NULL DEFAULT 0,
    next_at    timestamptz NOT NULL,
    last_error text        NOT NULL DEFAULT '',
    PRIMARY KEY (sink, seq)
);
CREATE INDEX outbox_due ON outbox (sink, next_at, seq);

CREATE TABLE deliveries (
    sink         text        NOT NULL,
    event_id     text        NOT NULL,
    seq          bigint      NOT NULL,
    attempts     integer     NOT NULL,
    delivered_at timestamptz NOT NULL,
    PRIMARY KEY (sink, event_id)
);

CREATE TABLE dead_letters (
    id       bigserial   NOT NULL PRIMARY KEY,
    sink     text        NOT NULL,
    seq      bigint      NOT NULL REFERENCES events (seq),
    event_id text        NOT NULL,
    attempts integer     NOT NULL,
    reason   text        NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX dead_letters_sink ON dead_letters (sink, id);

-- dedupe identifies "the same bad row rejected for the same reason": a hash of the
-- row key (or of the raw row when it has no key) and the reason. Hashing keeps the
-- unique index small however long the reason is.
CREATE TABLE quarantine (
    id       bigserial   NOT NULL PRIMARY KEY,
    source   text        NOT NULL,
    entity   text        NOT NULL,
    row_key  text        NOT NULL DEFAULT '',
    reason   text        NOT NULL,
    raw      jsonb       NOT NULL,
    dedupe   text        NOT NULL,
    count    integer     NOT NULL DEFAULT 1,
    first_at timestamptz NOT NULL,
    last_at  timestamptz NOT NULL,
    UNIQUE (source, entity, dedupe)
);
CREATE INDEX quarantine_recent ON quarantine (source, last_at);

CREATE TABLE audit_log (
    id     bigserial   NOT NULL PRIMARY KEY,
    at     timestamptz NOT NULL,
    actor  text        NOT NULL,
    action text        NOT NULL,
    detail text        NOT NULL DEFAULT ''
);
