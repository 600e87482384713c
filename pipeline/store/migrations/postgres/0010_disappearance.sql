-- Disappearance: a record missing from complete reads of its source becomes a
-- deleted event after a number of consecutive misses (decision 0017).
-- seen_keys is a scratch list of the record keys one pass has read (a full-set
-- poll or a reconcile), kept here rather than in memory so a pass over a large
-- table stays bounded; it is emptied at the start and end of every pass. Each pass
-- has its own token (pass), so a replica that lost the source's lock mid-pass can
-- neither add to nor clear the keys of the pass that took over.
-- miss_counts holds, per record still in the snapshot, how many consecutive
-- complete reads missed it; ended marks one missed after its end time, which is
-- over, not cancelled, and no longer counted.
CREATE TABLE seen_keys (
    source text NOT NULL,
    entity text NOT NULL,
    pass   text NOT NULL,
    key    text NOT NULL,
    PRIMARY KEY (source, entity, pass, key)
);

CREATE TABLE miss_counts (
    source     text        NOT NULL,
    entity     text        NOT NULL,
    key        text        NOT NULL,
    misses     integer     NOT NULL,
    ended      boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (source, entity, key)
);
