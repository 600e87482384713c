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
    hi   INTEGER NOT NULL,
    done INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sink, lo)
) WITHOUT ROWID;

-- A poll reads the sink's unfinished blocks only, however many it finished.
CREATE INDEX snapshot_feeds_open ON snapshot_feeds (sink, lo) WHERE done < hi;

CREATE TABLE snapshot_feed_done (
    sink TEXT    NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (sink, seq)
) WITHOUT ROWID;

-- The snapshot becomes a rowid table with a unique index on its key: rows are
-- appended in commit order and only the small key index takes inserts in key
-- order. As a WITHOUT ROWID table every insert went to a random leaf of a
-- b-tree of whole records, which outgrows any page cache at a million records.
CREATE TABLE snapshot_rows (
    id         INTEGER NOT NULL PRIMARY KEY,
    source     TEXT    NOT NULL,
    entity     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    fields     TEXT    NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT    NOT NULL,
    lazy_seq   INTEGER
);
INSERT INTO snapshot_rows (source, entity, key, hash, version, fields, deleted, updated_at, lazy_seq)
SELECT source, entity, key, hash, version, fields, deleted, updated_at, lazy_seq FROM snapshot;
DROP TABLE snapshot;
ALTER TABLE snapshot_rows RENAME TO snapshot;
CREATE UNIQUE INDEX snapshot_key ON snapshot (source, entity, key);

-- A feed reads its block's rows in seq order.
CREATE INDEX snapshot_lazy ON snapshot (lazy_seq) WHERE lazy_seq IS NOT NULL;

-- Snapshot rows written from now on keep their values without field names:
-- fields is [shape, v1, v2, ...], the values in the order of the shape's sorted
-- names (a JSON array of strings). A shape's id is derived from its names.
CREATE TABLE snapshot_shapes (
    id    INTEGER NOT NULL PRIMARY KEY,
    names TEXT    NOT NULL
);
