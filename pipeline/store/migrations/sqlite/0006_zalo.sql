-- Zalo OA sink (connectors/zalo): its token pair, the OA's followers and a record
-- of every notice it handled.
--
-- zalo_tokens holds one row per OA. Zalo's refresh token is single-use and rotates
-- on every refresh, so the new pair is written here (fenced by the refresher's named
-- lock) before the access token is used. generation grows with every stored pair.
-- refused is Zalo's reason for refusing the stored refresh token ('' while usable):
-- the sink stops until `egov-bridge zalo token set` stores a new one.
CREATE TABLE zalo_tokens (
    oa_id         TEXT    NOT NULL PRIMARY KEY,
    access_token  TEXT    NOT NULL DEFAULT '',
    refresh_token TEXT    NOT NULL,
    expires_at    TEXT,
    refreshed_at  TEXT    NOT NULL,
    generation    INTEGER NOT NULL,
    refused       TEXT    NOT NULL DEFAULT '',
    refused_at    TEXT
);

-- Followers of an OA and the phone each linked (user_submit_info, with consent, or
-- an agency's imported list). followed is false after an unfollow.
CREATE TABLE zalo_followers (
    oa_id          TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    phone          TEXT    NOT NULL DEFAULT '',
    followed       INTEGER NOT NULL DEFAULT 1,
    consent_at     TEXT,
    interaction_at TEXT,
    updated_at     TEXT    NOT NULL,
    PRIMARY KEY (oa_id, user_id)
);
CREATE INDEX zalo_followers_phone ON zalo_followers (oa_id, phone);

-- One row per message sent (an OA text split in parts has one per part) or per
-- notice not sent (route undeliverable or stale), so a redelivered event is not
-- sent twice and each month's routes and costs can be counted.
CREATE TABLE zalo_sends (
    sink       TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    part       INTEGER NOT NULL,
    parts      INTEGER NOT NULL,
    oa_id      TEXT    NOT NULL,
    route      TEXT    NOT NULL,
    agency     TEXT    NOT NULL DEFAULT '',
    rule       TEXT    NOT NULL DEFAULT '',
    month      TEXT    NOT NULL,
    message_id TEXT    NOT NULL DEFAULT '',
    quota_type TEXT    NOT NULL DEFAULT '',
    reason     TEXT    NOT NULL DEFAULT '',
    dry_run    INTEGER NOT NULL DEFAULT 0,
    request    TEXT    NOT NULL DEFAULT '',
    at         TEXT    NOT NULL,
    PRIMARY KEY (sink, event_id, part)
);
CREATE INDEX zalo_sends_month ON zalo_sends (month, sink);
