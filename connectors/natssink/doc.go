// Package natssink is the `type: nats` sink: it publishes every event to a NATS
// JetStream stream, from which any number of consumers (dashboards, the operations
// centre, other replicas' services) read at their own pace.
//
//	sinks:
//	  - name: bus
//	    type: nats
//	    url: nats://nats-1:4222,nats://nats-2:4222
//	    credentials_file: /run/secrets/egov.creds
//	    stream: EGOV_EVENTS           # created when missing (create_stream: true)
//	    subject_prefix: egov.events
//	    duplicate_window: 2m
//	    max_age: 720h
//
// # Subjects
//
// An event is published on
//
//	<subject_prefix>.<entity>.<agency>      e.g. egov.events.dossier.ubnd-cg
//
// where entity and agency are reduced to subject tokens (see Token): Vietnamese
// diacritics removed, lower case, anything but a-z, 0-9, '_' and '-' replaced by
// '_', and "_" for an empty agency. Consumers filter with wildcards:
// egov.events.dossier.* (every dossier), egov.events.*.ubnd-cg (one agency),
// egov.events.> (everything). The reduction can map two agencies to one token; the
// event body holds the exact values.
//
// The stream is created with subjects [<subject_prefix>.>] when missing. A stream
// that already exists is used as it is if its subjects cover every
// <subject_prefix>.<entity>.<agency>; otherwise the daemon refuses to start and says
// what to change.
//
// # Messages
//
// The body is the event as JSON, the same shape the log sink writes. Headers:
//
//	Nats-Msg-Id      the event id (JetStream's deduplication key)
//	Egov-Event-Type  created, updated, deleted, or the rule's event name
//	Egov-Entity      the entity, e.g. dossier
//	Egov-Key         the record key (control characters become spaces)
//	Egov-Version     the per-key version, a decimal integer that only grows
//
// # Delivery and deduplication
//
// Delivery is at least once: the engine redelivers an event when it cannot be sure
// it was stored (a timeout, a crash before the outbox was updated). The event id is
// deterministic, so a redelivery carries the same id, and JetStream drops a message
// whose Nats-Msg-Id it has seen within the stream's duplicate window
// (duplicate_window, default 2m). A redelivery after a longer outage is stored
// again. Consumers must therefore treat the event id as an idempotency key:
// remember the ids they have applied (or, for state, keep the highest Version per
// entity and key and ignore anything not newer) and skip repeats. Events of one key
// are published in version order.
//
// # Errors and connection loss
//
// The connection reconnects by itself, forever. The daemon starts even when NATS is
// down; while it is, deliveries fail at once with a transient error (wrapping
// ErrNotConnected) and the engine retries them with backoff. No responders,
// timeouts and a lost connection are transient too. JetStream refusing a message for
// its size (larger than max_payload or the stream's max_msg_size) is permanent: the
// event goes to dead letters with the reason. A stream that does not fit — a sealed
// stream, subjects stored by another stream than the configured one, or a mismatch
// found only at delivery time (NATS was down when the daemon started) — fails
// deliveries transiently with the reason, so that they resume by themselves once an
// operator fixes the stream, with nothing to replay.
// Credentials never appear in errors or logs.
package natssink
