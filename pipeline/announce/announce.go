// Package announce runs proactive announcements (tuyên truyền chủ động) under the
// province's regulation of its Zalo channel: an agency's author drafts an
// announcement (a title, a text or an approved template, an optional link and
// image, a segment of citizens and a send time), an approver who is not its author
// approves it, a sender schedules it, and the daemon sends it through the agency's
// OA, one recorded recipient at a time, resumable after a crash without sending
// anyone twice. Who may do what, to whom each agency may speak, quiet hours and
// caps come from the regulation file (Regulation); every step is written to the
// audit log with who and when, in the transaction that makes it.
//
// The package reaches Zalo through Channel, which connectors/zalo implements.
package announce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// States of an announcement.
const (
	StateDraft     = "draft"
	StateSubmitted = "submitted"
	StateApproved  = "approved"
	StateRejected  = "rejected"
	StateScheduled = "scheduled"
	StateSending   = "sending"
	StateSent      = "sent"
	StateCancelled = "cancelled"
)

// States of a recipient.
const (
	RecipientPending     = "pending"
	RecipientSending     = "sending"
	RecipientSent        = "sent"
	RecipientFailed      = "failed"
	RecipientUnreachable = "unreachable"
	RecipientOptedOut    = "opted_out"
	RecipientCancelled   = "cancelled"
)

// Routes a recipient is reached by.
const (
	RouteOA  = "oa"
	RouteZNS = "zns"
)

// Store is what announcements need of the state store (store.Store's backends
// implement it).
type Store interface {
	CreateAnnouncement(ctx context.Context, a store.Announcement, audit store.AuditEntry) (int64, error)
	EditAnnouncement(ctx context.Context, a store.Announcement, from []string, audit store.AuditEntry) error
	MoveAnnouncement(ctx context.Context, id int64, from []string, ch store.AnnouncementChange, audit store.AuditEntry) error
	Announcement(ctx context.Context, id int64) (store.Announcement, error)
	Announcements(ctx context.Context, f store.AnnouncementFilter) ([]store.Announcement, error)
	AnnouncementUsage(ctx context.Context, agency string, from, to time.Time, except int64) (int, error)
	StartAnnouncement(ctx context.Context, id int64, rs []store.AnnouncementRecipient, at time.Time, audit store.AuditEntry) error
	AnnouncementRecipients(ctx context.Context, id int64, state string, after, limit int) ([]store.AnnouncementRecipient, error)
	ClaimRecipients(ctx context.Context, id int64, limit int, at time.Time) ([]store.AnnouncementRecipient, error)
	SettleRecipients(ctx context.Context, id int64, rs []store.AnnouncementRecipient) error
	CancelRecipients(ctx context.Context, id int64, at time.Time) (int, error)
	RecipientStates(ctx context.Context, id int64) (map[string]int, error)
	OAMessages(ctx context.Context, oa string, from, to time.Time) (int, error)

	Followers(ctx context.Context, oaID, after string, limit int) ([]store.ZaloFollower, error)
	ZaloFollower(ctx context.Context, oaID, userID string) (store.ZaloFollower, error)
	ZaloFollowerByPhone(ctx context.Context, oaID, phone string) (store.ZaloFollower, error)
	Subscribers(ctx context.Context, oaID, topic string, places []string) ([]store.ZaloSubscription, error)
	PlaceFollowers(ctx context.Context, oaID string, places []string) ([]string, error)
	OpenRecords(ctx context.Context, kind string, agencies []string) ([]store.FactRecord, error)
	Snapshot(ctx context.Context, source, entity string, keys []string) (map[string]store.SnapshotEntry, error)
	IndexLookup(entity, name string, fn store.IndexFunc)
	FillLookupIndex(ctx context.Context, entity, name string, at time.Time) (bool, error)
	LookupRecordsAfter(ctx context.Context, entity, name, value, afterSource, afterKey string, limit int) ([]store.LookupHit, error)

	TryLock(ctx context.Context, name string) (store.Lock, bool, error)
}

// Recipient is one citizen to reach: a follower of the OA (UserID) or, for a
// citizen who does not follow it, a phone (84xxxxxxxxx).
type Recipient struct {
	UserID string
	Phone  string
}

