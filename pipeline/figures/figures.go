package figures

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// DefaultDueWithin is the "due soon" window when a query names none: two days, the
// threshold of the deadline rule that warns officials.
const DefaultDueWithin = 48 * time.Hour

// Query selects what Figures counts.
type Query struct {
	// From and To bound the period of the flows (received, finished, supplements,
	// notices, outages, feedback): [From, To). A zero From means since ever, a zero
	// To means up to now. "In progress", "overdue now" and "due soon" are states at
	// the query's moment, whatever the period.
	From, To time.Time
	// DueWithin is the "due soon" window after now; 0 means DefaultDueWithin.
	DueWithin time.Duration
	// Scope limits the figures to these agencies and those under them (an API
	// token's agency scope); nil means every agency.
	Scope []string
	// Agency, when set, keeps only that agency and those under it (a filter within
	// the scope).
	Agency string
}

// Counts are one agency's (or a roll-up's) dossier figures.
type Counts struct {
	Received       int `json:"received"`         // received in the period
	InProgress     int `json:"in_progress"`      // being processed now
	Finished       int `json:"finished"`         // finished in the period
	FinishedOnTime int `json:"finished_on_time"` // of those, on or before the due date
	FinishedLate   int `json:"finished_late"`    // of those, after the due date
	// OnTimeRate is FinishedOnTime / (FinishedOnTime + FinishedLate), 0–1; nil
	// when nothing finished with a due date in the period.
	OnTimeRate         *float64 `json:"on_time_rate"`
	OverdueNow         int      `json:"overdue_now"`         // in progress and past due at the query's moment
	DueSoon            int      `json:"due_soon"`            // in progress and due within DueWithin
	SupplementRequests int      `json:"supplement_requests"` // first asked for a supplement in the period
	AwaitingSupplement int      `json:"awaiting_supplement"` // waiting for the citizen's supplement now
	Online             int      `json:"online"`              // of Received, submitted online
	OnlineKnown        int      `json:"online_known"`        // of Received, with the channel known
	Digitised          int      `json:"digitised"`           // of Received, with the paperwork digitised
	DigitisedKnown     int      `json:"digitised_known"`     // of Received, with the flag known
}

func (c *Counts) add(o Counts) {
	c.Received += o.Received
	c.InProgress += o.InProgress
	c.Finished += o.Finished
	c.FinishedOnTime += o.FinishedOnTime
	c.FinishedLate += o.FinishedLate
	c.OverdueNow += o.OverdueNow
	c.DueSoon += o.DueSoon
	c.SupplementRequests += o.SupplementRequests
	c.AwaitingSupplement += o.AwaitingSupplement
	c.Online += o.Online
	c.OnlineKnown += o.OnlineKnown
	c.Digitised += o.Digitised
	c.DigitisedKnown += o.DigitisedKnown
}

func (c *Counts) rate() {
	c.OnTimeRate = nil
	if n := c.FinishedOnTime + c.FinishedLate; n > 0 {
		r := float64(c.FinishedOnTime) / float64(n)
		c.OnTimeRate = &r
	}
}

// AgencyFigures are one agency's figures. A parent's figures include its own
// records and those of every agency under it.
type AgencyFigures struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Parent string `json:"parent,omitempty"`
	Counts
	Notices Notices `json:"notices"`
	Outages int     `json:"outages"` // outages announced in the period
}

// Notices counts citizen notices by route, and the saving of sending them on Zalo
// instead of SMS.
type Notices struct {
	OA            int `json:"oa"`            // sent as OA messages to followers
	ZNS           int `json:"zns"`           // sent as ZNS template messages by phone
	Undeliverable int `json:"undeliverable"` // no route could take them (not an error: a figure)
	Stale         int `json:"stale"`         // older than their rule's max_age: not sent
	Deferred      int `json:"deferred"`      // waiting in the outbox now (quiet hours, retries)
	Failed        int `json:"failed"`        // in dead letters now
	Messages      int `json:"messages"`      // messages sent (a long OA text takes several)
	DryRun        int `json:"dry_run"`       // of Messages, sent in dry run (nothing reached Zalo)
	// SavingDong is what the OA and ZNS notices saved against one SMS each, in
	// đồng, at the prices of each Zalo sink's config; nil when no sink has an SMS
	// price.
	SavingDong *float64 `json:"saving_dong"`
}

