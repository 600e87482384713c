-- The outbox poll costs what is due, not what is pending.
--
-- outbox.head marks the one row of each (sink, record) that may be delivered next:
-- the record's oldest waiting row for the sink, unless a holding dead letter of an
-- earlier event of the record holds it. Pending reads heads only, through the
-- partial index outbox_heads, so a sink that is down for a day with a large backlog
-- polls its due heads, not every waiting row. The store keeps the flag on every
-- path (commit, delivered, retry, dead, replay, dismiss); see
-- docs/decisions/0012-continuous-delivery-and-outbox-heads.md.
ALTER TABLE outbox ADD COLUMN head INTEGER NOT NULL DEFAULT 0;

-- The rows the old Pending query would have handed out, due or not.
UPDATE outbox SET head = 1
WHERE NOT EXISTS (SELECT 1 FROM outbox h WHERE h.sink = outbox.sink AND h.record = outbox.record AND h.seq < outbox.seq)
  AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.sink = outbox.sink AND d.record = outbox.record
                  AND d.seq < outbox.seq AND d.state = 'holding');

CREATE INDEX outbox_heads ON outbox (sink, next_at, seq) WHERE head;
-- Pending no longer reads non-head rows by due time.
DROP INDEX outbox_due;

-- Recording a delivery costs the same however many are recorded: deliveries is
-- keyed by (sink, seq), which grows with every delivery, instead of (sink,
-- event_id), a hash that put each insert on a random page of an ever larger
-- index (with 200,000 deliveries recorded, 10x the cost per delivery). An event's
-- seq and its id name each other, so the key is as unique as before. WITHOUT
-- ROWID: the table is its key's b-tree, one insert per delivery.
CREATE TABLE deliveries_by_seq (
    sink         TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    delivered_at TEXT    NOT NULL,
    PRIMARY KEY (sink, seq)
) WITHOUT ROWID;
INSERT INTO deliveries_by_seq (sink, event_id, seq, attempts, delivered_at)
SELECT sink, event_id, seq, attempts, delivered_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_by_seq RENAME TO deliveries;
