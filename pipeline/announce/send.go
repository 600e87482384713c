package announce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// System is the actor of the steps the daemon takes itself (start, finish).
const System = "egov-bridge"

// LockName is the store lock one replica holds while it sends announcements.
const LockName = "announce"

// concurrency is how many recipients of a batch are sent to at once (the
// channel's rate limit still holds).
const concurrency = 8

// Run sends announcements until ctx ends: every poll it starts those scheduled
// and due (outside quiet hours) and goes on with those being sent, including
// those a crashed process left half-sent. One replica sends at a time.
func (s *Service) Run(ctx context.Context, poll time.Duration) error {
	if poll <= 0 {
		poll = time.Second
	}
	var lock store.Lock
	defer func() {
		if lock != nil {
			lock.Unlock()
		}
	}()
	for {
		if lock == nil || !lock.Held(ctx) {
			l, ok, err := s.st.TryLock(ctx, LockName)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("announcements: cannot take the send lock", "err", err)
			}
			if ok {
				lock = l
			}
		}
		if lock != nil {
			if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("announcements: sending failed; will try again", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// Tick does one round of sending: every announcement being sent (or cancelled
// with recipients in doubt) goes on, then due scheduled ones start. It returns
// when each has no recipient left, is paused by quiet hours, or ctx ends.
func (s *Service) Tick(ctx context.Context) error {
	now := s.now()
	if _, quiet := s.reg.QuietHours.In(now, s.zone); quiet {
		return nil
	}
	due, err := s.st.Announcements(ctx, store.AnnouncementFilter{States: []string{StateScheduled}})
	if err != nil {
		return err
	}
	for i := len(due) - 1; i >= 0; i-- { // oldest first
		a := due[i]
		if a.SendAt.After(now) {
			continue
		}
		if err := s.start(ctx, a); err != nil && !IsRefused(err) {
			return err
		}
	}
	active, err := s.st.Announcements(ctx, store.AnnouncementFilter{States: []string{StateSending, StateCancelled}})
	if err != nil {
		return err
	}
	for i := len(active) - 1; i >= 0; i-- {
		a := active[i]
		if a.Recipients == 0 || a.Sent+a.Failed+a.Unreachable+a.OptedOut+a.Cancelled >= a.Recipients {
			if a.State == StateSending {
				if err := s.finish(ctx, a); err != nil {
					return err
				}
			}
			continue
		}
		if err := s.send(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// start lists the recipients of a due announcement and writes them with the
// move to sending. The caps are checked again against the real count.
func (s *Service) start(ctx context.Context, a store.Announcement) error {
	d, m, err := s.checkStored(a)
	if err == nil {
		ch := s.channels[a.OA]
		if ch == nil {
			err = refusef("no channel for OA sink %q", a.OA)
		} else {
			var ts []target
			if ts, err = s.recipients(ctx, d.Agency, d.Segment, ch.OAID()); err == nil {
				if err = s.checkCaps(ctx, a, messages(ts, m)); err == nil {
					rs := make([]store.AnnouncementRecipient, len(ts))
					for i, t := range ts {
						rs[i] = store.AnnouncementRecipient{UserID: t.UserID, Phone: t.Phone}
					}
					now := s.now()
					return s.st.StartAnnouncement(ctx, a.ID, rs, now,
						s.entry(System, "announcement start", a.Agency, fmt.Sprintf("announcement %d: sending to %d recipients", a.ID, len(rs)), now))
				}
			}
		}
	}
	if !IsRefused(err) {
		return err
	}
	// The regulation no longer allows it (changed since approval, or the
	// segment grew past the caps): it is not sent, and the log says why.
	now := s.now()
	s.log.Warn("announcement not sent: the regulation refuses it now", "announcement", a.ID, "agency", a.Agency, "reason", err.Error())
	return s.st.MoveAnnouncement(ctx, a.ID, []string{StateScheduled}, store.AnnouncementChange{State: StateCancelled, Reason: err.Error(), Finished: true, At: now},
		s.entry(System, "announcement cancel", a.Agency, fmt.Sprintf("announcement %d: not sent: %v", a.ID, err), now))
}

// messages counts the targets a message will be sent to (as the preview does).
func messages(ts []target, m Message) int {
	n := 0
	for _, t := range ts {
		if !t.stopped && (t.UserID != "" || m.ZNSTemplateID != "") {
			n++
		}
	}
	return n
}

// checkCaps refuses a send of n messages the agency's caps cannot take.
func (s *Service) checkCaps(ctx context.Context, a store.Announcement, n int) error {
	caps := s.reg.capsOf(a.Agency)
	if n <= a.Planned {
		return nil // reserved at approval
	}
	for _, c := range []struct {
		name string
		cap  int
		from func(time.Time) (time.Time, time.Time)
	}{{"daily", caps.Daily, s.day}, {"monthly", caps.Monthly, s.month}} {
		if c.cap == 0 {
			continue
		}
		from, to := c.from(a.SendAt)
		used, err := s.st.AnnouncementUsage(ctx, a.Agency, from, to, a.ID)
		if err != nil {
			return err
		}
		if used+n > c.cap {
			return refusef("%s cap: %s may send %d messages, %d are taken, the segment now has %d", c.name, a.Agency, c.cap, used, n)
		}
	}
	return nil
}

// finish marks a fully handled announcement sent.
func (s *Service) finish(ctx context.Context, a store.Announcement) error {
	now := s.now()
	err := s.st.MoveAnnouncement(ctx, a.ID, []string{StateSending}, store.AnnouncementChange{State: StateSent, Finished: true, At: now},
		s.entry(System, "announcement sent", a.Agency, fmt.Sprintf("announcement %d: %d sent, %d failed, %d not reachable, %d opted out, cost %d đồng",
			a.ID, a.Sent, a.Failed, a.Unreachable, a.OptedOut, a.Cost), now))
	if errors.Is(err, store.ErrStateChanged) {
		return nil // cancelled meanwhile
	}
	return err
}

// send goes on with one announcement: recipients left in doubt by a crash
// first, then batch after batch of pending ones, each claimed in a committed
// transaction before any message goes out and settled in another after.
func (s *Service) send(ctx context.Context, a store.Announcement) error {
	d, err := decodeDraft(a)
	if err != nil {
		return err
	}
	m, err := s.reg.message(a.ID, d.Title, d.Content)
	if err != nil {
		return err
	}
	ch := s.channels[a.OA]
	if ch == nil {
		return fmt.Errorf("announcement %d: no channel for OA sink %q", a.ID, a.OA)
	}
	from, to := s.month(s.now())
	used, err := s.st.OAMessages(ctx, a.OA, from, to)
	if err != nil {
		return err
	}
	sp := &sendState{s: s, a: a, m: m, ch: ch, freeLeft: s.reg.FreeQuota - used}
	doubt, err := s.st.AnnouncementRecipients(ctx, a.ID, RecipientSending, 0, 0)
	if err != nil {
		return err
	}
	for lo := 0; lo < len(doubt); lo += s.reg.Batch {
		batch := doubt[lo:min(lo+s.reg.Batch, len(doubt))]
		if later, err := sp.run(ctx, batch, true); err != nil || later {
			return err
		}
	}
	if a.State == StateCancelled {
		_, err := s.st.CancelRecipients(ctx, a.ID, s.now())
		return err
	}
	for a.State == StateSending {
		if _, quiet := s.reg.QuietHours.In(s.now(), s.zone); quiet {
			return nil // goes on when the quiet hours end
		}
		cur, err := s.st.Announcement(ctx, a.ID)
		if err != nil {
			return err
		}
		if cur.State != StateSending { // cancelled while sending
			if _, err := s.st.CancelRecipients(ctx, a.ID, s.now()); err != nil {
				return err
			}
			return nil
		}
		batch, err := s.st.ClaimRecipients(ctx, a.ID, s.reg.Batch, s.now())
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		if later, err := sp.run(ctx, batch, false); err != nil || later {
			return err // later: Zalo cannot take more now; the next tick goes on
		}
	}
	cur, err := s.st.Announcement(ctx, a.ID)
	if err != nil {
		return err
	}
	states, err := s.st.RecipientStates(ctx, a.ID)
	if err != nil {
		return err
	}
	if cur.State == StateSending && states[RecipientPending] == 0 && states[RecipientSending] == 0 {
		return s.finish(ctx, cur)
	}
	return nil
}

// sendState is one announcement's send in progress.
type sendState struct {
	s        *Service
	a        store.Announcement
	m        Message
	ch       Channel
	mu       sync.Mutex
	freeLeft int // the OA's free quota left this month, when Zalo does not say
}

// run sends to a claimed batch and settles it. inDoubt rows were claimed by an
// earlier process: each is first checked with Zalo and sent only if Zalo does
// not have it. Rows whose send failed for a transient reason stay claimed (in
// doubt) and are retried the same way, at a later tick (later is true); ctx
// ending leaves them so too.
func (sp *sendState) run(ctx context.Context, batch []store.AnnouncementRecipient, inDoubt bool) (later bool, err error) {
	results := make([]*store.AnnouncementRecipient, len(batch))
	var firstErr error
	var mu sync.Mutex
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := range batch {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := sp.one(ctx, batch[i], inDoubt)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			results[i] = r
		}(i)
	}
	wg.Wait()
	var settled []store.AnnouncementRecipient
	for _, r := range results {
		if r != nil {
			settled = append(settled, *r)
		}
	}
	if len(settled) > 0 {
		// Recorded even when ctx has ended: these messages have gone.
		if err := sp.s.st.SettleRecipients(context.WithoutCancel(ctx), sp.a.ID, settled); err != nil {
			return false, err
		}
	}
	if firstErr != nil {
		wait := 5 * time.Second
		if w, ok := pipeline.RetryAfterOf(firstErr); ok {
			wait = w
		}
		sp.s.log.Warn("announcement: some recipients could not be sent to now; they will be tried again",
			"announcement", sp.a.ID, "err", pipeline.LogText(firstErr), "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(min(wait, time.Minute)):
		}
		return true, nil
	}
	return false, ctx.Err()
}

// one handles one recipient; nil result (with nil error) never happens: an
// error leaves the recipient claimed for a later try.
func (sp *sendState) one(ctx context.Context, r store.AnnouncementRecipient, inDoubt bool) (*store.AnnouncementRecipient, error) {
	st := sp.s.st
	to := Recipient{UserID: r.UserID, Phone: r.Phone}
	done := func(state, route, detail string) *store.AnnouncementRecipient {
		r.State, r.Route, r.Detail, r.DoneAt = state, route, detail, sp.s.now()
		return &r
	}
	if inDoubt {
		got, err := sp.ch.Received(ctx, sp.m, to, r.AttemptAt.Add(-time.Minute))
		switch {
		case errors.Is(err, ErrCannotTell):
			// Sending again could message the citizen twice; the regulation
			// prefers one missed announcement to a duplicate.
			return done(RecipientFailed, RouteZNS, "in doubt after a restart: the route cannot say whether it was received, not sent again"), nil
		case err != nil:
			return nil, err
		case got:
			res := done(RecipientSent, RouteOA, "confirmed with Zalo after a restart")
			sp.cost(res)
			sp.record(res, false)
			return res, nil
		}
		if sp.a.State != StateSending {
			return done(RecipientCancelled, "", "cancelled"), nil
		}
	}
	// HUY TIN is honoured up to the moment of sending.
	if r.UserID != "" {
		f, err := st.ZaloFollower(ctx, sp.ch.OAID(), r.UserID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return done(RecipientUnreachable, "", "no longer a follower"), nil
		case err != nil:
			return nil, err
		case !f.StoppedAt.IsZero():
			return done(RecipientOptedOut, "", "asked for no proactive message (HUY TIN)"), nil
		case !f.Followed:
			if r.Phone == "" {
				return done(RecipientUnreachable, "", "unfollowed the OA"), nil
			}
			to.UserID = ""
		}
	} else if r.Phone != "" {
		f, err := st.ZaloFollowerByPhone(ctx, sp.ch.OAID(), r.Phone)
		if err == nil && !f.StoppedAt.IsZero() {
			return done(RecipientOptedOut, "", "asked for no proactive message (HUY TIN)"), nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	res, err := sp.ch.Announce(ctx, sp.m, to)
	if err != nil {
		return nil, err
	}
	out := done(res.State, res.Route, res.Detail)
	out.Code, out.MessageID, out.QuotaType = res.Code, res.MessageID, res.QuotaType
	if res.State == RecipientSent {
		sp.cost(out)
		sp.record(out, res.DryRun)
	}
	return out, nil
}

// Rule is the rule name an announcement's messages carry in zalo_sends.
const Rule = "announcement"

// record attaches a sent message's row of zalo_sends, written with the settle:
// the OA's notices and announcements are counted in that one table, by the
// figures, `zalo status` and the proactive quota alike.
func (sp *sendState) record(r *store.AnnouncementRecipient, dryRun bool) {
	r.Send = &store.ZaloSend{Sink: sp.a.OA, EventID: fmt.Sprintf("announcement/%d/%d", sp.a.ID, r.N), Parts: 1,
		OAID: sp.ch.OAID(), Route: r.Route, Agency: sp.a.Agency, Rule: Rule, Month: r.DoneAt.In(sp.s.zone).Format("2006-01"),
		MessageID: r.MessageID, QuotaType: r.QuotaType, DryRun: dryRun, At: r.DoneAt}
}

// cost prices a sent message: ZNS always; an OA message when Zalo drew it from
// a purchased quota, or, when Zalo does not say, beyond the free quota.
func (sp *sendState) cost(r *store.AnnouncementRecipient) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	switch {
	case r.Route == RouteZNS:
		r.Cost = sp.s.reg.Prices.ZNS
	case r.QuotaType == "purchase_quota":
		r.Cost = sp.s.reg.Prices.OA
	case r.QuotaType == "" && sp.freeLeft <= 0:
		r.Cost = sp.s.reg.Prices.OA
	}
	if r.Route == RouteOA {
		sp.freeLeft--
	}
}
