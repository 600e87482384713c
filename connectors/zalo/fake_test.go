package zalo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	fakeAppID  = "app-123"
	fakeSecret = "secret-key-for-tests"
)

// fakeZalo behaves as Zalo's OAuth, OA and ZNS servers do, as far as the sink
// depends on them: errors inside HTTP 200, refresh tokens that work once, access
// tokens that can be invalidated mid-run, followers, recipient codes and the night
// code for ZNS. Hooks inject rate codes, HTTP 500 and slow answers.
type fakeZalo struct {
	srv *httptest.Server

	mu        sync.Mutex
	seq       int
	refresh   map[string]bool // refresh token -> still usable
	spent     map[string]bool
	reused    []string // refresh tokens presented again after use
	access    map[string]bool
	current   string // the latest access token
	refreshes int
	followers map[string]bool // user ids that follow the OA
	messages  []fakeMessage   // OA messages and ZNS, in arrival order
	night     bool            // ZNS answers -133
	// hook, when set, may answer a send itself (return true).
	hook func(w http.ResponseWriter, path string, body map[string]any) bool
	// onSend runs before a send is accepted (after the token check), outside mu;
	// false drops the send (HTTP 500, nothing recorded).
	onSend func(path string) bool
	// refuseAll makes every refresh fail as Zalo does for a revoked token.
	refuseAll bool
	// refreshDelay slows every refresh; inflight and maxInflight count refreshes
	// being served at once.
	refreshDelay          time.Duration
	inflight, maxInflight int
	// invalidateEvery invalidates the current access token after every that many
	// accepted messages (0: never).
	invalidateEvery int
	// invalidateAt invalidates the current access token when that many messages
	// have been accepted.
	invalidateAt map[int]bool
}

type fakeMessage struct {
	Path       string
	UserID     string
	Phone      string
	Text       string
	TemplateID string
	Data       map[string]any
	TrackingID string
	Token      string
	ReplyTo    string         // recipient.message_id: a reply to a citizen's message
	Body       map[string]any // the request as sent
	At         time.Time      // when it arrived
}

