package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// session says who the caller is; over the session cookie it also gives the
// value the page sends back in X-CSRF-Token with what it changes.
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	out := map[string]any{"name": p.Name, "role": p.Role, "agencies": p.Agencies, "unmasked": p.Unmasked(),
		"zone": s.d.Config.Zone.String()}
	if _, via, _ := s.guard.Authenticate(r); via == access.ViaCookie {
		if c, err := r.Cookie(access.CookieName); err == nil {
			out["csrf_token"] = access.CSRFToken(c.Value)
		}
	}
	access.WriteJSON(w, http.StatusOK, out)
}

type sourceStatus struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Agency      string    `json:"agency,omitempty"`
	Schedule    string    `json:"schedule"`
	LastCommit  time.Time `json:"last_commit,omitzero"`
	AgeSeconds  float64   `json:"age_seconds,omitempty"` // since the last commit
	InitialDone bool      `json:"initial_done"`
	LastError   string    `json:"last_error,omitempty"`
	ErrorAt     time.Time `json:"error_at,omitzero"`
	Stopped     string    `json:"stopped,omitempty"` // why the source is stopped until fixed
	Quarantined int       `json:"quarantined"`
	OK          bool      `json:"ok"`
}

type sinkStatus struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Outbox      int    `json:"outbox"`
	DeadLetters int    `json:"dead_letters"`
	HeldRecords int    `json:"held_records"`
	OK          bool   `json:"ok"`
}

// status is the health of every source (those of the caller's agencies) and sink.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.d.Store.Stats(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	now := s.now()
	p := principal(r)
	cursors := map[string]store.CursorState{}
	for _, c := range st.Cursors {
		cursors[c.Source] = c
	}
	out := struct {
		Now     time.Time      `json:"now"`
		Sources []sourceStatus `json:"sources"`
		Sinks   []sinkStatus   `json:"sinks"`
	}{Now: now, Sources: []sourceStatus{}, Sinks: []sinkStatus{}}
	for i, sc := range s.d.Config.Sources {
		if !s.sees(p, sc.Agency) {
			continue
		}
		c := cursors[sc.Name]
		ss := sourceStatus{Name: sc.Name, Type: sc.Type, Agency: sc.Agency, Schedule: sc.Schedule, LastCommit: c.UpdatedAt,
			InitialDone: c.InitialDone, LastError: c.LastError, ErrorAt: c.ErrorAt, Quarantined: st.Quarantined[sc.Name]}
		if !c.UpdatedAt.IsZero() {
			ss.AgeSeconds = now.Sub(c.UpdatedAt).Seconds()
		}
		if i < len(s.d.Jobs) {
			if err := s.d.Jobs[i].Stopped(); err != nil {
				ss.Stopped = err.Error()
			}
		}
		ss.OK = ss.LastError == "" && ss.Stopped == "" && !c.UpdatedAt.IsZero()
		out.Sources = append(out.Sources, ss)
	}
	for _, sc := range s.d.Config.Sinks {
		ks := sinkStatus{Name: sc.Name, Type: sc.Type, Outbox: st.Outbox[sc.Name], DeadLetters: st.DeadLetters[sc.Name],
			HeldRecords: st.HeldRecords[sc.Name]}
		ks.OK = ks.HeldRecords == 0
		out.Sinks = append(out.Sinks, ks)
	}
	access.WriteJSON(w, http.StatusOK, out)
}

type deadLetterJSON struct {
	ID       int64           `json:"id"`
	Sink     string          `json:"sink"`
	At       time.Time       `json:"at"`
	State    store.DeadState `json:"state"`
	Held     int             `json:"held"`
	Attempts int             `json:"attempts"`
	Reason   string          `json:"reason"`
	Event    eventJSON       `json:"event"`
}

// visibleDead returns the dead letters of the sink ("" all) that the caller's
// scope covers, newest first.
func (s *Server) visibleDead(r *http.Request, sink string) ([]store.DeadLetter, error) {
	all, err := s.d.Store.DeadLetters(r.Context(), sink, 0)
	if err != nil {
		return nil, err
	}
	p := principal(r)
	out := make([]store.DeadLetter, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		if s.sees(p, all[i].Event.Agency) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	dead, err := s.visibleDead(r, r.URL.Query().Get("sink"))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	p := principal(r)
	out := struct {
		DeadLetters []deadLetterJSON `json:"dead_letters"`
		Total       int              `json:"total"`
	}{DeadLetters: []deadLetterJSON{}, Total: len(dead)}
	for _, d := range dead[:min(len(dead), int(limit))] {
		reason := d.Reason
		if !p.Unmasked() { // a receiver's answer may echo the citizen's number
			reason = phoneInText.ReplaceAllStringFunc(reason, transform.MaskPhone)
		}
		out.DeadLetters = append(out.DeadLetters, deadLetterJSON{ID: d.ID, Sink: d.Sink, At: d.At, State: d.State, Held: d.Held,
			Attempts: d.Attempts, Reason: reason, Event: s.show(p, store.StoredEvent{Seq: d.Seq, Event: d.Event})})
	}
	access.WriteJSON(w, http.StatusOK, out)
}

// deadSelection is the body of replay and dismiss: dead letter ids, or every
// replayable dead letter of a sink.
type deadSelection struct {
	IDs  []int64 `json:"ids"`
	Sink string  `json:"sink"`
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badf("body: %v", err)
	}
	return nil
}