func (n *Notices) add(o Notices) {
	n.OA += o.OA
	n.ZNS += o.ZNS
	n.Undeliverable += o.Undeliverable
	n.Stale += o.Stale
	n.Deferred += o.Deferred
	n.Failed += o.Failed
	n.Messages += o.Messages
	n.DryRun += o.DryRun
	if o.SavingDong != nil {
		v := *o.SavingDong
		if n.SavingDong != nil {
			v += *n.SavingDong
		}
		n.SavingDong = &v
	}
}

// Feedback counts citizens' feedback; see FeedbackSource.
type Feedback struct {
	Received int `json:"received"` // in the period
	Answered int `json:"answered"` // of those, answered
}

// Figures is the answer to a Query.
type Figures struct {
	Now       time.Time     `json:"now"`
	From      time.Time     `json:"from,omitzero"`
	To        time.Time     `json:"to"`
	DueWithin time.Duration `json:"due_within_ns"`
	// Agencies holds every agency with records or declared in the config, within
	// the query's scope, in code order; Parents the roll-ups of those that have
	// agencies under them; Total the sum over Agencies.
	Agencies []AgencyFigures `json:"agencies"`
	Parents  []AgencyFigures `json:"parents"`
	Total    AgencyFigures   `json:"total"`
	// Feedback is nil when no feedback source is wired (the Zalo webhook's inbox
	// is not configured): "not available", never zero.
	Feedback *Feedback `json:"feedback"`
}

// Prices are đồng per message on each route of a Zalo sink, for the saving figure.
type Prices struct {
	OA, ZNS, SMS float64
}

// saving is what notices on a route saved against one SMS per notice.
func (p Prices) saving(route string, notices, messages int) float64 {
	switch route {
	case store.ZaloRouteOA:
		return float64(notices)*p.SMS - float64(messages)*p.OA
	case store.ZaloRouteZNS:
		return float64(notices)*p.SMS - float64(messages)*p.ZNS
	}
	return 0
}

// FeedbackSource counts citizens' feedback per agency (the Zalo webhook's inbox).
// Optional: without one, Figures.Feedback is nil. Its method uses only basic
// types, so the store (which this package imports) can implement it.
type FeedbackSource interface {
	// FeedbackCounts counts, per agency code, feedback received in [from, to)
	// (zero bounds are open) and how much of that is answered.
	FeedbackCounts(ctx context.Context, from, to time.Time) (received, answered map[string]int, err error)
}

// RatingSource counts citizens' 1–5 satisfaction ratings per agency (the OA's
// rating request and the DG reply command). Optional: without one, the index's
// satisfaction group is reported as not supported. Basic types only, as for
// FeedbackSource.
type RatingSource interface {
	// RatingCounts counts, per agency, ratings given in [from, to) by score:
	// counts[0] is how many gave 1, …, counts[4] how many gave 5.
	RatingCounts(ctx context.Context, from, to time.Time) (map[string][5]int, error)
}

// Reader is what figures read of the store (implemented by both backends, see
// store.FactStore).
type Reader interface {
	FactCounts(ctx context.Context, q store.FactQuery) ([]store.FactCount, error)
	DayCounts(ctx context.Context, kind, from, to string) ([]store.DayCount, error)
	NoticeCounts(ctx context.Context, sinks []string, from, to time.Time) ([]store.NoticeCount, error)
}

// Service computes figures. Its zero fields are optional except Store.
type Service struct {
	Store    Reader
	Agencies *Directory
	Clock    pipeline.Clock
	Zone     *time.Location // the province's zone: days are counted in it
	// NoticeSinks are the Zalo sinks whose notices are counted, with their prices.
	NoticeSinks map[string]Prices
	Feedback    FeedbackSource // nil: feedback "not available"
	Ratings     RatingSource   // nil: satisfaction not supported
}

// ErrBadQuery is wrapped by errors about a query itself (From after To, …).
var ErrBadQuery = errors.New("bad figures query")

