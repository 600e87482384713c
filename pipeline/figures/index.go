package figures

import (
	"context"
	"fmt"
	"maps"
	"slices"
)

// The five groups of the national service-quality index of Decision 766/QĐ-TTg
// (23 June 2022), with their maximum points (100 in all); see
// docs/decisions/0018-steering-figures-and-service-index.md for the source and
// for what is and is not verified.
const (
	GroupPublicity    = "publicity"    // Công khai, minh bạch
	GroupProgress     = "progress"     // Tiến độ, kết quả giải quyết
	GroupDigitisation = "digitisation" // Số hóa hồ sơ
	GroupOnline       = "online"       // Cung cấp dịch vụ trực tuyến
	GroupSatisfaction = "satisfaction" // Mức độ hài lòng
)

// GroupInfo describes one group of the index.
type GroupInfo struct {
	ID   string  `json:"id"`
	Name string  `json:"name"` // Vietnamese, as the decision names it
	Max  float64 `json:"max"`  // the group's maximum points
}

// Groups are the index's five groups in the decision's order.
var Groups = []GroupInfo{
	{GroupPublicity, "Công khai, minh bạch", 18},
	{GroupProgress, "Tiến độ, kết quả giải quyết", 20},
	{GroupDigitisation, "Số hóa hồ sơ", 22},
	{GroupOnline, "Cung cấp dịch vụ trực tuyến", 22},
	{GroupSatisfaction, "Mức độ hài lòng", 18},
}

// IndicatorInfo is one indicator the synced data can support.
type IndicatorInfo struct {
	ID    string  `json:"id"`
	Group string  `json:"group"`
	Name  string  `json:"name"`
	Max   float64 `json:"max"` // points at a rate of 100%
}

// Indicators are the indicators of the index computed from synced data. Each
// scores its rate times its maximum (a rate of 0.93 on a 20-point indicator scores
// 18.6). What each one counts is documented where it is computed (Index).
var Indicators = []IndicatorInfo{
	{"on_time", GroupProgress, "Tỷ lệ hồ sơ giải quyết đúng hạn", 20},
	{"online_share", GroupOnline, "Tỷ lệ hồ sơ tiếp nhận trực tuyến", 22},
	{"digitised_share", GroupDigitisation, "Tỷ lệ hồ sơ được số hóa", 22},
	{"satisfaction", GroupSatisfaction, "Tỷ lệ hài lòng trong tiếp nhận, giải quyết TTHC", 6},
}

// IndicatorScore is one indicator's value for an agency and period.
type IndicatorScore struct {
	IndicatorInfo
	// Rate is the indicator's ratio, 0–1; nil when the period has nothing to
	// measure (no dossier finished, no rating given).
	Rate  *float64 `json:"rate"`
	Score *float64 `json:"score"` // Rate × Max, rounded to 2 decimals
	// Numerator and Denominator are what the rate divides, for the page's
	// tooltip ("42 of 50 finished on time").
	Numerator   int `json:"numerator"`
	Denominator int `json:"denominator"`
}

// GroupScore is one group's indicators for an agency. A group the data cannot
// support has Supported false and Why says what is missing.
type GroupScore struct {
	GroupInfo
	Supported  bool             `json:"supported"`
	Why        string           `json:"why,omitempty"`
	Indicators []IndicatorScore `json:"indicators"`
	// Score sums the indicators' scores that have a rate; Of sums their maxima,
	// so a partial group reads "12.4 of 20".
	Score float64 `json:"score"`
	Of    float64 `json:"of"`
}

// AgencyIndex is one agency's (or parent's, or the total's) index.
type AgencyIndex struct {
	Code   string       `json:"code"`
	Name   string       `json:"name"`
	Parent string       `json:"parent,omitempty"`
	Groups []GroupScore `json:"groups"`
	// Score sums the scored indicators; Of sums their maxima (never the full 100
	// while groups are unsupported: the page shows "71.3 of 76").
	Score float64 `json:"score"`
	Of    float64 `json:"of"`
}

// Index is the service-quality index of a period, per agency.
type Index struct {
	Figures  Figures       `json:"-"`
	Agencies []AgencyIndex `json:"agencies"`
	Parents  []AgencyIndex `json:"parents"`
	Total    AgencyIndex   `json:"total"`
	// Unsupported lists the groups no agency's data supports, with why.
	Unsupported []GroupScore `json:"unsupported"`
}

