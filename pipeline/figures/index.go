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

// IndicatorInfo is one indicator of the index.
type IndicatorInfo struct {
	ID    string `json:"id"`
	Group string `json:"group"`
	Name  string `json:"name"` // Vietnamese, as the decision names it
	// Max is the indicator's points at a rate of 100%; 0 when its points could not
	// be verified from the decision's annex, in which case only its rate is shown
	// (docs/decisions/0018 says which and why).
	Max float64 `json:"max"`
	// Formula says what the rate divides.
	Formula string `json:"formula"`
}

// Indicators are the indicators of the index this package knows, in group order.
// Those the synced data cannot support are listed too, so the page can say so.
var Indicators = []IndicatorInfo{
	{"on_time", GroupProgress, "Tỷ lệ hồ sơ xử lý đúng hạn", 20,
		"dossiers finished in the period on or before their due date / dossiers finished in the period with a due date"},
	{"digitised_share", GroupDigitisation, "Tỷ lệ hồ sơ được số hóa", 0,
		"dossiers received in the period flagged digitised by their source / those with the flag known"},
	{"online_share", GroupOnline, "Tỷ lệ hồ sơ tiếp nhận trực tuyến", 0,
		"dossiers received in the period through the online channel / those with the channel known"},
	{"satisfaction_tthc", GroupSatisfaction, "Tỷ lệ hài lòng trong tiếp nhận, giải quyết TTHC", 6,
		"(dossiers finished in the period - ratings of 1 or 2 given in the period) / dossiers finished in the period"},
	{"feedback_on_time", GroupSatisfaction, "Tỷ lệ phản ánh, kiến nghị xử lý đúng hạn", 6,
		"feedback answered on time / feedback received: needs feedback deadlines, which no source provides"},
	{"feedback_satisfaction", GroupSatisfaction, "Tỷ lệ hài lòng trong xử lý phản ánh, kiến nghị", 6,
		"(feedback - feedback rated unsatisfied or answered late) / feedback: needs ratings of answers, which no source provides"},
}

// IndicatorScore is one indicator's value for an agency and period.
type IndicatorScore struct {
	IndicatorInfo
	// Supported is false when the synced data cannot measure it; Why says why.
	Supported bool   `json:"supported"`
	Why       string `json:"why,omitempty"`
	// Rate is the indicator's ratio, 0–1; nil when the period has nothing to
	// measure (no dossier finished) or it is not supported.
	Rate *float64 `json:"rate"`
	// Score is Rate × Max rounded to 2 decimals; nil without a rate or without
	// verified points.
	Score *float64 `json:"score"`
	// Numerator and Denominator are what the rate divides ("42 of 50").
	Numerator   int `json:"numerator"`
	Denominator int `json:"denominator"`
}

// GroupScore is one group's indicators for an agency. A group none of whose
// indicators the data supports has Supported false.
type GroupScore struct {
	GroupInfo
	Supported  bool             `json:"supported"`
	Indicators []IndicatorScore `json:"indicators"`
	// Score sums the indicators' scores; Of sums the maxima of the indicators that
	// have a score, so a partial group reads "12.4 of 20".
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
// supports (see Indicators for what each divides), per agency, parent and in
// total, for the query's period and scope. Satisfaction needs a RatingSource;
// digitisation and online shares need a source that maps the flag or channel
// (figures: digitised, online). Publicity and transparency (publication of
// procedures, synchronisation with the national portal) is in no synced record.
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
	kept := map[string][5]int{}
	for code, r := range ratings {
		if s.keep(q, code) {
			kept[code] = r
		}
	}
	unsatisfied := func(codes ...string) int {
		n := 0
		for _, code := range codes {
			n += kept[code][0] + kept[code][1]
		}
		return n
	}
	anyDigitised := f.Total.DigitisedKnown > 0
	anyOnline := f.Total.OnlineKnown > 0
	build := func(a AgencyFigures, ratingCodes []string) AgencyIndex {
		out := AgencyIndex{Code: a.Code, Name: a.Name, Parent: a.Parent}
		for _, g := range Groups {
			gs := GroupScore{GroupInfo: g, Indicators: []IndicatorScore{}}
			for _, ind := range Indicators {
				if ind.Group != g.ID {
					continue
				}
				var is IndicatorScore
				switch ind.ID {
				case "on_time":
					is = score(ind, a.FinishedOnTime, a.FinishedOnTime+a.FinishedLate)
				case "online_share":
					is = score(ind, a.Online, a.OnlineKnown)
					if !anyOnline {
						is = unsupported(ind, "không nguồn nào cung cấp kênh nộp hồ sơ (no source maps the dossier channel: figures.online)")
					}
				case "digitised_share":
					is = score(ind, a.Digitised, a.DigitisedKnown)
					if !anyDigitised {
						is = unsupported(ind, "không nguồn nào cung cấp cờ số hóa hồ sơ (no source maps a digitised flag: figures.digitised)")
					}
				case "satisfaction_tthc":
					is = score(ind, max(0, a.Finished-unsatisfied(ratingCodes...)), a.Finished)
					if s.Ratings == nil {
						is = unsupported(ind, "chưa có đánh giá của người dân (citizens' ratings are not available: the Zalo rating command is not configured)")
					}
				default:
					is = unsupported(ind, "dữ liệu đồng bộ không có thời hạn và đánh giá của phản ánh, kiến nghị (the synced data has no deadlines or ratings for feedback)")
				}
				gs.Indicators = append(gs.Indicators, is)
				if is.Supported {
					gs.Supported = true
				}
				if is.Score != nil {
					gs.Score += *is.Score
					gs.Of += is.Max
				}
			}
			if g.ID == GroupPublicity {
				gs.Indicators = append(gs.Indicators, unsupported(IndicatorInfo{ID: "publicity", Group: g.ID, Name: g.Name},
					"công khai thủ tục và đồng bộ với Cổng Dịch vụ công quốc gia không có trong dữ liệu đồng bộ (publication of procedures and synchronisation with the national portal are not in the synced data)"))
			}
			gs.Score = round2(gs.Score)
			out.Score += gs.Score
			out.Of += gs.Of
			out.Groups = append(out.Groups, gs)
		}
		out.Score = round2(out.Score)
		return out
	}
	idx := Index{Figures: f, Agencies: []AgencyIndex{}, Parents: []AgencyIndex{}, Unsupported: []GroupScore{}}
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

func unsupported(ind IndicatorInfo, why string) IndicatorScore {
	return IndicatorScore{IndicatorInfo: ind, Why: why}
}

func score(ind IndicatorInfo, num, den int) IndicatorScore {
	out := IndicatorScore{IndicatorInfo: ind, Supported: true, Numerator: num, Denominator: den}
	if den > 0 {
		r := float64(num) / float64(den)
		out.Rate = &r
		if ind.Max > 0 {
			sc := round2(r * ind.Max)
			out.Score = &sc
		}
	}
	return out
}

func round2(v float64) float64 {
	if v < 0 {
		return -round2(-v)
	}
	return float64(int64(v*100+0.5)) / 100
}