// pick resolves a selection to the replayable dead letters the caller may act
// on; ids it cannot see or that do not exist are returned as missing.
func (s *Server) pick(r *http.Request) (ids, missing []int64, sel deadSelection, err error) {
	if err := decodeBody(r, &sel); err != nil {
		return nil, nil, sel, err
	}
	if len(sel.IDs) == 0 && sel.Sink == "" {
		return nil, nil, sel, badf("name the dead letters: {\"ids\": [1, 2]} or {\"sink\": \"zalo\"} for all of a sink")
	}
	dead, err := s.visibleDead(r, sel.Sink)
	if err != nil {
		return nil, nil, sel, err
	}
	byID := map[int64]store.DeadLetter{}
	for _, d := range dead {
		byID[d.ID] = d
	}
	if len(sel.IDs) == 0 {
		for _, d := range dead {
			if d.State.Replayable() {
				ids = append(ids, d.ID)
			}
		}
		return ids, nil, sel, nil
	}
	for _, id := range sel.IDs {
		if _, ok := byID[id]; ok {
			ids = append(ids, id)
		} else {
			missing = append(missing, id)
		}
	}
	return ids, missing, sel, nil
}

// auditAs records an operator action with the caller's name and role. The action
// is done by then; a failure to record it is an error the caller sees.
func (s *Server) auditAs(r *http.Request, action, detail string) error {
	p := principal(r)
	err := s.d.Store.Audit(r.Context(), store.AuditEntry{At: s.now(), Actor: fmt.Sprintf("%s (%s)", p.Actor(), p.Role), Action: action, Detail: detail})
	if err != nil {
		return fmt.Errorf("the action was done but could not be written to the audit log: %w", err)
	}
	return nil
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	ids, missing, sel, err := s.pick(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var res store.ReplayResult
	if len(ids) > 0 {
		if res, err = s.d.Store.Replay(r.Context(), ids, s.now()); err != nil {
			s.internalError(w, r, err)
			return
		}
		s.d.Dispatcher.Wake()
	}
	detail := fmt.Sprintf("%d dead letters, %d superseded and %d dismissed not resent (sink=%q ids=%v)", res.Replayed, res.Superseded, res.Dismissed, sel.Sink, ids)
	if err := s.auditAs(r, "replay", detail); err != nil {
		s.internalError(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"replayed": res.Replayed, "superseded": res.Superseded, "dismissed": res.Dismissed,
		"not_found": nonNil(missing)})
}

func (s *Server) dismiss(w http.ResponseWriter, r *http.Request) {
	ids, missing, sel, err := s.pick(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n := 0
	if len(ids) > 0 {
		if n, err = s.d.Store.Dismiss(r.Context(), ids, s.now()); err != nil {
			s.internalError(w, r, err)
			return
		}
		s.d.Dispatcher.Wake()
	}
	if err := s.auditAs(r, "dismiss", fmt.Sprintf("%d dead letters (sink=%q ids=%v)", n, sel.Sink, ids)); err != nil {
		s.internalError(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"dismissed": n, "not_found": nonNil(missing)})
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// resetCursor makes the source re-read from the start at its next run; the
// snapshot is kept, so unchanged records produce no events.
func (s *Server) resetCursor(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	i := slices.IndexFunc(s.d.Config.Sources, func(sc engine.SourceConfig) bool { return sc.Name == name })
	if i < 0 || !s.sees(principal(r), s.d.Config.Sources[i].Agency) {
		access.WriteError(w, http.StatusNotFound, fmt.Sprintf("no source %q", name))
		return
	}
	err := s.d.Store.ResetCursor(r.Context(), name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internalError(w, r, err)
		return
	}
	if err := s.auditAs(r, "reset-cursor", "source "+name); err != nil {
		s.internalError(w, r, err)
		return
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"source": name, "reset": err == nil,
		"note": "the next run re-reads the source from the start; unchanged records produce no events"})
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	log, err := s.d.Store.AuditLog(r.Context(), int(limit))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	type entry struct {
		ID     int64     `json:"id"`
		At     time.Time `json:"at"`
		Actor  string    `json:"actor"`
		Action string    `json:"action"`
		Detail string    `json:"detail"`
	}
	out := make([]entry, 0, len(log))
	for i := len(log) - 1; i >= 0; i-- { // newest first
		e := log[i]
		out = append(out, entry{e.ID, e.At, e.Actor, e.Action, e.Detail})
	}
	access.WriteJSON(w, http.StatusOK, map[string]any{"entries": out})
}