// Index computes the indicators of Decision 766/QĐ-TTg that the synced data
// supports, per agency, parent and in total, for the query's period and scope:
//
//   - on_time (progress): dossiers finished in the period on or before their due
//     date, over those finished in the period with a due date;
//   - online_share (online services): dossiers received in the period through the
//     online channel, over those received whose channel is known;
//   - digitised_share (digitisation): dossiers received in the period whose source
//     flags them digitised, over those with the flag known (only where a source
//     provides it);
//   - satisfaction: citizens' 1–5 ratings in the period; a rating of 4 or 5 counts
//     as satisfied, over all ratings (only with a RatingSource).
//
// Publicity and transparency (publication of procedures, synchronisation with the
// national portal) is not in any synced record and is always reported unsupported.
func (s *Service) Index(ctx context.Context, q Query) (Index, error) {
	f, err := s.Figures(ctx, q)
	if err != nil {
		return Index{}, err
	}
	var ratings map[string][5]int
	if s.Ratings != nil {
		ratings, err = s.Ratings.RatingCounts(ctx, f.From, f.To)
		if err != nil {
			return Index{}, fmt.Errorf("figures: ratings: %w", err)
		}
	}
	// Ratings roll up like the counts: an agency's own, a parent's and its
	// agencies', the total every agency's within the scope.
	kept := map[string][5]int{}
	for code, r := range ratings {
		if s.keep(q, code) {
			kept[code] = r
		}
	}
	ratingOf := func(codes ...string) (satisfied, all int) {
		for _, code := range codes {
			r := kept[code]
			satisfied += r[3] + r[4]
			for _, n := range r {
				all += n
			}
		}
		return satisfied, all
	}
	anyDigitised := f.Total.DigitisedKnown > 0
	anyOnline := f.Total.OnlineKnown > 0
	build := func(a AgencyFigures, ratingCodes []string) AgencyIndex {
		sat, all := ratingOf(ratingCodes...)
		out := AgencyIndex{Code: a.Code, Name: a.Name, Parent: a.Parent}
		for _, g := range Groups {
			gs := GroupScore{GroupInfo: g, Supported: true}
			for _, ind := range Indicators {
				if ind.Group != g.ID {
					continue
				}
				var num, den int
				switch ind.ID {
				case "on_time":
					num, den = a.FinishedOnTime, a.FinishedOnTime+a.FinishedLate
				case "online_share":
					num, den = a.Online, a.OnlineKnown
				case "digitised_share":
					num, den = a.Digitised, a.DigitisedKnown
				case "satisfaction":
					num, den = sat, all
				}
				gs.Indicators = append(gs.Indicators, score(ind, num, den))
			}
			switch {
			case g.ID == GroupPublicity:
				gs.Supported, gs.Why = false, "công khai thủ tục và đồng bộ với Cổng Dịch vụ công quốc gia không có trong dữ liệu đồng bộ (publication of procedures and synchronisation with the national portal are not in the synced data)"
			case g.ID == GroupDigitisation && !anyDigitised:
				gs.Supported, gs.Why = false, "không nguồn nào cung cấp cờ số hóa hồ sơ (no source maps a digitised flag: figures.digitised)"
			case g.ID == GroupOnline && !anyOnline:
				gs.Supported, gs.Why = false, "không nguồn nào cung cấp kênh nộp hồ sơ (no source maps the dossier channel: figures.online)"
			case g.ID == GroupSatisfaction && s.Ratings == nil:
				gs.Supported, gs.Why = false, "chưa có đánh giá của người dân (citizens' ratings are not available: the Zalo webhook's rating command is not configured)"
			}
			if !gs.Supported {
				gs.Indicators = []IndicatorScore{}
			}
			for _, is := range gs.Indicators {
				if is.Score != nil {
					gs.Score += *is.Score
					gs.Of += is.Max
				}
			}
			gs.Score = round2(gs.Score)
			out.Score += gs.Score
			out.Of += gs.Of
			out.Groups = append(out.Groups, gs)
		}
		out.Score = round2(out.Score)
		return out
	}
	idx := Index{Figures: f, Agencies: []AgencyIndex{}, Parents: []AgencyIndex{}}
	for _, a := range f.Agencies {
		idx.Agencies = append(idx.Agencies, build(a, []string{a.Code}))
	}
	for _, p := range f.Parents {
		codes := []string{p.Code}
		for _, a := range f.Agencies {
			if slices.Contains(s.Agencies.Ancestors(a.Code), p.Code) {
				codes = append(codes, a.Code)
			}
		}
		idx.Parents = append(idx.Parents, build(p, codes))
	}
	idx.Total = build(f.Total, slices.Collect(maps.Keys(kept)))
	for _, g := range idx.Total.Groups {
		if !g.Supported {
			idx.Unsupported = append(idx.Unsupported, g)
		}
	}
	return idx, nil
}

func score(ind IndicatorInfo, num, den int) IndicatorScore {
	out := IndicatorScore{IndicatorInfo: ind, Numerator: num, Denominator: den}
	if den > 0 {
		r := float64(num) / float64(den)
		sc := round2(r * ind.Max)
		out.Rate, out.Score = &r, &sc
	}
	return out
}

func round2(v float64) float64 {
	if v < 0 {
		return -round2(-v)
	}
	return float64(int64(v*100+0.5)) / 100
}
