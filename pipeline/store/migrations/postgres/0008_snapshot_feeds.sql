-- Snapshot feeds: a first sync writes its records and nothing else.
--
-- A first sync's created events are not stored as events and outbox rows. Each
-- commit reserves a block of seqs from the events sequence (so they interleave
-- with every other event in commit order) and gives each new snapshot row one of
-- them in lazy_seq: the row is its created event. snapshot_events holds what the
-- block's events share (source, entity, agency, epoch, detection time); the
-- event's id follows from the row (pipeline.EventID of its key, version and hash).
--
-- snapshot_feeds is each sink's progress through a block (lo..hi): every seq up
-- to done is settled for the sink (done = hi: the whole block); delivered counts
-- the deliveries it recorded. snapshot_feed_done lists seqs beyond done that are
-- settled already (deliveries end out of order); the row goes when the block is
-- done for the sink. A feed event that fails, or whose record changes before
-- the sink has it, becomes an ordinary event and outbox row at its own seq, so
-- retries, dead letters and the record's order work as for any other event.
-- See docs/decisions/0014-snapshot-feeds.md.
CREATE TABLE snapshot_events (
    lo          bigint      NOT NULL PRIMARY KEY,
    hi          bigint      NOT NULL,
    source      text        NOT NULL,
    entity      text        NOT NULL,
    agency      text        NOT NULL DEFAULT '',
    epoch       bigint      NOT NULL DEFAULT 0,
    detected_at timestamptz NOT NULL
);

CREATE TABLE snapshot_feeds (
    sink text   NOT NULL,
    lo   bigint NOT NULL,
    hi   bigint NOT NULL,
    done bigint NOT NULL,
    delivered bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (sink, lo)
);

-- A poll reads the sink's unfinished blocks only, however many it finished.
CREATE INDEX snapshot_feeds_open ON snapshot_feeds (sink, lo) WHERE done < hi;

CREATE TABLE snapshot_feed_done (
    sink text   NOT NULL,
    seq  bigint NOT NULL,
    PRIMARY KEY (sink, seq)
);

-- A feed reads its block's rows in seq order.
CREATE INDEX snapshot_lazy ON snapshot (lazy_seq) WHERE lazy_seq IS NOT NULL;

-- Snapshot rows written from now on keep their values without field names:
-- fields is [shape, v1, v2, ...], the values in the order of the shape's sorted
-- names (a JSON array of strings). A shape's id is derived from its names.
CREATE TABLE snapshot_shapes (
    id    bigint NOT NULL PRIMARY KEY,
    names text   NOT NULL
);