func newFakeZalo(t *testing.T) *fakeZalo {
	f := &fakeZalo{refresh: map[string]bool{}, spent: map[string]bool{}, access: map[string]bool{},
		followers: map[string]bool{}, invalidateAt: map[int]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// pair issues a usable pair, as the OAuth flow would have.
func (f *fakeZalo) pair() (access, refresh string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issue()
}

func (f *fakeZalo) issue() (string, string) {
	f.seq++
	a, r := fmt.Sprintf("A%d", f.seq), fmt.Sprintf("R%d", f.seq)
	f.access[a], f.refresh[r], f.current = true, true, a
	return a, r
}

func (f *fakeZalo) invalidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.access[f.current] = false
}

func (f *fakeZalo) follow(userIDs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range userIDs {
		f.followers[u] = true
	}
}

func (f *fakeZalo) snapshot() (msgs []fakeMessage, refreshes int, reused []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeMessage(nil), f.messages...), f.refreshes, append([]string(nil), f.reused...)
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func zerr(w http.ResponseWriter, code int, msg string) {
	answer(w, map[string]any{"error": code, "message": msg})
}

func (f *fakeZalo) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == pathToken {
		f.serveToken(w, r)
		return
	}
	if r.URL.Path == pathConversation {
		f.serveConversation(w, r)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		zerr(w, -201, "invalid body")
		return
	}
	if f.hook != nil && f.hook(w, r.URL.Path, body) {
		return
	}
	token := r.Header.Get("access_token")
	f.mu.Lock()
	if !f.access[token] {
		f.mu.Unlock()
		zerr(w, -216, "Access token is invalid")
		return
	}
	f.mu.Unlock()
	if f.onSend != nil && !f.onSend(r.URL.Path) {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	m := fakeMessage{Path: r.URL.Path, Token: token, Body: body, At: time.Now()}
	switch r.URL.Path {
	case pathText, pathTransaction, pathPromotion:
		rec, _ := body["recipient"].(map[string]any)
		m.UserID, _ = rec["user_id"].(string)
		m.ReplyTo, _ = rec["message_id"].(string)
		msg, _ := body["message"].(map[string]any)
		m.Text, _ = msg["text"].(string)
		if m.Text == "" {
			b, _ := json.Marshal(msg)
			m.Text = string(b)
		}
		f.mu.Lock()
		following := f.followers[m.UserID]
		f.mu.Unlock()
		if !following && m.ReplyTo == "" { // a reply goes to whoever wrote the message
			zerr(w, -213, "User has not followed OA")
			return
		}
		if n := len([]rune(m.Text)); r.URL.Path == pathText && n > MaxText {
			zerr(w, -201, fmt.Sprintf("text is %d characters, over 2000", n))
			return
		}
	case pathZNS:
		m.Phone, _ = body["phone"].(string)
		m.TemplateID, _ = body["template_id"].(string)
		m.Data, _ = body["template_data"].(map[string]any)
		m.TrackingID, _ = body["tracking_id"].(string)
		f.mu.Lock()
		night := f.night
		f.mu.Unlock()
		if night {
			zerr(w, CodeNight, "Sending ZNS at night is not allowed")
			return
		}
		if len(m.TrackingID) > MaxTrackingID {
			zerr(w, -201, "tracking_id too long")
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.messages = append(f.messages, m)
	n := len(f.messages)
	if f.invalidateAt[n] || f.invalidateEvery > 0 && n%f.invalidateEvery == 0 {
		f.access[f.current] = false
	}
	f.mu.Unlock()
	answer(w, map[string]any{"error": 0, "message": "Success",
		"data": map[string]any{"message_id": fmt.Sprintf("msg-%d", n), "quota": map[string]any{"quota_type": "sub_quota"}}})
}

func (f *fakeZalo) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("secret_key") != fakeSecret || r.PostForm.Get("app_id") != fakeAppID ||
		r.PostForm.Get("grant_type") != "refresh_token" {
		answer(w, map[string]any{"error": -14002, "error_name": "Invalid app", "error_description": "app_id or secret_key is wrong"})
		return
	}
	rt := r.PostForm.Get("refresh_token")
	f.mu.Lock()
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	delay := f.refreshDelay
	f.mu.Unlock()
	time.Sleep(delay) // a slow OAuth server widens any window two refreshers could share
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() { f.inflight-- }()
	if f.spent[rt] {
		f.reused = append(f.reused, rt)
	}
	if !f.refresh[rt] || f.refuseAll {
		// Zalo answers a refused refresh token with HTTP 200 and an error.
		answer(w, map[string]any{"error": -14014, "error_name": "Invalid refresh token",
			"error_description": "Refresh token is invalid or has been used"})
		return
	}
	f.refresh[rt], f.spent[rt] = false, true
	f.refreshes++
	a, nr := f.issue()
	answer(w, map[string]any{"access_token": a, "refresh_token": nr, "expires_in": "90000"})
}

// idsInTexts returns event ids quoted in the fake's OA texts as "[id]".
func idsInTexts(msgs []fakeMessage) []string {
	var ids []string
	for _, m := range msgs {
		if i := strings.Index(m.Text, "["); i >= 0 {
			if j := strings.Index(m.Text[i:], "]"); j > 0 {
				ids = append(ids, m.Text[i+1:i+j])
			}
		}
	}
	return ids
}

// slow delays every send by d.
func slow(d time.Duration) func(w http.ResponseWriter, path string, body map[string]any) bool {
	return func(http.ResponseWriter, string, map[string]any) bool {
		time.Sleep(d)
		return false
	}
}

// serveConversation answers the recent messages with a user, newest first, as
// Zalo's conversation API does: src 0 for the OA's, message its text (for a
// template message, its header).
func (f *fakeZalo) serveConversation(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.access[r.Header.Get("access_token")] {
		zerr(w, -216, "Access token is invalid")
		return
	}
	var q struct {
		UserID string `json:"user_id"`
		Count  int    `json:"count"`
	}
	if err := json.Unmarshal([]byte(r.URL.Query().Get("data")), &q); err != nil {
		zerr(w, -201, "invalid data")
		return
	}
	data := []map[string]any{}
	for i := len(f.messages) - 1; i >= 0 && len(data) < q.Count; i-- {
		m := f.messages[i]
		if m.UserID != q.UserID {
			continue
		}
		text := m.Text
		if m.Path == pathPromotion {
			text = promotionHeader(m.Body)
		}
		data = append(data, map[string]any{"msg_id": fmt.Sprintf("msg-%d", i+1), "src": 0, "time": m.At.UnixMilli(), "type": "text", "message": text})
	}
	answer(w, map[string]any{"error": 0, "message": "Success", "data": data})
}

// promotionHeader is a promotion message's header element.
func promotionHeader(body map[string]any) string {
	msg, _ := body["message"].(map[string]any)
	att, _ := msg["attachment"].(map[string]any)
	payload, _ := att["payload"].(map[string]any)
	elements, _ := payload["elements"].([]any)
	for _, e := range elements {
		if el, _ := e.(map[string]any); el["type"] == "header" {
			s, _ := el["content"].(string)
			return s
		}
	}
	return ""
}
