package announce_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/announce"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// Each person of the regulation holds a token named after them; giang's covers
// HUYEN-B only.
func apiServer(t *testing.T, f *fixture) string {
	t.Helper()
	var tokens []access.TokenConfig
	for _, n := range []string{"dung", "em"} {
		tokens = append(tokens, access.TokenConfig{Name: n, Token: "token-of-" + n + "-000000", Role: access.Viewer})
	}
	tokens = append(tokens,
		access.TokenConfig{Name: "giang", Token: "token-of-giang-000000", Role: access.Viewer, Agencies: []string{"HUYEN-B"}},
		access.TokenConfig{Name: "admin", Token: "token-of-admin-000000", Role: access.Admin})
	mux := http.NewServeMux()
	announce.Register(mux, &access.Guard{Keys: access.NewKeyring(tokens)}, f.svc)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func call(t *testing.T, base, who, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer token-of-"+who+"-000000")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

func TestAPIStepsFollowTheRegulation(t *testing.T) {
	f := newFixture(t)
	f.follow("xa can giuoc", "u1", "u2")
	base := apiServer(t, f)
	d := f.draft("HUYEN-A", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Thị trấn Cần Giuộc"}}, at("10:00"))

	var created struct{ ID int64 }
	if code := call(t, base, "dung", "POST", "/api/v1/announcements", d, &created); code != http.StatusCreated || created.ID == 0 {
		t.Fatalf("draft: %d %+v", code, created)
	}
	var p announce.Preview
	if code := call(t, base, "dung", "GET", "/api/v1/announcements/1/preview", nil, &p); code != 200 || p.Recipients != 2 || !strings.Contains(p.Text, "[Xem chi tiết] https://tiemchung.example.gov.vn") {
		t.Fatalf("preview: %d %+v", code, p)
	}
	var e struct{ Error string }
	// Out of scope: giang's token covers HUYEN-B only.
	if code := call(t, base, "giang", "GET", "/api/v1/announcements/1", nil, &e); code != http.StatusNotFound {
		t.Fatalf("another district's announcement: %d", code)
	}
	if code := call(t, base, "giang", "POST", "/api/v1/announcements", d, &e); code != http.StatusForbidden {
		t.Fatalf("a draft for another district: %d", code)
	}
	if code := call(t, base, "dung", "POST", "/api/v1/announcements/1/submit", nil, nil); code != 200 {
		t.Fatalf("submit: %d", code)
	}
	var q struct{ Announcements []store.Announcement }
	if call(t, base, "em", "GET", "/api/v1/announcements/queue", nil, &q); len(q.Announcements) != 1 {
		t.Fatalf("em's queue: %+v", q)
	}
	if call(t, base, "dung", "GET", "/api/v1/announcements/queue", nil, &q); len(q.Announcements) != 0 {
		t.Fatalf("the author's queue holds their own: %+v", q)
	}
	// The author cannot approve (dung is no approver anyway); em approves.
	if code := call(t, base, "dung", "POST", "/api/v1/announcements/1/approve", nil, &e); code != http.StatusForbidden || !strings.Contains(e.Error, "cannot approve") {
		t.Fatalf("author approves: %d %q", code, e.Error)
	}
	var a store.Announcement
	if code := call(t, base, "em", "POST", "/api/v1/announcements/1/approve", nil, &a); code != 200 || a.State != announce.StateApproved || a.Approver != "em" {
		t.Fatalf("approve: %d %+v", code, a)
	}
	if code := call(t, base, "em", "POST", "/api/v1/announcements/1/approve", nil, &e); code != http.StatusConflict {
		t.Fatalf("approve twice: %d", code)
	}
	if code := call(t, base, "em", "POST", "/api/v1/announcements/1/schedule", nil, &a); code != 200 || a.State != announce.StateScheduled {
		t.Fatalf("schedule: %d %+v", code, a)
	}
	f.set(at("10:00"))
	f.tick()
	var rs struct{ Recipients []store.AnnouncementRecipient }
	if call(t, base, "dung", "GET", "/api/v1/announcements/1/recipients", nil, &rs); len(rs.Recipients) != 2 || rs.Recipients[0].State != announce.RecipientSent {
		t.Fatalf("recipients: %+v", rs)
	}
	var rep struct{ Agencies []announce.AgencyReport }
	if call(t, base, "dung", "GET", "/api/v1/announcements/report", nil, &rep); len(rep.Agencies) != 1 || rep.Agencies[0].Sent != 2 || rep.Agencies[0].Name != "UBND huyện A" {
		t.Fatalf("report: %+v", rep)
	}
	if call(t, base, "giang", "GET", "/api/v1/announcements/report", nil, &rep); len(rep.Agencies) != 0 {
		t.Fatalf("giang's report shows another district: %+v", rep)
	}
	// Without a token nothing is answered.
	resp, err := http.Get(base + "/api/v1/announcements")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}
