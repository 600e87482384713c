package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// CookieName is the session cookie the login form sets. It holds the token itself,
// HttpOnly and SameSite=Strict: the page's scripts never see it, other sites'
// pages never send it, and a token removed from the config ends its sessions at
// once, with no session table to keep in step across replicas.
const CookieName = "egov_session"

// CSRFHeader carries the anti-forgery value on requests that change something and
// authenticate by the cookie. The page reads the value from GET /api/v1/session.
const CSRFHeader = "X-CSRF-Token"

// How a request proved who it is.
const (
	ViaBearer = "bearer"
	ViaCookie = "cookie"
)

// Guard authenticates requests against a keyring.
type Guard struct {
	Keys *Keyring
}

// Authenticate returns the principal of a request's bearer token or, without
// one, of its session cookie, and which of the two it was.
func (g *Guard) Authenticate(r *http.Request) (p Principal, via string, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Principal{}, "", false
		}
		p, ok := g.Keys.Lookup(strings.TrimSpace(tok))
		return p, ViaBearer, ok
	}
	if c, err := r.Cookie(CookieName); err == nil {
		p, ok := g.Keys.Lookup(c.Value)
		return p, ViaCookie, ok
	}
	return Principal{}, "", false
}

// CSRFToken is the anti-forgery value of a session: derived from its token, so
// nothing is stored, and useless without reading it through the same-origin API.
func CSRFToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("egov-bridge csrf"))
	return hex.EncodeToString(m.Sum(nil))
}

// safeMethod: requests that change nothing need no CSRF check.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// SameOrigin reports whether a request's Origin (or, without one, Referer) names
// this server; a request that carries neither passes (non-browser clients).
func SameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// checkCSRF refuses a cookie-authenticated request that changes something unless
// it comes from this origin and carries the session's CSRF value.
func checkCSRF(r *http.Request, via string) bool {
	if via != ViaCookie || safeMethod(r.Method) {
		return true
	}
	c, err := r.Cookie(CookieName)
	if err != nil || !SameOrigin(r) {
		return false
	}
	got := r.Header.Get(CSRFHeader)
	return got != "" && hmac.Equal([]byte(got), []byte(CSRFToken(c.Value)))
}

// Require wraps h so that it runs only for a principal whose role allows need:
// 401 without a valid token, 403 for a role below need or a failed CSRF check.
// The principal is in the request's context (From).
func (g *Guard) Require(need Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, via, ok := g.Authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="egov-bridge"`)
			WriteError(w, http.StatusUnauthorized, "a valid token is required: Authorization: Bearer <token>, or log in at /login")
			return
		}
		if !checkCSRF(r, via) {
			WriteError(w, http.StatusForbidden, "cross-site request refused: send "+CSRFHeader+" (from GET /api/v1/session) from this site")
			return
		}
		if !p.Role.Allows(need) {
			WriteError(w, http.StatusForbidden, "the role "+string(p.Role)+" may not do this (needs "+string(need)+")")
			return
		}
		h.ServeHTTP(w, r.WithContext(With(r.Context(), p)))
	})
}

// Expose wraps an operations endpoint per its setting; Off returns nil (do not
// register it).
func (g *Guard) Expose(e Exposure, h http.Handler) http.Handler {
	switch e {
	case Off:
		return nil
	case Token:
		return g.Require(Viewer, h)
	}
	return h
}

// SetSession sets the session cookie for a token, Secure when the request came
// over TLS (directly or through a proxy that says so).
func SetSession(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
	})
}

// ClearSession removes the session cookie.
func ClearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// WriteJSON answers v as JSON with the status, never cached (answers carry
// figures and citizen data for one token), with <, > and & kept as written (the
// API's texts are Vietnamese messages, not HTML).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteError answers with a JSON error body.
func WriteError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
