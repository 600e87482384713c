package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// eventJSON is an event as the API shows it: with its seq (the list's paging key
// and the stream's event id).
type eventJSON struct {
	Seq int64 `json:"seq"`
	pipeline.Event
}

// show returns the event as the principal may see it: citizen fields masked in
// before, after and the rendered message unless the role allows them.
func (s *Server) show(p access.Principal, se store.StoredEvent) eventJSON {
	ev := se.Event
	if !p.Unmasked() {
		if m := s.maps[ev.Source]; m != nil {
			if ev.Message != nil {
				msg := *ev.Message
				msg.Text = m.MaskRecordText(m.MaskRecordText(msg.Text, ev.After), ev.Before)
				ev.Message = &msg
			}
			ev.Before, ev.After, ev.AfterJSON = m.MaskRecord(ev.Before), m.MaskRecord(ev.After), nil
		}
		if ev.Message != nil && ev.Message.Phone != "" {
			msg := *ev.Message
			msg.Phone = transform.MaskPhone(msg.Phone)
			ev.Message = &msg
		}
	}
	return eventJSON{Seq: se.Seq, Event: ev}
}

// eventQuery reads the filters shared by the list and the stream.
func (s *Server) eventQuery(r *http.Request) (store.EventQuery, error) {
	q := r.URL.Query()
	eq := store.EventQuery{Entity: q.Get("entity"), Agencies: s.scope(principal(r), q.Get("agency"))}
	for _, t := range strings.Split(q.Get("type"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			eq.Types = append(eq.Types, t)
		}
	}
	var err error
	if eq.Since, err = s.timeParam(r, "since"); err != nil {
		return eq, err
	}
	if eq.Until, err = s.timeParam(r, "until"); err != nil {
		return eq, err
	}
	return eq, nil
}

// events lists events newest first, a page at a time: next links to the page
// after this one.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	eq, err := s.eventQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", 50, 1, 500)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if eq.BeforeSeq, err = intParam(r, "before", 0, 0, 1<<62); err != nil {
		s.fail(w, r, err)
		return
	}
	eq.Limit = int(limit)
	evs, err := s.d.Store.Events(r.Context(), eq)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	p := principal(r)
	out := struct {
		Events []eventJSON `json:"events"`
		Next   string      `json:"next,omitempty"`
	}{Events: make([]eventJSON, 0, len(evs))}
	for _, e := range evs {
		out.Events = append(out.Events, s.show(p, e))
	}
	if len(evs) == int(limit) {
		next := url.Values{}
		for k, v := range r.URL.Query() {
			next[k] = v
		}
		next.Set("before", strconv.FormatInt(evs[len(evs)-1].Seq, 10))
		out.Next = "/api/v1/events?" + next.Encode()
	}
	access.WriteJSON(w, http.StatusOK, out)
}

// stream sends events as Server-Sent Events as they are committed, oldest first,
// each with its seq as the event id: a client that reconnects with Last-Event-ID
// (browsers do it themselves) misses nothing. Without one, or ?after=SEQ, it
// starts at the newest event. It polls the store, so it shows what every
// replica commits.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	eq, err := s.eventQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, badf("after: want an event seq, got %q", after))
			return
		}
		eq.AfterSeq = n
	} else {
		newest, err := s.d.Store.Events(r.Context(), store.EventQuery{Limit: 1})
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		if len(newest) > 0 {
			eq.AfterSeq = newest[0].Seq
		}
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.internalError(w, r, fmt.Errorf("the response writer cannot stream"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events through at once
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 3000\n: from seq %d\n\n", eq.AfterSeq)
	flusher.Flush()

	p := principal(r)
	eq.Ascending, eq.Limit = true, 200
	poll := time.NewTimer(0)
	defer poll.Stop()
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-poll.C:
			evs, err := s.d.Store.Events(r.Context(), eq)
			if err != nil {
				if r.Context().Err() == nil {
					s.log.Warn("event stream: cannot read events", "err", err)
				}
				poll.Reset(s.opts.StreamPoll)
				continue
			}
			for _, e := range evs {
				b, err := json.Marshal(s.show(p, e))
				if err != nil {
					s.log.Warn("event stream: cannot encode an event", "seq", e.Seq, "err", err)
					continue
				}
				if _, err := fmt.Fprintf(w, "id: %d\nevent: event\ndata: %s\n\n", e.Seq, b); err != nil {
					return
				}
				eq.AfterSeq = e.Seq
			}
			if len(evs) > 0 {
				flusher.Flush()
			}
			if len(evs) == eq.Limit {
				poll.Reset(0) // more waiting: send it now
			} else {
				poll.Reset(s.opts.StreamPoll)
			}
		}
	}
}
