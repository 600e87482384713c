package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// figuresQuery reads a figures request: period [from, to), agency, due_within,
// within the caller's scope.
func (s *Server) figuresQuery(r *http.Request) (figures.Query, error) {
	var q figures.Query
	var err error
	if q.From, err = s.timeParam(r, "from"); err != nil {
		return q, err
	}
	if q.To, err = s.timeParam(r, "to"); err != nil {
		return q, err
	}
	if v := r.URL.Query().Get("due_within"); v != "" {
		d, err := parseDays(v)
		if err != nil || d <= 0 || d > 366*24*time.Hour {
			return q, badf("due_within: want a duration such as 2d or 36h, got %q", v)
		}
		q.DueWithin = d
	}
	p := principal(r)
	q.Scope, q.Agency = p.Agencies, r.URL.Query().Get("agency")
	return q, nil
}

// parseDays reads a duration that may be whole days: "2d", "36h", "1d12h".
func parseDays(v string) (time.Duration, error) {
	var days time.Duration
	if d, rest, ok := strings.Cut(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, err
		}
		days, v = time.Duration(n)*24*time.Hour, rest
		if v == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(v)
	return days + d, err
}

func (s *Server) figuresFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, figures.ErrBadQuery) {
		access.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.fail(w, r, err)
}

// figures are the dossier, notice, outage and feedback figures per agency and
// parent, and their total, for the period.
func (s *Server) figures(w http.ResponseWriter, r *http.Request) {
	q, err := s.figuresQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := s.d.Figures.Figures(r.Context(), q)
	if err != nil {
		s.figuresFail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, f)
}

// daily is dossiers received and finished per day of the period (default the
// last 30 days).
func (s *Server) daily(w http.ResponseWriter, r *http.Request) {
	q, err := s.figuresQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	days, err := s.d.Figures.Daily(r.Context(), q)
	if err != nil {
		s.figuresFail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"days": days})
}

// quality is the service-quality index (Decision 766/QĐ-TTg) per agency and
// parent for the period: the indicators the data supports, and the groups it
// cannot support with why.
func (s *Server) quality(w http.ResponseWriter, r *http.Request) {
	q, err := s.figuresQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	idx, err := s.d.Figures.Index(r.Context(), q)
	if err != nil {
		s.figuresFail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"groups": figures.Groups, "agencies": idx.Agencies, "parents": idx.Parents,
		"total": idx.Total, "unsupported": nonNilGroups(idx.Unsupported)})
}

func nonNilGroups(g []figures.GroupScore) []figures.GroupScore {
	if g == nil {
		return []figures.GroupScore{}
	}
	return g
}

// alerts are the events of deadline rules (those that fire on a time, at:),
// newest first: "due soon" and "became overdue".
func (s *Server) alerts(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 50, 1, 500)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var rules []string
	for _, m := range s.maps {
		for _, spec := range m.TimerRules() {
			name, _, _ := strings.Cut(spec, "@") // "deadline.due_soon@due_at - 2d"
			if !slices.Contains(rules, name) {
				rules = append(rules, name)
			}
		}
	}
	out := struct {
		Rules  []string    `json:"rules"`
		Events []eventJSON `json:"events"`
	}{Rules: rules, Events: []eventJSON{}}
	if len(rules) > 0 {
		slices.Sort(rules)
		p := principal(r)
		evs, err := s.d.Store.Events(r.Context(), store.EventQuery{Types: rules, Agencies: s.scope(p, r.URL.Query().Get("agency")), Limit: int(limit)})
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		for _, e := range evs {
			out.Events = append(out.Events, s.show(p, e))
		}
	}
	access.WriteJSON(w, http.StatusOK, out)
}
