package announce

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Routes lists the API's announcement routes ("METHOD PATH"), for the OpenAPI
// document's test; Register serves the same table. Every one needs a token of
// any role (access.Viewer): the regulation decides, by the token's name, who may
// do what.
func Routes() []string {
	var out []string
	for _, r := range (&handler{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// Register serves the announcements under /api/v1/announcements. Every route
// needs a token; a token's name is the person the regulation names, and its
// agency scope limits which announcements it sees and acts on.
func Register(mux *http.ServeMux, g *access.Guard, s *Service) {
	h := &handler{s: s, log: s.log.With("component", "announcements-api")}
	for _, r := range h.routes() {
		mux.Handle(r.pattern, g.Require(access.Viewer, r.f))
	}
}

type route struct {
	pattern string
	f       http.HandlerFunc
}

func (h *handler) routes() []route {
	return []route{
		{"GET /api/v1/announcements", h.list},
		{"POST /api/v1/announcements", h.create},
		{"POST /api/v1/announcements/preview", h.previewDraft},
		{"GET /api/v1/announcements/queue", h.queue},
		{"GET /api/v1/announcements/report", h.report},
		{"GET /api/v1/announcements/{id}", h.get},
		{"PUT /api/v1/announcements/{id}", h.edit},
		{"GET /api/v1/announcements/{id}/preview", h.previewStored},
		{"GET /api/v1/announcements/{id}/recipients", h.recipients},
		{"POST /api/v1/announcements/{id}/{step}", h.step},
	}
}

type handler struct {
	s   *Service
	log *slog.Logger
}

func principal(r *http.Request) access.Principal {
	p, _ := access.From(r.Context())
	return p
}

// scope is the agencies the principal sees (nil: all).
func (h *handler) scope(p access.Principal) []string {
	if !p.Scoped() {
		return nil
	}
	var out []string
	for _, a := range h.s.dir.List() {
		if h.s.dir.Within(a.Code, p.Agencies) {
			out = append(out, a.Code)
		}
	}
	return append(out, p.Agencies...)
}

func (h *handler) sees(p access.Principal, agency string) bool {
	return !p.Scoped() || h.s.dir.Within(agency, p.Agencies)
}

// fail answers a refusal with its reason and anything else as an internal error.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ref *Refused
	switch {
	case errors.As(err, &ref):
		access.WriteError(w, http.StatusForbidden, ref.Msg)
	case errors.Is(err, store.ErrNotFound):
		access.WriteError(w, http.StatusNotFound, "no such announcement")
	case errors.Is(err, store.ErrStateChanged):
		access.WriteError(w, http.StatusConflict, "the announcement is not in a state this step starts from")
	default:
		h.log.Error("announcements request failed", "path", r.URL.Path, "err", err)
		access.WriteError(w, http.StatusInternalServerError, "internal error (logged)")
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		access.WriteError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

// view is an announcement as the API shows it.
type view struct {
	store.Announcement
	Draft  Draft          `json:"draft"`
	States map[string]int `json:"recipient_states,omitempty"`
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	var states []string
	if v := r.URL.Query().Get("state"); v != "" {
		states = strings.Split(v, ",")
	}
	list, err := h.s.List(r.Context(), h.scope(principal(r)), states, 200)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"announcements": nonNil(list)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var d Draft
	if !readJSON(w, r, &d) {
		return
	}
	p := principal(r)
	if !h.sees(p, d.Agency) {
		access.WriteError(w, http.StatusForbidden, "agency "+d.Agency+" is outside this token's scope")
		return
	}
	id, err := h.s.Create(r.Context(), p.Name, d)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusCreated, map[string]any{"id": id})
}

func (h *handler) previewDraft(w http.ResponseWriter, r *http.Request) {
	var d Draft
	if !readJSON(w, r, &d) {
		return
	}
	if !h.sees(principal(r), d.Agency) {
		access.WriteError(w, http.StatusForbidden, "agency "+d.Agency+" is outside this token's scope")
		return
	}
	p, err := h.s.PreviewDraft(r.Context(), d)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, p)
}

func (h *handler) queue(w http.ResponseWriter, r *http.Request) {
	q, err := h.s.Queue(r.Context(), principal(r).Name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"announcements": nonNil(q)})
}

func (h *handler) report(w http.ResponseWriter, r *http.Request) {
	rep, err := h.s.Report(r.Context(), h.scope(principal(r)))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"agencies": nonNil(rep)})
}

// load reads the {id} announcement the principal may see.
func (h *handler) load(w http.ResponseWriter, r *http.Request) (store.Announcement, Draft, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		access.WriteError(w, http.StatusNotFound, "no such announcement")
		return store.Announcement{}, Draft{}, false
	}
	a, d, err := h.s.Get(r.Context(), id)
	if err == nil && !h.sees(principal(r), a.Agency) {
		err = store.ErrNotFound
	}
	if err != nil {
		h.fail(w, r, err)
		return store.Announcement{}, Draft{}, false
	}
	return a, d, true
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	a, d, ok := h.load(w, r)
	if !ok {
		return
	}
	states, err := h.s.st.RecipientStates(r.Context(), a.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, view{Announcement: a, Draft: d, States: states})
}

func (h *handler) edit(w http.ResponseWriter, r *http.Request) {
	a, _, ok := h.load(w, r)
	if !ok {
		return
	}
	var d Draft
	if !readJSON(w, r, &d) {
		return
	}
	if err := h.s.Edit(r.Context(), principal(r).Name, a.ID, d); err != nil {
		h.fail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"id": a.ID})
}

func (h *handler) previewStored(w http.ResponseWriter, r *http.Request) {
	a, _, ok := h.load(w, r)
	if !ok {
		return
	}
	p, err := h.s.PreviewStored(r.Context(), a.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, p)
}

func (h *handler) recipients(w http.ResponseWriter, r *http.Request) {
	a, _, ok := h.load(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	after, _ := strconv.Atoi(q.Get("after"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 || limit > 1000 {
		limit = 100
	}
	rs, err := h.s.st.AnnouncementRecipients(r.Context(), a.ID, q.Get("state"), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !principal(r).Unmasked() {
		for i := range rs {
			rs[i].Phone = transform.MaskPhone(rs[i].Phone)
		}
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"recipients": nonNil(rs)})
}

func (h *handler) step(w http.ResponseWriter, r *http.Request) {
	a, _, ok := h.load(w, r)
	if !ok {
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 && !readJSON(w, r, &body) {
		return
	}
	who := principal(r).Name
	ctx := r.Context()
	var err error
	switch r.PathValue("step") {
	case "submit":
		err = h.s.Submit(ctx, who, a.ID)
	case "approve":
		err = h.s.Approve(ctx, who, a.ID)
	case "reject":
		err = h.s.Reject(ctx, who, a.ID, body.Reason)
	case "schedule":
		err = h.s.Schedule(ctx, who, a.ID)
	case "cancel":
		err = h.s.Cancel(ctx, who, a.ID, body.Reason)
	default:
		access.WriteError(w, http.StatusNotFound, "no such step (submit, approve, reject, schedule, cancel)")
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	cur, err := h.s.st.Announcement(ctx, a.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, cur)
}
