-- A fresh first sync may load an empty snapshot without the indexes whose keys
-- arrive in random order (decision 0026, on PostgreSQL since decision 0032):
-- the primary key and the four partial fact indexes are dropped while it loads
-- and built once, sorted, when it ends. This row says they are missing, so that
-- whoever needs them next (a look-up, a commit of a known record, a store
-- reopened after a crash, another replica) builds them first.
CREATE TABLE snapshot_bulk (
    source     text   NOT NULL PRIMARY KEY,
    began_at   bigint NOT NULL
);
