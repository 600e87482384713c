// Package webhook is the `type: webhook` sink: it POSTs each event, as JSON, to a
// dashboard's or the operations centre's HTTP endpoint, signed with a shared secret.
//
// # The request
//
// One event per request:
//
//	POST <url>
//	Content-Type: application/json
//	User-Agent: egov-bridge
//	Idempotency-Key: <event id>
//	X-Egov-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//	<headers from the config>
//
//	{"id":"…","type":"updated","source":"motcua-cangiuoc","entity":"dossier",
//	 "key":"000.00.01.H45-250310-0001","version":7,"changed":["status"],
//	 "before":{…},"after":{…},"detected_at":"2026-11-27T01:02:03Z"}
//
// The body is the pipeline.Event JSON encoding. X-Egov-Signature is sent only when
// the sink has a secret.
//
// # What a receiver must do
//
// Verify, on the raw body bytes, before decoding them:
//
//	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
//	if err := webhook.Verify(secret, r.Header.Get("X-Egov-Signature"), body, time.Now(), 5*time.Minute); err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//
// A receiver in another language recomputes HMAC-SHA256 with the secret as key over
// the t value, a ".", and the body, compares it with v1 in constant time, and
// refuses a t more than a few minutes from its own clock (a replay).
//
// Deduplicate on Idempotency-Key. Delivery is at-least-once: after a timeout, a
// crash or a lost response the same event is sent again, with the same id (and a
// fresh signature). Store the id with the event, in the same transaction,
// and answer 2xx when it is already there; never 409, which would dead-letter it.
//
// Events reach each sink in the order they were committed, but a redelivery can
// repeat an earlier event after later ones. Each event carries a version that only
// grows per (source, entity, key): keep the highest seen and drop anything older.
//
// # How the answer is read
//
//   - 2xx: delivered. Answer only once the event is stored.
//   - 408, 425, 429, 5xx, no answer within timeout, network errors: retried later
//     with backoff. A Retry-After header (seconds or an HTTP date) on these asks
//     for a longer wait; it is honoured up to MaxRetryAfter.
//   - 400, 409, 413, 422: this event is refused for good; it goes to dead letters
//     (replayable) with the status and the start of the response body as the
//     reason, so put a human-readable explanation in the body.
//   - 401, 403 (a rotated key), 404, 405, 410 (an endpoint moved or gone in a
//     redeploy), 3xx, and any other 4xx: the receiver refuses the sink, not the
//     event. Retried like an outage (the events wait until max_age) and alerted
//     on: a *RefusedError whose AlertReason ("http_401", …) the dispatcher turns
//     into egov_delivery_alert{sink,reason} and one ERROR log line per change.
//     Redirects are not followed, because re-sending a signed POST somewhere else
//     is not a delivery; the error names the Location to configure.
//
// The sink never retries on its own: the dispatcher owns retries, backoff and dead
// letters. Errors name the sink and the receiver's host, never the configured URL's
// path, query or userinfo, nor the secret; a redirect's Location is named without
// its userinfo and query.
package webhook
