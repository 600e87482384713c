package announce

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/places"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Segment kinds.
const (
	SegmentAll      = "all"      // every follower of the OA
	SegmentArea     = "area"     // followers in communes or wards (subscribed to a topic there, or residents by Residence)
	SegmentTopic    = "topic"    // subscribers of a topic in communes or wards
	SegmentDossiers = "dossiers" // citizens with open dossiers at an agency
)

// Segment says who receives an announcement.
type Segment struct {
	Kind string `json:"kind"`
	// Places are communes or wards by current or former name (area, topic).
	Places []string `json:"places,omitempty"`
	Topic  string   `json:"topic,omitempty"`
	// Agency is whose open dossiers (dossiers): the announcing agency or one
	// under it; default the announcing agency.
	Agency string `json:"agency,omitempty"`
}

// segmentPlaces checks that the agency may address the segment under the
// regulation and returns the segment's current place ids.
func (s *Service) segmentPlaces(agency string, seg Segment) ([]string, error) {
	rules := s.reg.Agencies[agency]
	switch seg.Kind {
	case SegmentAll:
		if !rules.AllFollowers {
			return nil, refusef("segment: %s may not address every follower (the regulation's all_followers)", agency)
		}
		return nil, nil
	case SegmentArea, SegmentTopic:
		if seg.Kind == SegmentTopic {
			if seg.Topic == "" {
				return nil, refusef("segment.topic: name the topic")
			}
			if !slices.Contains(rules.Topics, seg.Topic) {
				return nil, refusef("segment.topic: %s may not address topic %q (its topics: %s)", agency, seg.Topic, strings.Join(rules.Topics, ", "))
			}
		}
		if len(seg.Places) == 0 {
			return nil, refusef("segment.places: name the communes or wards")
		}
		if s.reg.places == nil {
			return nil, refusef("segment.places: the regulation has no crosswalk of communes and wards (places:)")
		}
		var ids []string
		for _, name := range seg.Places {
			found := s.reg.places.Resolve(name)
			switch len(found) {
			case 0:
				return nil, refusef("segment.places: no commune or ward is called %q (current or former name)", name)
			case 1:
			default:
				return nil, refusef("segment.places: %q names several communes or wards (%s)", name, strings.Join(places.Names(found), ", "))
			}
			id := found[0].ID
			if !rules.province && !slices.Contains(rules.places, id) {
				return nil, refusef("segment.places: %s (%s) is not one of %s's communes and wards: an agency announces only to its own", name, found[0].Name, agency)
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		return ids, nil
	case SegmentDossiers:
		target := seg.Agency
		if target == "" {
			target = agency
		}
		if _, ok := s.dir.Lookup(target); !ok {
			return nil, refusef("segment.agency: no agency has code %q", target)
		}
		if !s.dir.Within(target, []string{agency}) {
			return nil, refusef("segment.agency: %s is not %s or under it: an agency announces only to its own", target, agency)
		}
		return nil, nil
	}
	return nil, refusef("segment.kind: want all, area, topic or dossiers, got %q", seg.Kind)
}

// target is one recipient found for a segment, with what is known about it.
type target struct {
	Recipient
	stopped bool // asked for no proactive message (HUY TIN)
}

// recipients lists the segment's citizens on the OA, each once.
func (s *Service) recipients(ctx context.Context, agency string, seg Segment, oaID string) ([]target, error) {
	ids, err := s.segmentPlaces(agency, seg)
	if err != nil {
		return nil, err
	}
	var out []target
	seen := map[string]bool{}
	addUser := func(f store.ZaloFollower) {
		if seen["u:"+f.UserID] || !f.Followed {
			return
		}
		seen["u:"+f.UserID] = true
		out = append(out, target{Recipient: Recipient{UserID: f.UserID}, stopped: !f.StoppedAt.IsZero()})
	}
	byUser := func(users []string) error {
		for _, u := range users {
			if seen["u:"+u] {
				continue
			}
			f, err := s.st.ZaloFollower(ctx, oaID, u)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			addUser(f)
		}
		return nil
	}
	switch seg.Kind {
	case SegmentAll:
		for after := ""; ; {
			page, err := s.st.Followers(ctx, oaID, after, 1000)
			if err != nil {
				return nil, err
			}
			for _, f := range page {
				addUser(f)
			}
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].UserID
		}
	case SegmentArea:
		users, err := s.st.PlaceFollowers(ctx, oaID, ids)
		if err != nil {
			return nil, err
		}
		if err := byUser(users); err != nil {
			return nil, err
		}
		if err := s.residents(ctx, ids, oaID, seen, addUser); err != nil {
			return nil, err
		}
	case SegmentTopic:
		subs, err := s.st.Subscribers(ctx, oaID, seg.Topic, ids)
		if err != nil {
			return nil, err
		}
		users := make([]string, len(subs))
		for i, sub := range subs {
			users[i] = sub.UserID
		}
		if err := byUser(users); err != nil {
			return nil, err
		}
	case SegmentDossiers:
		target := seg.Agency
		if target == "" {
			target = agency
		}
		codes := []string{target}
		for _, a := range s.dir.List() {
			if a.Code != target && s.dir.Within(a.Code, []string{target}) {
				codes = append(codes, a.Code)
			}
		}
		recs, err := s.st.OpenRecords(ctx, "dossier", codes)
		if err != nil {
			return nil, err
		}
		if err := s.dossierPhones(ctx, recs, oaID, seen, &out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dossierPhones adds the citizens of records: the follower linked to each phone,
// else the phone itself.
func (s *Service) dossierPhones(ctx context.Context, recs []store.FactRecord, oaID string, seen map[string]bool, out *[]target) error {
	type group struct{ source, entity string }
	keys := map[group][]string{}
	var order []group
	for _, r := range recs {
		g := group{r.Source, r.Entity}
		if _, ok := keys[g]; !ok {
			order = append(order, g)
		}
		keys[g] = append(keys[g], r.Key)
	}
	for _, g := range order {
		snap, err := s.st.Snapshot(ctx, g.source, g.entity, keys[g])
		if err != nil {
			return err
		}
		for _, k := range keys[g] {
			e, ok := snap[k]
			if !ok || e.Deleted {
				continue
			}
			raw, _ := e.Fields[s.reg.PhoneField].(string)
			phone, err := transform.PhoneVN(raw)
			if err != nil || phone == "" {
				continue
			}
			if seen["p:"+phone] {
				continue
			}
			seen["p:"+phone] = true
			f, err := s.st.ZaloFollowerByPhone(ctx, oaID, phone)
			switch {
			case err == nil && f.Followed:
				if seen["u:"+f.UserID] {
					continue
				}
				seen["u:"+f.UserID] = true
				*out = append(*out, target{Recipient: Recipient{UserID: f.UserID, Phone: phone}, stopped: !f.StoppedAt.IsZero()})
			case err == nil || errors.Is(err, store.ErrNotFound):
				*out = append(*out, target{Recipient: Recipient{Phone: phone}, stopped: err == nil && !f.StoppedAt.IsZero()})
			default:
				return err
			}
		}
	}
	return nil
}

// Preview is what an announcement will be: the message exactly as a citizen sees
// it, and its recipients counted by route and quota with the cost.
type Preview struct {
	Title       string   `json:"title"`
	Paragraphs  []string `json:"paragraphs"`
	Link        string   `json:"link,omitempty"`
	LinkTitle   string   `json:"link_title,omitempty"`
	Image       string   `json:"image,omitempty"`
	Text        string   `json:"text"` // the whole message as plain text
	ZNSTemplate string   `json:"zns_template,omitempty"`

	Recipients  int   `json:"recipients"`
	OAFree      int   `json:"oa_free"`     // followers, within the OA's free monthly quota
	OAPaid      int   `json:"oa_paid"`     // followers, beyond it
	ZNS         int   `json:"zns"`         // not followers, by phone (paid)
	Unreachable int   `json:"unreachable"` // not followers and no ZNS template
	OptedOut    int   `json:"opted_out"`   // asked for no proactive message (HUY TIN)
	Cost        int64 `json:"cost"`        // đồng
	FreeLeft    int   `json:"free_left"`   // of the OA's free quota this month, before this one

	DailyCap   int `json:"daily_cap"`
	DailyUsed  int `json:"daily_used"` // by the agency's other announcements that day
	MonthlyCap int `json:"monthly_cap"`
	MonthUsed  int `json:"month_used"`
	// Problems are the regulation's reasons it could not be approved now.
	Problems []string `json:"problems,omitempty"`
}

// Messages is how many messages the announcement takes (its cap usage).
func (p Preview) Messages() int { return p.OAFree + p.OAPaid + p.ZNS }

// PreviewDraft previews a draft without storing it.
func (s *Service) PreviewDraft(ctx context.Context, d Draft) (Preview, error) {
	m, oa, err := s.check(d, 0)
	if err != nil {
		return Preview{}, err
	}
	return s.preview(ctx, 0, d, m, oa)
}

// PreviewStored previews a stored announcement.
func (s *Service) PreviewStored(ctx context.Context, id int64) (Preview, error) {
	a, err := s.st.Announcement(ctx, id)
	if err != nil {
		return Preview{}, err
	}
	d, m, err := s.checkStored(a)
	if err != nil {
		return Preview{}, err
	}
	return s.preview(ctx, id, d, m, a.OA)
}

func (s *Service) preview(ctx context.Context, id int64, d Draft, m Message, oa string) (Preview, error) {
	ch, ok := s.channels[oa]
	if !ok {
		return Preview{}, fmt.Errorf("no channel for OA sink %q", oa)
	}
	p := Preview{Title: m.Title, Paragraphs: m.Paragraphs(), Link: m.Link, Image: m.Image, Text: m.Render(), ZNSTemplate: m.ZNSTemplateID}
	if m.Link != "" {
		p.LinkTitle = LinkTitle
	}
	ts, err := s.recipients(ctx, d.Agency, d.Segment, ch.OAID())
	if err != nil {
		return Preview{}, err
	}
	from, to := s.month(d.SendAt)
	used, err := s.st.OAMessages(ctx, oa, from, to)
	if err != nil {
		return Preview{}, err
	}
	p.FreeLeft = max(0, s.reg.FreeQuota-used)
	free := p.FreeLeft
	for _, t := range ts {
		p.Recipients++
		switch {
		case t.stopped:
			p.OptedOut++
		case t.UserID != "" && free > 0:
			p.OAFree++
			free--
		case t.UserID != "":
			p.OAPaid++
		case m.ZNSTemplateID != "":
			p.ZNS++
		default:
			p.Unreachable++
		}
	}
	p.Cost = int64(p.OAPaid)*s.reg.Prices.OA + int64(p.ZNS)*s.reg.Prices.ZNS
	caps := s.reg.capsOf(d.Agency)
	p.DailyCap, p.MonthlyCap = caps.Daily, caps.Monthly
	dayFrom, dayTo := s.day(d.SendAt)
	if p.DailyUsed, err = s.st.AnnouncementUsage(ctx, d.Agency, dayFrom, dayTo, id); err != nil {
		return Preview{}, err
	}
	if p.MonthUsed, err = s.st.AnnouncementUsage(ctx, d.Agency, from, to, id); err != nil {
		return Preview{}, err
	}
	n := p.Messages()
	if caps.Daily > 0 && p.DailyUsed+n > caps.Daily {
		p.Problems = append(p.Problems, fmt.Sprintf("daily cap: %s may send %d messages on %s, %d are taken, this needs %d",
			d.Agency, caps.Daily, d.SendAt.In(s.zone).Format("02/01/2006"), p.DailyUsed, n))
	}
	if caps.Monthly > 0 && p.MonthUsed+n > caps.Monthly {
		p.Problems = append(p.Problems, fmt.Sprintf("monthly cap: %s may send %d messages in %s, %d are taken, this needs %d",
			d.Agency, caps.Monthly, d.SendAt.In(s.zone).Format("01/2006"), p.MonthUsed, n))
	}
	if n == 0 {
		p.Problems = append(p.Problems, "no citizen in the segment can be reached")
	}
	return p, nil
}

// day and month are the province's calendar day and month around t, in UTC.
func (s *Service) day(t time.Time) (time.Time, time.Time) {
	l := t.In(s.zone)
	from := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, s.zone)
	return from.UTC(), from.AddDate(0, 0, 1).UTC()
}

func (s *Service) month(t time.Time) (time.Time, time.Time) {
	l := t.In(s.zone)
	from := time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, s.zone)
	return from.UTC(), from.AddDate(0, 1, 0).UTC()
}
