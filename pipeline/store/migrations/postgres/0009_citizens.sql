-- Citizens who write to the OA (connectors/zalo, issue 10): the webhook's inbox,
-- a citizen's "stop" choice, subscriptions, feedback with reference numbers,
-- satisfaction ratings, and the index of look-up fields.

-- Every webhook event Zalo delivered, committed before the webhook answers 200 and
-- handled afterwards by a worker. event_key is Zalo's message id or the event's
-- identity (name, user, timestamp): a repeated delivery finds its row and is ignored.
CREATE TABLE zalo_inbox (
    id          bigserial PRIMARY KEY,
    oa_id       text    NOT NULL,
    event_key   text    NOT NULL,
    event_name  text    NOT NULL,
    user_id     text    NOT NULL DEFAULT '',
    payload     text    NOT NULL,
    received_at timestamptz    NOT NULL,
    handled_at  timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text    NOT NULL DEFAULT '',
    UNIQUE (oa_id, event_key)
);
CREATE INDEX zalo_inbox_waiting ON zalo_inbox (oa_id, id) WHERE handled_at IS NULL;

-- HUY TIN: the citizen wants no proactive message of any kind (NULL: none asked).
ALTER TABLE zalo_followers ADD COLUMN stopped_at timestamptz;

-- DK <topic> <place>: a follower subscribed to a topic (outages) for a commune or
-- ward; place is the current unit's id from the crosswalk (folded name).
CREATE TABLE zalo_subscriptions (
    oa_id      text NOT NULL,
    user_id    text NOT NULL,
    topic      text NOT NULL,
    place      text NOT NULL,
    label      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    PRIMARY KEY (oa_id, user_id, topic, place)
);
CREATE INDEX zalo_subscriptions_place ON zalo_subscriptions (oa_id, topic, place);

-- GOPY: feedback with its reference number GY-<year>-<number>; numbers come from
-- feedback_numbers in the transaction that stores the feedback, so two citizens
-- never share one. origin is the inbox event it came from (a re-handled event
-- finds its feedback again).
CREATE TABLE feedback_numbers (
    year integer NOT NULL PRIMARY KEY,
    last integer NOT NULL
);
CREATE TABLE feedback (
    id          bigserial PRIMARY KEY,
    ref         text    NOT NULL UNIQUE,
    origin      text    NOT NULL UNIQUE,
    oa_id       text    NOT NULL,
    user_id     text    NOT NULL,
    reply_to    text    NOT NULL DEFAULT '',
    agency      text    NOT NULL DEFAULT '',
    text        text    NOT NULL,
    created_at  timestamptz    NOT NULL,
    answer      text    NOT NULL DEFAULT '',
    answered_by text    NOT NULL DEFAULT '',
    answered_at timestamptz
);
CREATE INDEX feedback_agency ON feedback (agency, created_at);

-- DG <1-5>: a citizen's satisfaction with a dossier whose result was returned; a
-- second rating of the same dossier by the same citizen replaces the first.
CREATE TABLE ratings (
    source   text    NOT NULL,
    dossier  text    NOT NULL,
    oa_id    text    NOT NULL,
    user_id  text    NOT NULL,
    agency   text    NOT NULL DEFAULT '',
    score    integer NOT NULL CHECK (score BETWEEN 1 AND 5),
    rated_at timestamptz    NOT NULL,
    PRIMARY KEY (source, dossier, oa_id, user_id)
);
CREATE INDEX ratings_agency ON ratings (agency, rated_at);

-- Look-up index: for each indexed (entity, name), the folded values of a record's
-- field (or the places named in it), kept by the commit that stores the record,
-- so a citizen's question reads a few rows, not the snapshot.
CREATE TABLE lookup_index (
    entity text NOT NULL,
    name   text NOT NULL,
    value  text NOT NULL,
    source text NOT NULL,
    key    text NOT NULL,
    PRIMARY KEY (entity, name, value, source, key)
);
-- A record's rows, replaced when it changes.
CREATE INDEX lookup_index_record ON lookup_index (entity, name, source, key);
-- An index filled from the snapshot once, when it was first asked for.
CREATE TABLE lookup_indexed (
    entity    text NOT NULL,
    name      text NOT NULL,
    filled_at timestamptz NOT NULL,
    PRIMARY KEY (entity, name)
);
