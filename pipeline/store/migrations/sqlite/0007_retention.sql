-- Retention: delivered events, their deliveries, resolved dead letters and old
-- quarantine entries are purged after configured times. These indexes let the purge
-- check "still waiting somewhere?" and drop deliveries by event, per row, instead of
-- scanning. store_meta 'purge_seq' is where the last purge pass stopped.
CREATE INDEX outbox_seq ON outbox (seq);
CREATE INDEX dead_letters_seq ON dead_letters (seq);
CREATE INDEX deliveries_seq ON deliveries (seq);