// Result is how one send ended.
type Result struct {
	State     string // RecipientSent, RecipientFailed or RecipientUnreachable
	Route     string
	Code      int // Zalo's error code, when it refused
	Detail    string
	MessageID string
	QuotaType string // Zalo's quota_type: sub_quota (free), purchase_quota (paid), ...
	DryRun    bool   // the channel only rehearsed the send
}

// Channel is an OA that can carry announcements (connectors/zalo's sink).
type Channel interface {
	// OAID is the Official Account's id, whose followers the segments list.
	OAID() string
	// Announce sends m to one recipient: a promotion message to a follower, or
	// the message's ZNS template by phone. A refusal is a Result; an error means
	// the outcome is unknown or the send could not be tried now (network, token,
	// rate limit) and the recipient is tried again later.
	Announce(ctx context.Context, m Message, to Recipient) (Result, error)
	// Received reports whether Zalo already holds m for the recipient, sent at or
	// after since: after a crash a claimed recipient is sent again only if not.
	// ErrCannotTell when the route offers no way to know.
	Received(ctx context.Context, m Message, to Recipient, since time.Time) (bool, error)
}

// ErrCannotTell is Channel.Received's answer when the route keeps no record the
// daemon can read (ZNS by phone).
var ErrCannotTell = errors.New("cannot tell whether the message was received")

// Service applies the regulation to announcements and sends them.
type Service struct {
	reg      *Regulation
	st       Store
	dir      *figures.Directory
	channels map[string]Channel // by zalo sink name
	oaOf     map[string]string  // agency -> its own zalo sink, from the config
	// residence are the records that place citizens in communes (area segment).
	residence []Residence
	clock     pipeline.Clock
	zone      *time.Location
	log       *slog.Logger
}

// Options wire a Service.
type Options struct {
	Regulation *Regulation
	Store      Store
	Agencies   []figures.Agency
	// Channels are the zalo sinks that can carry announcements, by sink name.
	Channels map[string]Channel
	// Residence are the records that place citizens in communes and wards
	// (config announcements.residence), for the area segment.
	Residence []Residence
	Clock     pipeline.Clock
	Zone      *time.Location
	Logger    *slog.Logger
}

