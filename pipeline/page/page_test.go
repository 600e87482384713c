package page

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/access"
)

const token = "page-test-token-00001"

func server(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	Register(mux, &access.Guard{Keys: access.NewKeyring([]access.TokenConfig{{Name: "lanh-dao", Token: token, Role: access.Viewer}})})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// noRedirect keeps redirects visible to the test.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func login(t *testing.T, srv *httptest.Server, tok, origin string) (*http.Response, string) {
	req, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return do(t, req)
}

func TestThePageNeedsALoginThatSetsAnHttpOnlySessionCookie(t *testing.T) {
	srv := server(t)
	get := func(path string, cookie *http.Cookie) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		return do(t, req)
	}
	if resp, _ := get("/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / without a session = %d → %s, want 303 → /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := get("/login", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="token"`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") ||
		resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("GET /login = %d, headers %v", resp.StatusCode, resp.Header)
	}
	if resp, body := login(t, srv, "wrong-token-000000001", srv.URL); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Mã truy cập không đúng") || len(resp.Cookies()) > 0 {
		t.Errorf("a wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if resp, _ := login(t, srv, token, "https://evil.example"); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) > 0 {
		t.Errorf("a login posted from another site: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, _ = login(t, srv, token, srv.URL)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == access.CookieName {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Fatalf("login = %d, cookie %+v", resp.StatusCode, session)
	}
	if resp, body := get("/", session); resp.StatusCode != 200 || !strings.Contains(body, "Bảng điều hành") || !strings.Contains(body, "/assets/app.js") {
		t.Fatalf("GET / with the session = %d", resp.StatusCode)
	}
	for _, asset := range []string{"/assets/app.js", "/assets/charts.js", "/assets/app.css"} {
		if resp, body := get(asset, nil); resp.StatusCode != 200 || len(body) < 500 {
			t.Errorf("GET %s = %d (%d bytes)", asset, resp.StatusCode, len(body))
		}
	}
	req, _ := http.NewRequest("POST", srv.URL+"/logout", nil)
	req.AddCookie(session)
	resp, _ = do(t, req)
	if len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 || resp.Header.Get("Location") != "/login" {
		t.Errorf("logout = %d, cookies %+v", resp.StatusCode, resp.Cookies())
	}
}

// The page works offline: it loads nothing from another host.
func TestAssetsLoadNothingFromElsewhere(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := assets.ReadFile(path)
		for _, m := range external.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" { // the SVG namespace, a name, not a fetch
				t.Errorf("%s refers to %s", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
