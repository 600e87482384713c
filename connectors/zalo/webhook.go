package zalo

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// SignatureHeader carries Zalo's signature of a webhook event.
const SignatureHeader = "X-ZEvent-Signature"

// Sign is Zalo's webhook signature: "mac=" and the hex SHA-256 of app id, raw
// body, the body's timestamp and the OA secret key, concatenated. (Not an HMAC:
// the key is part of the hashed text.)
func Sign(appID string, body []byte, timestamp, secret string) string {
	h := sha256.New()
	h.Write([]byte(appID))
	h.Write(body)
	h.Write([]byte(timestamp))
	h.Write([]byte(secret))
	return "mac=" + hex.EncodeToString(h.Sum(nil))
}

// envelope is what the receiver reads of an event. Ids and the timestamp are
// strings in Zalo's events (the timestamp is read as a number too).
type envelope struct {
	AppID     string          `json:"app_id"`
	OAID      string          `json:"oa_id"`
	EventName string          `json:"event_name"`
	Timestamp json.RawMessage `json:"timestamp"`
	Sender    struct {
		ID string `json:"id"`
	} `json:"sender"`
	Recipient struct {
		ID string `json:"id"`
	} `json:"recipient"`
	Follower struct {
		ID string `json:"id"`
	} `json:"follower"`
	Message struct {
		MsgID string `json:"msg_id"`
		Text  string `json:"text"`
	} `json:"message"`
	Info struct {
		Name  string `json:"name"`
		Phone string `json:"phone"`
	} `json:"info"`
}

// timestamp is the event's timestamp as it appears in the body (signed text).
func (e *envelope) timestamp() string { return strings.Trim(string(e.Timestamp), `"`) }

// at is when Zalo says the event happened; ok false when the timestamp is unreadable.
func (e *envelope) at() (time.Time, bool) {
	ms, err := strconv.ParseInt(e.timestamp(), 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}

// userID is the citizen the event is about.
func (e *envelope) userID() string {
	if e.Follower.ID != "" {
		return e.Follower.ID
	}
	if strings.HasPrefix(e.EventName, "oa_") { // the OA's own messages: the citizen is the recipient
		return e.Recipient.ID
	}
	return e.Sender.ID
}

// key identifies the event for deduplication: Zalo's message id, else its name,
// user and time.
func (e *envelope) key() string {
	if e.Message.MsgID != "" {
		return "msg:" + e.Message.MsgID
	}
	return e.EventName + ":" + e.userID() + ":" + e.timestamp()
}

// Mount serves POST /webhooks/zalo on the daemon's HTTP server when the sink has
// a citizens block, and starts the worker that handles what it receives.
func (s *Sink) Mount(mux *http.ServeMux) {
	if s.cit == nil {
		return
	}
	mux.HandleFunc("POST "+WebhookPath, s.ServeWebhook)
	s.StartWorker()
}

// ServeWebhook receives one of Zalo's webhook events: it checks the size, the
// signature over the raw bytes and the timestamp, commits the event to the store
// (a repeated delivery is found there and ignored) and answers 200 at once; a
// worker handles it afterwards. Only a store that cannot take the event makes it
// answer 503, so that Zalo delivers it again.
func (s *Sink) ServeWebhook(w http.ResponseWriter, r *http.Request) {
	if s.cit == nil {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.o.Webhook.MaxBody)))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.refuse(w, http.StatusRequestEntityTooLarge, "too_large")
		return
	case err != nil:
		s.refuse(w, http.StatusBadRequest, "unreadable")
		return
	}
	mac := r.Header.Get(SignatureHeader)
	if mac == "" {
		s.refuse(w, http.StatusUnauthorized, "no_signature")
		return
	}
	var ev envelope
	if err := json.Unmarshal(body, &ev); err != nil {
		s.refuse(w, http.StatusUnauthorized, "bad_signature") // an unreadable body cannot carry a valid signature
		return
	}
	want := Sign(s.o.AppID, body, ev.timestamp(), s.o.OASecretKey)
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(mac)), []byte(want)) != 1 {
		s.refuse(w, http.StatusUnauthorized, "bad_signature")
		return
	}
	at, ok := ev.at()
	now := s.clock()
	switch window := s.o.Webhook.Window.D(); {
	case !ok:
		s.refuse(w, http.StatusUnauthorized, "no_timestamp")
		return
	case at.Before(now.Add(-window)):
		s.refuse(w, http.StatusUnauthorized, "stale")
		return
	case at.After(now.Add(window)):
		s.refuse(w, http.StatusUnauthorized, "future")
		return
	}
	if oa := ev.OAID; oa != "" && s.o.OAID != DryRunOA && oa != s.o.OAID {
		s.metrics.webhook.WithLabelValues("other_oa").Inc()
		w.WriteHeader(http.StatusOK)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 1500*time.Millisecond)
	defer cancel()
	added, err := s.cit.st.AddZaloInbound(ctx, store.ZaloInbound{OAID: s.o.OAID, EventKey: ev.key(), EventName: ev.EventName,
		UserID: ev.userID(), Payload: body, ReceivedAt: now})
	if err != nil {
		s.log.Error("zalo webhook: cannot keep the event; Zalo will deliver it again", "event", ev.EventName, "err", err)
		s.metrics.webhook.WithLabelValues("store_error").Inc()
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if !added {
		s.metrics.webhook.WithLabelValues("repeated").Inc()
		w.WriteHeader(http.StatusOK)
		return
	}
	s.metrics.webhook.WithLabelValues("accepted").Inc()
	select {
	case s.cit.wake <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusOK)
}

// refuse answers a request that is not a valid event, and counts it.
func (s *Sink) refuse(w http.ResponseWriter, status int, reason string) {
	s.metrics.webhook.WithLabelValues("refused_" + reason).Inc()
	http.Error(w, http.StatusText(status), status)
}

var _ pipeline.Mounter = (*Sink)(nil)
