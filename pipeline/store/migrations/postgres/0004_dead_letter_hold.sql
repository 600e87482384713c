-- Per-record order survives dead letters and replay.
--
-- dead_letters.record (source/entity/key, as in outbox.record) lets Pending hold a
-- record's later events behind its dead letter with one indexed look-up, and lets
-- a delivery mark the record's older dead letters superseded.
--
-- dead_letters.state:
--   holding     made under on_dead: hold; the record's later events for the sink
--               wait until it is replayed or dismissed
--   open        made under on_dead: skip; later events flow; replayable until a
--               newer event of the record is delivered to the sink
--   superseded  a newer event of the record reached the sink: never resent, so no
--               consumer receives an older version after a newer one
--   dismissed   an operator gave it up (replay --dismiss): never resent
--
-- outbox.replayed_at restarts an event's age (for max_age) when it, or the dead
-- letter that held it, is replayed.
ALTER TABLE dead_letters ADD COLUMN record text NOT NULL DEFAULT '';
ALTER TABLE dead_letters ADD COLUMN state text NOT NULL DEFAULT 'open';
ALTER TABLE dead_letters ADD COLUMN state_at timestamptz;
ALTER TABLE outbox ADD COLUMN replayed_at timestamptz;

UPDATE dead_letters SET record = (SELECT e.source || '/' || e.entity || '/' || e.key FROM events e WHERE e.seq = dead_letters.seq);

-- Dead letters made before this migration did not hold their records: when a newer
-- event of the record already reached the sink, resending them would deliver an
-- older version after a newer one.
UPDATE dead_letters SET state = 'superseded', state_at = at
WHERE EXISTS (
    SELECT 1 FROM deliveries v JOIN events e ON e.seq = v.seq
    WHERE v.sink = dead_letters.sink AND v.seq > dead_letters.seq
      AND e.source || '/' || e.entity || '/' || e.key = dead_letters.record);

CREATE INDEX dead_letters_record ON dead_letters (sink, record, seq);
