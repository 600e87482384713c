-- Zalo OA sink (connectors/zalo): its token pair, the OA's followers and a record
-- of every notice it handled.
--
-- zalo_tokens holds one row per OA. Zalo's refresh token is single-use and rotates
-- on every refresh, so the new pair is written here (fenced by the refresher's named
-- lock) before the access token is used. generation grows with every stored pair.
-- refused is Zalo's reason for refusing the stored refresh token ('' while usable):
-- the sink stops until `egov-bridge zalo token set` stores a new one.
CREATE TABLE zalo_tokens (
    oa_id         text        NOT NULL PRIMARY KEY,
    access_token  text        NOT NULL DEFAULT '',
    refresh_token text        NOT NULL,
    expires_at    timestamptz,
    refreshed_at  timestamptz NOT NULL,
    generation    bigint      NOT NULL,
    refused       text        NOT NULL DEFAULT '',
    refused_at    timestamptz
);

-- Followers of an OA and the phone each linked (user_submit_info, with consent, or
-- an agency's imported list). followed is false after an unfollow.
CREATE TABLE zalo_followers (
    oa_id          text        NOT NULL,
    user_id        text        NOT NULL,
    phone          text        NOT NULL DEFAULT '',
    followed       boolean     NOT NULL DEFAULT true,
    consent_at     timestamptz,
    interaction_at timestamptz,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (oa_id, user_id)
);
CREATE INDEX zalo_followers_phone ON zalo_followers (oa_id, phone);

-- One row per message sent (an OA text split in parts has one per part) or per
-- notice not sent (route undeliverable or stale), so a redelivered event is not
-- sent twice and each month's routes and costs can be counted.
CREATE TABLE zalo_sends (
    sink       text        NOT NULL,
    event_id   text        NOT NULL,
    part       integer     NOT NULL,
    parts      integer     NOT NULL,
    oa_id      text        NOT NULL,
    route      text        NOT NULL,
    agency     text        NOT NULL DEFAULT '',
    rule       text        NOT NULL DEFAULT '',
    month      text        NOT NULL,
    message_id text        NOT NULL DEFAULT '',
    quota_type text        NOT NULL DEFAULT '',
    reason     text        NOT NULL DEFAULT '',
    dry_run    boolean     NOT NULL DEFAULT false,
    request    text        NOT NULL DEFAULT '',
    at         timestamptz NOT NULL,
    PRIMARY KEY (sink, event_id, part)
);
CREATE INDEX zalo_sends_month ON zalo_sends (month, sink);
