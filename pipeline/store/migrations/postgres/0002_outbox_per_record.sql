-- Delivery order is kept per record, not per sink: a failed event holds back only
-- the later events of the same record, so one citizen's bad phone number does not
-- stall every other notification. outbox.record identifies the record
-- (source/entity/key) so the hold-back check is one indexed lookup.
ALTER TABLE outbox ADD COLUMN record text NOT NULL DEFAULT '';
UPDATE outbox SET record = (SELECT e.source || '/' || e.entity || '/' || e.key FROM events e WHERE e.seq = outbox.seq);
CREATE INDEX outbox_record ON outbox (sink, record, seq);
