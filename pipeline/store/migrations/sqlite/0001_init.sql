-- The state store's first schema (SQLite). Times are UTC RFC 3339 text with nine
-- fractional digits, so comparing the text compares the times. JSON is kept as text.

CREATE TABLE cursors (
    source       TEXT    NOT NULL PRIMARY KEY,
    position     BLOB,
    initial_done INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT    NOT NULL
);

CREATE TABLE snapshot (
    source     TEXT    NOT NULL,
    entity     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    fields     TEXT    NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (source, entity, key)
) WITHOUT ROWID;

-- AUTOINCREMENT: a seq is never reused, even after the newest events are deleted,
-- so delivery order and deliveries.seq stay unambiguous.
CREATE TABLE events (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    source     TEXT    NOT NULL,
    entity     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

CREATE TABLE outbox (
    sink       TEXT    NOT NULL,
    seq        INTEGER NOT NULL REFERENCES events (seq),
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    TEXT    NOT NULL,
    last_error TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (sink, seq)
);
CREATE INDEX outbox_due ON outbox (sink, next_at, seq);

CREATE TABLE deliveries (
    sink         TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    delivered_at TEXT    NOT NULL,
    PRIMARY KEY (sink, event_id)
);

CREATE TABLE dead_letters (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    sink     TEXT    NOT NULL,
    seq      INTEGER NOT NULL REFERENCES events (seq),
    event_id TEXT    NOT NULL,
    attempts INTEGER NOT NULL,
    reason   TEXT    NOT NULL,
    at       TEXT    NOT NULL
);
CREATE INDEX dead_letters_sink ON dead_letters (sink, id);

-- dedupe identifies "the same bad row rejected for the same reason": a hash of the
-- row key (or of the raw row when it has no key) and the reason. Hashing keeps the
-- unique index small however long the reason is.
CREATE TABLE quarantine (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    source   TEXT    NOT NULL,
    entity   TEXT    NOT NULL,
    row_key  TEXT    NOT NULL DEFAULT '',
    reason   TEXT    NOT NULL,
    raw      TEXT    NOT NULL,
    dedupe   TEXT    NOT NULL,
    count    INTEGER NOT NULL DEFAULT 1,
    first_at TEXT    NOT NULL,
    last_at  TEXT    NOT NULL,
    UNIQUE (source, entity, dedupe)
);
CREATE INDEX quarantine_recent ON quarantine (source, last_at);

CREATE TABLE audit_log (
    id     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at     TEXT    NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    detail TEXT    NOT NULL DEFAULT ''
);
