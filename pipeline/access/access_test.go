package access

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestKeyringKeepsOnlyTheTokensHashes(t *testing.T) {
	const secret = "a-token-from-a-file-0001"
	k := NewKeyring([]TokenConfig{
		{Name: "from-file", Token: secret, Role: Operator, Agencies: []string{"UBND-XA-LONGHAU"}},
		{Name: "by-hash", SHA256: strings.ToUpper(Hash("only-its-hash-is-configured")), Role: Viewer},
	})
	if strings.Contains(fmt.Sprintf("%#v", k), secret) {
		t.Fatal("the keyring holds a token in clear")
	}
	for _, c := range []struct {
		token, name string
		ok          bool
	}{
		{secret, "from-file", true},
		{"only-its-hash-is-configured", "by-hash", true},
		{Hash(secret), "", false}, // the hash itself is not a token
		{"", "", false},
		{secret + " ", "", false},
	} {
		p, ok := k.Lookup(c.token)
		if ok != c.ok || p.Name != c.name {
			t.Errorf("Lookup(%q) = %+v, %v; want %q, %v", c.token, p, ok, c.name, c.ok)
		}
	}
	if p, _ := k.Lookup(secret); !p.Scoped() || p.Role != Operator || p.Actor() != "api:from-file" {
		t.Errorf("principal = %+v", p)
	}
}

func TestRolesAllowWhatTheRolesBelowThemAllow(t *testing.T) {
	for _, c := range []struct {
		have, need Role
		want       bool
	}{
		{Viewer, Viewer, true}, {Viewer, Operator, false}, {Viewer, Admin, false},
		{Operator, Viewer, true}, {Operator, Operator, true}, {Operator, Admin, false},
		{Admin, Admin, true}, {Admin, Viewer, true},
		{"boss", Viewer, false}, {"", Viewer, false},
	} {
		if got := c.have.Allows(c.need); got != c.want {
			t.Errorf("%q.Allows(%q) = %v, want %v", c.have, c.need, got, c.want)
		}
	}
	if (Principal{Role: Operator}).Unmasked() || !(Principal{Role: Admin}).Unmasked() {
		t.Error("only admins see citizen data unmasked")
	}
}

func TestCSRFValueIsTheSessionsOwn(t *testing.T) {
	a, b := CSRFToken("token-of-a-000000001"), CSRFToken("token-of-b-000000001")
	if a == b || a != CSRFToken("token-of-a-000000001") || strings.Contains(a, "token-of-a") {
		t.Errorf("CSRF values %q, %q", a, b)
	}
}

func TestExposureOfOperationsEndpoints(t *testing.T) {
	g := &Guard{Keys: NewKeyring([]TokenConfig{{Name: "probe", Token: "probe-token-0000001", Role: Viewer}})}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	if g.Expose(Off, ok) != nil {
		t.Error("an endpoint that is off is served")
	}
	for _, c := range []struct {
		e     Exposure
		token string
		want  int
	}{
		{Default, "", 200}, {Public, "", 200}, {Token, "", 401}, {Token, "probe-token-0000001", 200},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		g.Expose(c.e, ok).ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%q with token %q = %d, want %d", c.e, c.token, rec.Code, c.want)
		}
	}
}
