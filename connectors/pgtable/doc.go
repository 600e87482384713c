// Package pgtable is the `type: pgtable` sink: it mirrors events into PostgreSQL
// tables that BI tools (Metabase, Superset, Grafana) read directly, so dashboards need
// no access to the daemon or to any agency database.
//
//	sinks:
//	  - name: bi
//	    type: pgtable
//	    dsn_file: /run/secrets/bi-dsn   # postgres://egov_sync@bi-db:5432/bi?sslmode=require
//	    schema: egov_sync               # default; created when missing
//	    events_table: events            # default
//	    state_table_prefix: current_    # default: entity dossier -> current_dossier
//	    max_open_conns: 4               # default
//
// # Tables
//
// The sink creates what it needs (CREATE ... IF NOT EXISTS under a PostgreSQL
// advisory lock, so replicas starting together do not race): the schema and the
// events table when it is built, and an entity's state table on that entity's first
// event. A DBA may create them beforehand instead and grant the sink's user only
// SELECT, INSERT and UPDATE; the sink checks that a table exists before trying to
// create it.
//
// The events table is append-only, one row per event id:
//
//	CREATE TABLE egov_sync.events (
//		seq          bigint GENERATED ALWAYS AS IDENTITY, -- arrival order
//		event_id     text PRIMARY KEY,   -- deterministic: the idempotency key
//		type         text NOT NULL,      -- created | updated | deleted | a rule's event
//		rule         text,               -- the mapping rule that fired, if any
//		source       text NOT NULL,
//		entity       text NOT NULL,
//		key          text NOT NULL,
//		agency       text,
//		version      bigint NOT NULL,    -- grows by one per change of (source, entity, key)
//		epoch        bigint NOT NULL DEFAULT 0, -- the state store's creation time (µs); orders with version
//		snapshot     boolean NOT NULL DEFAULT false, -- part of a source's first sync
//		changed      text[],             -- names of the fields that changed
//		before       jsonb,
//		after        jsonb,
//		message      jsonb,              -- a rendered notification {template, text, phone}
//		detected_at  timestamptz NOT NULL,
//		delivered_at timestamptz NOT NULL DEFAULT now()
//	);
//	-- indexes: (seq), (entity, key, version), (detected_at), (agency, detected_at)
//
// Each entity has a current-state table, <state_table_prefix><entity>, holding the
// latest version of every record:
//
//	CREATE TABLE egov_sync.current_dossier (
//		key        text NOT NULL,
//		source     text NOT NULL,
//		agency     text,
//		version    bigint NOT NULL,
//		epoch      bigint NOT NULL DEFAULT 0,
//		fields     jsonb NOT NULL,         -- the record's fields, as the mapping typed them
//		updated_at timestamptz NOT NULL,   -- detected_at of the event that wrote the row
//		deleted    boolean NOT NULL DEFAULT false,
//		deleted_at timestamptz,            -- detected_at of the deleted event; NULL while live
//		PRIMARY KEY (key, source)
//	);
//
// The key is (key, source) because versions grow per source: two sources that share
// a key never overwrite each other. A deleted record keeps its row, with deleted =
// true, deleted_at and its last known fields, so counts can include or exclude it;
// a record that comes back is live again (deleted_at NULL). Tables made by an
// earlier build gain the columns added since (epoch, deleted_at) when the sink
// starts.
//
// # Delivery
//
// One transaction per event: the event row is inserted unless its id is already
// there (ON CONFLICT (event_id) DO NOTHING), and the state row is upserted only when
// the event's (epoch, version) is greater than the stored one (ON CONFLICT ... DO
// UPDATE ... WHERE (stored.epoch, stored.version) < (new.epoch, new.version)). The
// epoch is when the daemon's state store was created: a store rebuilt from nothing
// counts versions from 1 again under a later epoch, and its events still win.
// Tables created before the epoch column existed gain it on the sink's first use. Redelivery after a crash therefore leaves one
// event row, and a stale or reordered event never rolls state back. Rule events carry
// the version of the change they belong to, so they do not touch state again.
//
// Entity names become table names: they must be lower-case letters, digits and
// underscores, or the event is refused as permanent. Every identifier is quoted and
// every value is a bound parameter. NUL characters and invalid UTF-8, which
// PostgreSQL refuses in text and jsonb, are stored as U+FFFD. Times have microsecond
// precision in PostgreSQL.
//
// Errors are classed by SQLSTATE: data errors (22xxx, 23xxx, 54xxx) are permanent
// and go to dead letters; connection trouble (08xxx), serialization failures and
// deadlocks (40001, 40P01), exhausted resources (53xxx), cancels and shutdowns
// (57xxx), and anything else are transient and retried. The DSN and its password
// never appear in errors or logs.
//
// # Reading the tables
//
// Fields are JSON; ->> reads one as text, then cast it. Times are RFC 3339 strings.
// Overdue dossiers by agency, from the state table:
//
//	SELECT agency, count(*) AS overdue
//	FROM egov_sync.current_dossier
//	WHERE NOT deleted
//	  AND (fields->>'status')::int IN (2, 4, 5, 6)
//	  AND (fields->>'due_at')::timestamptz < now()
//	GROUP BY agency
//	ORDER BY overdue DESC;
//
// Dossiers received per agency and day, from the event feed:
//
//	SELECT agency, date_trunc('day', detected_at AT TIME ZONE 'Asia/Ho_Chi_Minh') AS day, count(*)
//	FROM egov_sync.events
//	WHERE entity = 'dossier' AND type = 'created' AND NOT snapshot
//	GROUP BY 1, 2;
//
// A feed reader that pages by seq should stay a few seconds behind the newest row:
// seq is taken when a transaction inserts, and concurrent transactions may commit
// out of seq order.
package pgtable
