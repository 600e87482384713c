-- Snapshot feeds: a first sync writes its records and nothing else.
--
-- A first sync's created events are not stored as events and outbox rows. Each
-- commit reserves a block of seqs from the events sequence (so they interleave
-- with every other event in commit order) and gives each new snapshot row one of
-- them in lazy_seq: the row is its created event. snapshot_events holds what the
-- block's events share (source, entity, agency, epoch, detection time); the
-- event's id follows from the row (pipeline.EventID of its key, version and hash).
--
-- snapshot_feeds is each sink's progress through a block: every seq up to done
-- is settled for the sink (done = hi: the whole block); delivered counts the
-- deliveries it recorded. snapshot_feed_done lists seqs beyond done that are
-- settled already (deliveries end out of order); the row goes when the block is
-- done for the sink. A feed event that fails, or whose record changes before
-- the sink has it, becomes an ordinary event and outbox row at its own seq, so
-- retries, dead letters and the record's order work as for any other event.
-- See docs/decisions/0014-snapshot-feeds.md.
CREATE TABLE snapshot_events (
    lo          INTEGER NOT NULL PRIMARY KEY,
    hi          INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    entity      TEXT    NOT NULL,
    agency      TEXT    NOT NULL DEFAULT '',
    epoch       INTEGER NOT NULL DEFAULT 0,
    detected_at TEXT    NOT NULL
);

CREATE TABLE snapshot_feeds (
    sink TEXT    NOT NULL,
    lo   INTEGER NOT NULL,
    done INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sink, lo)
) WITHOUT ROWID;

CREATE TABLE snapshot_feed_done (
    sink TEXT    NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (sink, seq)
) WITHOUT ROWID;

-- A feed reads its block's rows in seq order.
CREATE INDEX snapshot_lazy ON snapshot (lazy_seq) WHERE lazy_seq IS NOT NULL;
