// Package zalo is the `type: zalo` sink: it sends each rule's notice to the citizen
// through the province's Zalo Official Account, by the cheapest route that works,
// once: an OA message to the follower linked to the phone, else a ZNS template by
// phone, else it records the notice as undeliverable with the reason.
//
// The OA's token pair lives in the state store (pipeline.Env.State): the refresh
// token is single-use, so each new pair is stored before it is used, and one process
// at a time refreshes (the store's named lock). A refresh token Zalo refuses stops
// the sink with a transient *RefusedError until `egov-bridge zalo token set`. Every
// message sent and every notice not sent is recorded (store.ZaloSend), so a
// redelivered event is not sent twice and each month's routes and costs can be
// counted. README "Zalo OA" is the operator's guide; docs/decisions/0013 lists the
// Zalo API facts relied on.
//
// With a citizens block the sink also serves Zalo's webhook (Mount: POST
// /webhooks/zalo): signed events are committed to the store's inbox and handled by
// a worker (follows, shared phones, commands), look-ups answer from the synced
// records through the store's look-up index, topic notices fan out to subscribers
// by commune or ward (package places), and every answer is an outbox event the
// sink delivers to itself as a reply. README "Citizens on the OA" is the guide;
// docs/decisions/0015 the choices and the Zalo facts behind them.
package zalo
