package zalo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// deliverOfficials sends a notice addressed to the officials of the event's
// agency (Message.Officials) to each of them, as one notice per official: its
// own id (the event's and the official's), its own routes (an OA message to the
// user id, else ZNS by phone) and its own send records, so a redelivery sends
// only to those not yet reached. An alert to an official is not urgent at
// night: in quiet hours it waits, on every route, for the morning.
func (s *Sink) deliverOfficials(ctx context.Context, n *notice) error {
	ev := n.ev
	var list []pipeline.Official
	if s.officials != nil {
		list = s.officials(ev.Agency, ev.Rule)
	}
	if len(list) == 0 {
		return s.unsent(ctx, n, store.ZaloRouteUndeliverable, "no_officials",
			fmt.Sprintf("no official of agency %q or of an agency above it hears %s (agencies[].officials)", ev.Agency, ev.Rule))
	}
	if end, in := s.quiet.until(n.now); in {
		return s.deferred(end.Sub(n.now), end)
	}
	// Every official is tried even when one fails: the others are not held back.
	// The error returned is one that brings the event back (transient) if any
	// is; a permanent one only when nothing else is left to retry.
	var retry, permanent error
	for _, o := range list {
		child := *ev
		child.ID = officialNoticeID(ev.ID, o)
		msg := *ev.Message
		msg.UserID, msg.Phone, msg.Audience, msg.Officials = o.UserID, o.Phone, "", false
		child.Message = &msg
		prior, err := s.st.ZaloSends(ctx, s.name, child.ID, 0)
		if err != nil {
			return fmt.Errorf("zalo sink %q: %w", s.name, err)
		}
		if handled(prior) {
			continue
		}
		cn := &notice{ev: &child, rule: n.rule, now: n.now, prior: prior}
		if s.cit != nil {
			// An official who sent HUY TIN to the OA is left alone, as a citizen is.
			stopped, err := s.stopped(ctx, &msg)
			if err != nil {
				return err
			}
			if stopped {
				if err := s.unsent(ctx, cn, store.ZaloRouteUndeliverable, "stopped_by_citizen",
					"the official asked for no proactive message (HUY TIN)"); err != nil {
					return err
				}
				continue
			}
		}
		err = s.routes(ctx, cn)
		switch {
		case err == nil:
		case pipeline.IsPermanent(err):
			if permanent == nil {
				permanent = err
			}
		case retry == nil:
			retry = err
		}
	}
	if retry != nil {
		return retry
	}
	return permanent
}

// officialNoticeID derives an official's notice id from the event's and the
// official's contact, so it is the same on every redelivery; 32 hex characters
// fit Zalo's tracking_id.
func officialNoticeID(eventID string, o pipeline.Official) string {
	sum := sha256.Sum256([]byte(eventID + "\x00official:" + o.UserID + "\x00" + o.Phone))
	return hex.EncodeToString(sum[:16])
}
