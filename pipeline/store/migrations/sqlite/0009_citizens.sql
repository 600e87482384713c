-- Citizens who write to the OA (connectors/zalo, issue 10): the webhook's inbox,
-- a citizen's "stop" choice, subscriptions, feedback with reference numbers,
-- satisfaction ratings, and the index of look-up fields.

-- Every webhook event Zalo delivered, committed before the webhook answers 200 and
-- handled afterwards by a worker. event_key is Zalo's message id or the event's
-- identity (name, user, timestamp): a repeated delivery finds its row and is ignored.
CREATE TABLE zalo_inbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    oa_id       TEXT    NOT NULL,
    event_key   TEXT    NOT NULL,
    event_name  TEXT    NOT NULL,
    user_id     TEXT    NOT NULL DEFAULT '',
    payload     TEXT    NOT NULL,
    received_at TEXT    NOT NULL,
    handled_at  TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT    NOT NULL DEFAULT '',
    UNIQUE (oa_id, event_key)
);
CREATE INDEX zalo_inbox_waiting ON zalo_inbox (oa_id, id) WHERE handled_at IS NULL;

-- HUY TIN: the citizen wants no proactive message of any kind (NULL: none asked).
ALTER TABLE zalo_followers ADD COLUMN stopped_at TEXT;

-- DK <topic> <place>: a follower subscribed to a topic (outages) for a commune or
-- ward; place is the current unit's id from the crosswalk (folded name).
CREATE TABLE zalo_subscriptions (
    oa_id      TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    topic      TEXT NOT NULL,
    place      TEXT NOT NULL,
    label      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (oa_id, user_id, topic, place)
);
CREATE INDEX zalo_subscriptions_place ON zalo_subscriptions (oa_id, topic, place);

-- GOPY: feedback with its reference number GY-<year>-<number>; numbers come from
-- feedback_numbers in the transaction that stores the feedback, so two citizens
-- never share one. origin is the inbox event it came from (a re-handled event
-- finds its feedback again).
CREATE TABLE feedback_numbers (
    year INTEGER NOT NULL PRIMARY KEY,
    last INTEGER NOT NULL
);
CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ref         TEXT    NOT NULL UNIQUE,
    origin      TEXT    NOT NULL UNIQUE,
    oa_id       TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    reply_to    TEXT    NOT NULL DEFAULT '',
    agency      TEXT    NOT NULL DEFAULT '',
    text        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    answer      TEXT    NOT NULL DEFAULT '',
    answered_by TEXT    NOT NULL DEFAULT '',
    answered_at TEXT
);
CREATE INDEX feedback_agency ON feedback (agency, created_at);

-- DG <1-5>: a citizen's satisfaction with a dossier whose result was returned; a
-- second rating of the same dossier by the same citizen replaces the first.
CREATE TABLE ratings (
    source   TEXT    NOT NULL,
    dossier  TEXT    NOT NULL,
    oa_id    TEXT    NOT NULL,
    user_id  TEXT    NOT NULL,
    agency   TEXT    NOT NULL DEFAULT '',
    score    INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    rated_at TEXT    NOT NULL,
    PRIMARY KEY (source, dossier, oa_id, user_id)
);
CREATE INDEX ratings_agency ON ratings (agency, rated_at);

-- Look-up index: for each indexed (entity, name), the folded values of a record's
-- field (or the places named in it), kept by the commit that stores the record,
-- so a citizen's question reads a few rows, not the snapshot.
CREATE TABLE lookup_index (
    entity TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    source TEXT NOT NULL,
    key    TEXT NOT NULL,
    PRIMARY KEY (entity, name, value, source, key)
) WITHOUT ROWID;
-- A record's rows, replaced when it changes.
CREATE INDEX lookup_index_record ON lookup_index (entity, name, source, key);
-- An index filled from the snapshot once, when it was first asked for.
CREATE TABLE lookup_indexed (
    entity    TEXT NOT NULL,
    name      TEXT NOT NULL,
    filled_at TEXT NOT NULL,
    PRIMARY KEY (entity, name)
);
