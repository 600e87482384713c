// Package api serves the steering API under /api/v1/: sources' and sinks' status,
// the event list and its live stream (Server-Sent Events), the feedback inbox,
// operator actions, documented by the OpenAPI file it serves at
// /api/v1/openapi.json. Every route needs a token (package access); a token's
// agency scope filters what it sees, and citizens' names and phones are masked
// unless its role allows them.
package api

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
)

// Options are what the command adds to the daemon's own parts.
type Options struct {
	// Feedback is the citizens' feedback inbox; nil means the state store's
	// (StoreInbox), answered through Answerer (nil: answers are refused).
	Feedback FeedbackInbox
	Answerer FeedbackAnswerer
	// StreamPoll is how often the event stream looks for new events (default 1s);
	// Heartbeat how often an idle stream sends a comment to keep proxies from
	// closing it (default 15s).
	StreamPoll time.Duration
	Heartbeat  time.Duration
}

// Server answers the API for one daemon.
type Server struct {
	d      *engine.Daemon
	opts   Options
	guard  *access.Guard
	log    *slog.Logger
	maps   map[string]*mapping.Mapping // per source, for masking its records
	routes []route
}

// route is one endpoint: what the OpenAPI file documents and the tests cover.
type route struct {
	method, path string
	role         access.Role // "" for a public route
	h            http.HandlerFunc
}

// Mount returns the engine.Options.Mount function that serves the API.
func Mount(opts Options) func(mux *http.ServeMux, d *engine.Daemon) {
	return func(mux *http.ServeMux, d *engine.Daemon) {
		New(d, opts).Register(mux)
	}
}

// New builds the API of a daemon.
func New(d *engine.Daemon, opts Options) *Server {
	if opts.StreamPoll <= 0 {
		opts.StreamPoll = time.Second
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.Feedback == nil {
		if st, ok := d.Store.(FeedbackStore); ok {
			opts.Feedback = &StoreInbox{Store: st, Answerer: opts.Answerer}
		}
	}
	s := &Server{d: d, opts: opts, guard: d.Access, log: d.Logger.With("component", "api"), maps: map[string]*mapping.Mapping{}}
	for _, sc := range d.Config.Sources {
		s.maps[sc.Name] = sc.Map
	}
	s.routes = []route{
		{"GET", "/api/v1/openapi.json", "", s.openAPI},
		{"GET", "/api/v1/session", access.Viewer, s.session},
		{"GET", "/api/v1/status", access.Viewer, s.status},
		{"GET", "/api/v1/events", access.Viewer, s.events},
		{"GET", "/api/v1/events/stream", access.Viewer, s.stream},
		{"GET", "/api/v1/dead-letters", access.Viewer, s.deadLetters},
		{"POST", "/api/v1/dead-letters/replay", access.Operator, s.replay},
		{"POST", "/api/v1/dead-letters/dismiss", access.Operator, s.dismiss},
		{"POST", "/api/v1/sources/{name}/reset-cursor", access.Operator, s.resetCursor},
		{"GET", "/api/v1/audit", access.Admin, s.audit},
	}
	s.routes = append(s.routes, route{"GET", "/api/v1/alerts", access.Viewer, s.alerts})
	if d.Figures != nil {
		s.routes = append(s.routes,
			route{"GET", "/api/v1/figures", access.Viewer, s.figures},
			route{"GET", "/api/v1/figures/daily", access.Viewer, s.daily},
			route{"GET", "/api/v1/quality", access.Viewer, s.quality},
		)
	}
	if opts.Feedback != nil {
		s.routes = append(s.routes,
			route{"GET", "/api/v1/feedback", access.Viewer, s.feedbackList},
			route{"POST", "/api/v1/feedback/{ref}/answer", access.Operator, s.feedbackAnswer},
		)
	}
	return s
}

// Register adds every route to mux.
func (s *Server) Register(mux *http.ServeMux) {
	if s.guard.Keys.Len() == 0 {
		s.log.Warn("http.tokens is empty: the steering page and /api/v1 refuse every request until a token is configured")
	}
	for _, r := range s.routes {
		var h http.Handler = r.h
		if r.role != "" {
			h = s.guard.Require(r.role, h)
		}
		mux.Handle(r.method+" "+r.path, h)
	}
	// Anything else under /api/v1/ is a JSON 404 (after authentication, so the
	// routes a token cannot reach are not listed to strangers).
	mux.Handle("/api/v1/", s.guard.Require(access.Viewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		access.WriteError(w, http.StatusNotFound, "no such endpoint: see /api/v1/openapi.json")
	})))
}

// Routes lists "METHOD PATH" of every route served, for the documentation test.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, r := range s.routes {
		out[i] = r.method + " " + r.path
	}
	return out
}

//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(openAPIDoc)
}

// principal is the caller of a guarded route.
func principal(r *http.Request) access.Principal {
	p, _ := access.From(r.Context())
	return p
}

// internalError logs the cause and answers without it: store errors can carry
// details a caller need not see.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("api request failed", "path", r.URL.Path, "err", err)
	access.WriteError(w, http.StatusInternalServerError, "internal error (logged)")
}

// badRequest is a caller's mistake, named.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br badRequest
	if errors.As(err, &br) {
		access.WriteError(w, http.StatusBadRequest, br.msg)
		return
	}
	s.internalError(w, r, err)
}

// intParam reads an optional integer query parameter within [min, max].
func intParam(r *http.Request, name string, def, min, max int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		return 0, badf("%s: want a whole number from %d to %d, got %q", name, min, max, v)
	}
	return n, nil
}

// timeParam reads an optional time: RFC 3339, or a date (start of that day) or
// date and time in the province's zone.
func (s *Server) timeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, s.d.Config.Zone); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, badf("%s: %q is not a time (want 2026-11-27, 2026-11-27T08:00 or RFC 3339)", name, v)
}

// sees reports whether the principal may see what belongs to the agency: one of
// its scope's agencies or one under them (the config's agencies: parents).
func (s *Server) sees(p access.Principal, agency string) bool {
	return !p.Scoped() || s.dir().Within(agency, p.Agencies)
}

func (s *Server) dir() *figures.Directory {
	if s.d.Figures != nil && s.d.Figures.Agencies != nil {
		return s.d.Figures.Agencies
	}
	return figures.NewDirectory(s.d.Config.Agencies)
}

// scope is the agency codes a store query may match: those the principal sees
// (its scope's agencies and every declared agency under them) and, when one is
// requested, the requested agency and those under it. nil means every agency,
// an empty list nothing; a parent's code is matched too (records may carry it).
func (s *Server) scope(p access.Principal, requested string) []string {
	var allowed []string
	if p.Scoped() {
		allowed = s.expand(p.Agencies)
	}
	if requested == "" {
		return allowed
	}
	req := s.expand([]string{requested})
	if allowed == nil {
		return req
	}
	out := []string{}
	for _, c := range req {
		if slices.Contains(allowed, c) {
			out = append(out, c)
		}
	}
	return out
}

// expand returns the codes and every declared agency under them.
func (s *Server) expand(roots []string) []string {
	out := slices.Clone(roots)
	for _, a := range s.dir().List() {
		if !slices.Contains(out, a.Code) && s.dir().Within(a.Code, roots) {
			out = append(out, a.Code)
		}
	}
	return out
}

func (s *Server) now() time.Time { return s.d.Clock().UTC() }