// New checks that every agency's OA can carry announcements and returns the service.
func New(o Options) (*Service, error) {
	s := &Service{reg: o.Regulation, st: o.Store, dir: figures.NewDirectory(o.Agencies), channels: o.Channels,
		oaOf: map[string]string{}, clock: o.Clock, zone: o.Zone, log: o.Logger}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.zone == nil {
		s.zone = time.UTC
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.reg.OA == "" && len(s.channels) == 1 {
		for name := range s.channels {
			s.reg.OA = name
		}
	}
	if s.reg.OA != "" {
		if _, ok := s.channels[s.reg.OA]; !ok {
			return nil, fmt.Errorf("announcement regulation: oa: no zalo sink is named %q", s.reg.OA)
		}
	}
	for _, a := range o.Agencies {
		if a.OA == "" {
			continue
		}
		if _, ok := s.channels[a.OA]; !ok {
			return nil, fmt.Errorf("agencies: %s: oa: sink %q is not a zalo sink", a.Code, a.OA)
		}
		s.oaOf[a.Code] = a.OA
	}
	if err := s.indexResidence(o.Residence); err != nil {
		return nil, err
	}
	return s, nil
}

// Regulation returns the regulation in force.
func (s *Service) Regulation() *Regulation { return s.reg }

// Directory returns the province's agencies.
func (s *Service) Directory() *figures.Directory { return s.dir }

// oaFor is the zalo sink an agency speaks through: its own, else its nearest
// parent's, else the province's.
func (s *Service) oaFor(agency string) (string, error) {
	for _, code := range append([]string{agency}, s.dir.Ancestors(agency)...) {
		if oa, ok := s.oaOf[code]; ok {
			return oa, nil
		}
	}
	if s.reg.OA == "" {
		return "", fmt.Errorf("no OA: agency %s has none of its own and the regulation names no province OA (oa:)", agency)
	}
	return s.reg.OA, nil
}

// Draft is what an author writes.
type Draft struct {
	Agency  string    `json:"agency"`
	Title   string    `json:"title"`
	Content Content   `json:"content"`
	Segment Segment   `json:"segment"`
	SendAt  time.Time `json:"send_at"`
}

// Refused is a step the regulation does not allow, or input that is wrong; the
// message says which rule or field.
type Refused struct{ Msg string }

func (e *Refused) Error() string { return e.Msg }

func refusef(format string, args ...any) error { return &Refused{fmt.Sprintf(format, args...)} }

// IsRefused reports whether err is a refusal (the caller's doing, not a fault).
func IsRefused(err error) bool {
	var r *Refused
	return errors.As(err, &r) || errors.Is(err, store.ErrStateChanged) || errors.Is(err, store.ErrNotFound)
}

func (s *Service) now() time.Time { return s.clock().UTC() }

// check validates a draft against the regulation and returns the message.
func (s *Service) check(d Draft, id int64) (Message, string, error) {
	if _, ok := s.dir.Lookup(d.Agency); !ok {
		return Message{}, "", refusef("agency: no agency has code %q", d.Agency)
	}
	m, err := s.reg.message(id, d.Title, d.Content)
	if err != nil {
		return Message{}, "", refusef("%v", err)
	}
	if err := checkMessage(m); err != nil {
		return Message{}, "", refusef("%v", err)
	}
	if _, err := s.segmentPlaces(d.Agency, d.Segment); err != nil {
		return Message{}, "", err
	}
	if d.SendAt.IsZero() {
		return Message{}, "", refusef("send_at: give the time to send")
	}
	if end, in := s.reg.QuietHours.In(d.SendAt, s.zone); in {
		return Message{}, "", refusef("send_at: %s is in the quiet hours %s-%s; the earliest is %s",
			d.SendAt.In(s.zone).Format("15:04 02/01/2006"), s.reg.QuietHours.Start, s.reg.QuietHours.End, end.Format("15:04 02/01/2006"))
	}
	oa, err := s.oaFor(d.Agency)
	if err != nil {
		return Message{}, "", refusef("%v", err)
	}
	return m, oa, nil
}

func (s *Service) mayAct(agency string, role Role, who string) error {
	if who == "" {
		return refusef("who: unknown person")
	}
	if !s.reg.has(agency, role, who) {
		return refusef("%s is not an %s of %s under the regulation", who, role, agency)
	}
	return nil
}

func encode(v any) string {
	b, _ := json.Marshal(v) // plain structs: cannot fail
	return string(b)
}

// Create stores a new draft written by who, an author of its agency.
func (s *Service) Create(ctx context.Context, who string, d Draft) (int64, error) {
	if err := s.mayAct(d.Agency, Author, who); err != nil {
		return 0, err
	}
	_, oa, err := s.check(d, 0)
	if err != nil {
		return 0, err
	}
	now := s.now()
	a := store.Announcement{Agency: d.Agency, OA: oa, Title: strings.TrimSpace(d.Title), Content: encode(d.Content),
		Segment: encode(d.Segment), SendAt: d.SendAt.UTC(), State: StateDraft, Author: who, CreatedAt: now}
	return s.st.CreateAnnouncement(ctx, a, s.entry(who, "announcement draft", d.Agency, "drafted "+quote(a.Title), now))
}

// Edit replaces a draft (or a rejected announcement, which becomes a draft again);
// only its author may.
func (s *Service) Edit(ctx context.Context, who string, id int64, d Draft) error {
	a, err := s.st.Announcement(ctx, id)
	if err != nil {
		return err
	}
	if who != a.Author {
		return refusef("only the author %s may edit announcement %d", a.Author, id)
	}
	if d.Agency != a.Agency {
		return refusef("agency: an announcement stays with its agency %s", a.Agency)
	}
	if err := s.mayAct(d.Agency, Author, who); err != nil {
		return err
	}
	_, oa, err := s.check(d, id)
	if err != nil {
		return err
	}
	now := s.now()
	b := store.Announcement{ID: id, Agency: a.Agency, OA: oa, Title: strings.TrimSpace(d.Title), Content: encode(d.Content),
		Segment: encode(d.Segment), SendAt: d.SendAt.UTC(), State: StateDraft, UpdatedAt: now}
	return s.st.EditAnnouncement(ctx, b, []string{StateDraft, StateRejected},
		s.entry(who, "announcement edit", a.Agency, fmt.Sprintf("announcement %d: edited", id), now))
}

func (s *Service) entry(who, action, agency, detail string, at time.Time) store.AuditEntry {
	return store.AuditEntry{At: at, Actor: who, Action: action, Detail: detail + " (" + agency + ")"}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// Submit sends a draft to the agency's approvers.
func (s *Service) Submit(ctx context.Context, who string, id int64) error {
	a, err := s.st.Announcement(ctx, id)
	if err != nil {
		return err
	}
	if err := s.mayAct(a.Agency, Author, who); err != nil {
		return err
	}
	if _, _, err := s.checkStored(a); err != nil {
		return err
	}
	now := s.now()
	return s.st.MoveAnnouncement(ctx, id, []string{StateDraft}, store.AnnouncementChange{State: StateSubmitted, At: now},
		s.entry(who, "announcement submit", a.Agency, fmt.Sprintf("announcement %d: submitted for approval", id), now))
}

// Approve approves a submitted announcement: who must be an approver of its
// agency and not its author; its recipients are counted and must fit the
// agency's daily and monthly caps, which they then reserve.
func (s *Service) Approve(ctx context.Context, who string, id int64) error {
	a, err := s.st.Announcement(ctx, id)
	if err != nil {
		return err
	}
	if who == a.Author {
		return refusef("%s wrote announcement %d and cannot approve it: the regulation needs an approver who is not its author", who, id)
	}
	if err := s.mayAct(a.Agency, Approver, who); err != nil {
		return err
	}
	d, m, err := s.checkStored(a)
	if err != nil {
		return err
	}
	p, err := s.preview(ctx, a.ID, d, m, a.OA)
	if err != nil {
		return err
	}
	if len(p.Problems) > 0 {
		return refusef("announcement %d cannot be approved: %s", id, strings.Join(p.Problems, "; "))
	}
	planned := p.Messages()
	now := s.now()
	return s.st.MoveAnnouncement(ctx, id, []string{StateSubmitted}, store.AnnouncementChange{State: StateApproved, Approver: who, Planned: &planned, At: now},
		s.entry(who, "announcement approve", a.Agency, fmt.Sprintf("announcement %d: approved for %d recipients", id, planned), now))
}

// Reject returns a submitted announcement to its author with the reason.
func (s *Service) Reject(ctx context.Context, who string, id int64, reason string) error {
	a, err := s.st.Announcement(ctx, id)
	if err != nil {
		return err
	}
	if err := s.mayAct(a.Agency, Approver, who); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return refusef("reason: say why it is rejected")
	}
	now := s.now()
	return s.st.MoveAnnouncement(ctx, id, []string{StateSubmitted}, store.AnnouncementChange{State: StateRejected, Reason: reason, At: now},
		s.entry(who, "announcement reject", a.Agency, fmt.Sprintf("announcement %d: rejected: %s", id, reason), now))
}

// Schedule hands an approved announcement to the daemon, which sends it at its
// send time (at once if that has passed, outside quiet hours).
func (s *Service) Schedule(ctx context.Context, who string, id int64) error {
	a, err := s.st.Announcement(ctx, id)
	if err != nil {
		return err
	}
	if err := s.mayAct(a.Agency, Sender, who); err != nil {
		return err
	}
	now := s.now()
	return s.st.MoveAnnouncement(ctx, id, []string{StateApproved}, store.AnnouncementChange{State: StateScheduled, Sender: who, At: now},
		s.entry(who, "announcement schedule", a.Agency, fmt.Sprintf("announcement %d: scheduled for %s", id, a.SendAt.In(s.zone).Format("15:04 02/01/2006")), now))
}

// Cancel stops an announcement that is not finished: its author before it is
// approved; an approver or sender of its agency at any time, also while it is
// being sent (recipients not yet sent to are then cancelled).
func (s *Service) Cancel(ctx context.Context, who string, id int64, reason string) error {
	a, err := s.st.Announcement(ctx, id)
	if err != nil {
		return err
	}
	early := slices.Contains([]string{StateDraft, StateSubmitted, StateRejected}, a.State)
	if !(early && who == a.Author) && !s.reg.has(a.Agency, Approver, who) && !s.reg.has(a.Agency, Sender, who) {
		return refusef("%s may not cancel announcement %d: its author may before approval, its agency's approvers and senders at any time", who, id)
	}
	if reason == "" {
		reason = "cancelled"
	}
	now := s.now()
	err = s.st.MoveAnnouncement(ctx, id, []string{StateDraft, StateSubmitted, StateRejected, StateApproved, StateScheduled, StateSending},
		store.AnnouncementChange{State: StateCancelled, Reason: reason, Finished: true, At: now},
		s.entry(who, "announcement cancel", a.Agency, fmt.Sprintf("announcement %d: cancelled (was %s): %s", id, a.State, reason), now))
	if err != nil {
		return err
	}
	if a.State == StateSending {
		n, err := s.st.CancelRecipients(ctx, id, now)
		if err != nil {
			return err
		}
		s.log.Info("announcement cancelled while sending", "announcement", id, "recipients_cancelled", n)
	}
	return nil
}

// checkStored decodes a stored announcement and checks it again (the regulation
// may have changed since it was written).
func (s *Service) checkStored(a store.Announcement) (Draft, Message, error) {
	d, err := decodeDraft(a)
	if err != nil {
		return Draft{}, Message{}, err
	}
	m, _, err := s.check(d, a.ID)
	return d, m, err
}

func decodeDraft(a store.Announcement) (Draft, error) {
	d := Draft{Agency: a.Agency, Title: a.Title, SendAt: a.SendAt}
	if err := json.Unmarshal([]byte(a.Content), &d.Content); err != nil {
		return Draft{}, fmt.Errorf("announcement %d: stored content: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(a.Segment), &d.Segment); err != nil {
		return Draft{}, fmt.Errorf("announcement %d: stored segment: %w", a.ID, err)
	}
	return d, nil
}

// Get returns a stored announcement with its draft.
func (s *Service) Get(ctx context.Context, id int64) (store.Announcement, Draft, error) {
	a, err := s.st.Announcement(ctx, id)
	if err != nil {
		return store.Announcement{}, Draft{}, err
	}
	d, err := decodeDraft(a)
	return a, d, err
}

// List lists announcements of the agencies (nil: all), newest first.
func (s *Service) List(ctx context.Context, agencies []string, states []string, limit int) ([]store.Announcement, error) {
	return s.st.Announcements(ctx, store.AnnouncementFilter{Agencies: agencies, States: states, Limit: limit})
}

// Queue lists the submitted announcements who may approve: of agencies where who
// is an approver, not written by who.
func (s *Service) Queue(ctx context.Context, who string) ([]store.Announcement, error) {
	all, err := s.st.Announcements(ctx, store.AnnouncementFilter{States: []string{StateSubmitted}})
	if err != nil {
		return nil, err
	}
	var out []store.Announcement
	for _, a := range all {
		if a.Author != who && s.reg.has(a.Agency, Approver, who) {
			out = append(out, a)
		}
	}
	return out, nil
}

// AgencyReport is the reach, failures and cost of an agency's announcements.
type AgencyReport struct {
	Agency        string `json:"agency"`
	Name          string `json:"name"`
	Announcements int    `json:"announcements"`
	Recipients    int    `json:"recipients"`
	Sent          int    `json:"sent"`
	Failed        int    `json:"failed"`
	Unreachable   int    `json:"unreachable"`
	OptedOut      int    `json:"opted_out"`
	Cancelled     int    `json:"cancelled"`
	Paid          int    `json:"paid"`
	Cost          int64  `json:"cost"`
	Waiting       int    `json:"waiting_approval"`
}

// Report sums announcements per agency (of the agencies given; nil: all).
func (s *Service) Report(ctx context.Context, agencies []string) ([]AgencyReport, error) {
	all, err := s.st.Announcements(ctx, store.AnnouncementFilter{Agencies: agencies})
	if err != nil {
		return nil, err
	}
	by := map[string]*AgencyReport{}
	var order []string
	for _, a := range all {
		r := by[a.Agency]
		if r == nil {
			r = &AgencyReport{Agency: a.Agency, Name: s.dir.Name(a.Agency)}
			by[a.Agency] = r
			order = append(order, a.Agency)
		}
		r.Announcements++
		if a.State == StateSubmitted {
			r.Waiting++
		}
		r.Recipients += a.Recipients
		r.Sent += a.Sent
		r.Failed += a.Failed
		r.Unreachable += a.Unreachable
		r.OptedOut += a.OptedOut
		r.Cancelled += a.Cancelled
		r.Paid += a.Paid
		r.Cost += a.Cost
	}
	slices.Sort(order)
	out := make([]AgencyReport, len(order))
	for i, c := range order {
		out[i] = *by[c]
	}
	return out, nil
}