func (s *Service) now() time.Time {
	if s.Clock == nil {
		return time.Now().UTC()
	}
	return s.Clock().UTC()
}

func (s *Service) zone() *time.Location {
	if s.Zone == nil {
		return time.UTC
	}
	return s.Zone
}

// normalise fills a query's defaults and checks it.
func (s *Service) normalise(q *Query, now time.Time) error {
	if q.DueWithin == 0 {
		q.DueWithin = DefaultDueWithin
	}
	if q.DueWithin < 0 {
		return fmt.Errorf("%w: due_within must not be negative", ErrBadQuery)
	}
	if q.To.IsZero() {
		q.To = now
	}
	if !q.From.IsZero() && !q.From.Before(q.To) {
		return fmt.Errorf("%w: from (%s) must be before to (%s)", ErrBadQuery, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	return nil
}

// keep reports whether an agency is within the query's scope and filter.
func (s *Service) keep(q Query, code string) bool {
	if !s.Agencies.Within(code, q.Scope) {
		return false
	}
	return q.Agency == "" || s.Agencies.Within(code, []string{q.Agency})
}

// Figures counts what the query asks, at the service's clock.
func (s *Service) Figures(ctx context.Context, q Query) (Figures, error) {
	now := s.now()
	if err := s.normalise(&q, now); err != nil {
		return Figures{}, err
	}
	out := Figures{Now: now, From: q.From, To: q.To, DueWithin: q.DueWithin}
	by := map[string]*AgencyFigures{}
	get := func(code string) *AgencyFigures {
		a := by[code]
		if a == nil {
			a = &AgencyFigures{Code: code, Name: s.Agencies.Name(code)}
			if ag, ok := s.Agencies.Lookup(code); ok {
				a.Parent = ag.Parent
			}
			by[code] = a
		}
		return a
	}
	for _, a := range s.Agencies.List() {
		if s.keep(q, a.Code) {
			get(a.Code)
		}
	}
	fq := store.FactQuery{From: q.From, To: q.To, Now: now, DueUntil: now.Add(q.DueWithin), Zone: s.zone()}
	fq.Kind = "dossier"
	counts, err := s.Store.FactCounts(ctx, fq)
	if err != nil {
		return Figures{}, err
	}
	for _, c := range counts {
		if !s.keep(q, c.Agency) {
			continue
		}
		a := get(c.Agency)
		a.Counts.add(Counts{
			Received: c.Received, InProgress: c.Open, Finished: c.Finished, FinishedOnTime: c.OnTime, FinishedLate: c.Late,
			OverdueNow: c.OverdueNow, DueSoon: c.DueSoon, SupplementRequests: c.Supplement, AwaitingSupplement: c.AwaitingSupplement,
			Online: c.Online, OnlineKnown: c.OnlineKnown, Digitised: c.Digitised, DigitisedKnown: c.DigitisedKnown,
		})
	}
	fq.Kind = "outage"
	outages, err := s.Store.FactCounts(ctx, fq)
	if err != nil {
		return Figures{}, err
	}
	for _, c := range outages {
		if s.keep(q, c.Agency) {
			get(c.Agency).Outages += c.Received
		}
	}
	if err := s.notices(ctx, q, get); err != nil {
		return Figures{}, err
	}
	if s.Feedback != nil {
		received, answered, err := s.Feedback.FeedbackCounts(ctx, q.From, q.To)
		if err != nil {
			return Figures{}, fmt.Errorf("figures: feedback: %w", err)
		}
		total := Feedback{}
		for code, n := range received {
			if s.keep(q, code) {
				total.Received += n
			}
		}
		for code, n := range answered {
			if s.keep(q, code) {
				total.Answered += n
			}
		}
		out.Feedback = &total
	}

	codes := make([]string, 0, len(by))
	for code := range by {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	out.Total = AgencyFigures{Code: "", Name: "Tổng"}
	parents := map[string]*AgencyFigures{}
	for _, code := range codes {
		a := by[code]
		a.Counts.rate()
		out.Agencies = append(out.Agencies, *a)
		out.Total.Counts.add(a.Counts)
		out.Total.Notices.add(a.Notices)
		out.Total.Outages += a.Outages
		for _, p := range s.Agencies.Ancestors(code) {
			pa := parents[p]
			if pa == nil {
				pa = &AgencyFigures{Code: p, Name: s.Agencies.Name(p)}
				if ag, ok := s.Agencies.Lookup(p); ok {
					pa.Parent = ag.Parent
				}
				parents[p] = pa
			}
			pa.Counts.add(a.Counts)
			pa.Notices.add(a.Notices)
			pa.Outages += a.Outages
		}
	}
	out.Total.Counts.rate()
	for _, p := range slices.Sorted(maps.Keys(parents)) {
		pa := parents[p]
		pa.Counts.rate()
		out.Parents = append(out.Parents, *pa)
	}
	if out.Agencies == nil {
		out.Agencies = []AgencyFigures{}
	}
	if out.Parents == nil {
		out.Parents = []AgencyFigures{}
	}
	return out, nil
}

// notices adds each agency's notices by route and the saving.
func (s *Service) notices(ctx context.Context, q Query, get func(string) *AgencyFigures) error {
	if len(s.NoticeSinks) == 0 {
		return nil
	}
	sinks := slices.Sorted(maps.Keys(s.NoticeSinks))
	rows, err := s.Store.NoticeCounts(ctx, sinks, q.From, q.To)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if !s.keep(q, r.Agency) {
			continue
		}
		n := &get(r.Agency).Notices
		switch r.Route {
		case store.ZaloRouteOA:
			n.OA += r.Notices
		case store.ZaloRouteZNS:
			n.ZNS += r.Notices
		case store.ZaloRouteUndeliverable:
			n.Undeliverable += r.Notices
		case store.ZaloRouteStale:
			n.Stale += r.Notices
		case "deferred":
			n.Deferred += r.Notices
		case "failed":
			n.Failed += r.Notices
		}
		n.Messages += r.Messages
		n.DryRun += r.DryRun
		if p := s.NoticeSinks[r.Sink]; p.SMS > 0 {
			v := p.saving(r.Route, r.Notices, r.Messages)
			if n.SavingDong != nil {
				v += *n.SavingDong
			}
			n.SavingDong = &v
		}
	}
	return nil
}

// Day is one day's dossiers received and finished.
type Day struct {
	Day      string `json:"day"` // YYYY-MM-DD in the province's zone
	Received int    `json:"received"`
	Finished int    `json:"finished"`
}

// Daily counts dossiers received and finished per day of the period (in the
// province's zone), within the query's scope; days without any are included as
// zeros. A period longer than 400 days is refused.
func (s *Service) Daily(ctx context.Context, q Query) ([]Day, error) {
	now := s.now()
	if err := s.normalise(&q, now); err != nil {
		return nil, err
	}
	zone := s.zone()
	from := q.From
	if from.IsZero() {
		from = q.To.AddDate(0, 0, -30)
	}
	first := time.Date(from.In(zone).Year(), from.In(zone).Month(), from.In(zone).Day(), 0, 0, 0, 0, zone)
	last := q.To.Add(-time.Nanosecond).In(zone) // To is excluded
	if last.Sub(first) > 400*24*time.Hour {
		return nil, fmt.Errorf("%w: a daily series covers at most 400 days", ErrBadQuery)
	}
	end := time.Date(last.Year(), last.Month(), last.Day(), 0, 0, 0, 0, zone).AddDate(0, 0, 1)
	rows, err := s.Store.DayCounts(ctx, "dossier", first.Format(time.DateOnly), end.Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	byDay := map[string]*Day{}
	var out []Day
	for d := first; d.Before(end); d = d.AddDate(0, 0, 1) {
		out = append(out, Day{Day: d.Format(time.DateOnly)})
	}
	for i := range out {
		byDay[out[i].Day] = &out[i]
	}
	for _, r := range rows {
		if !s.keep(q, r.Agency) {
			continue
		}
		if d := byDay[r.Day]; d != nil {
			d.Received += r.Received
			d.Finished += r.Finished
		}
	}
	return out, nil
}
