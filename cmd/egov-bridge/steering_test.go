package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/announce"
	"github.com/egov-bridge/egov-bridge/pipeline/api"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// TestSteeringIsWiredOnTheDemo mounts what `run` mounts on the demo's daemon: the
// page, the API with the demo's tokens, and the feedback inbox over the store,
// whose answers go to the zalo sink — which on the demo has no citizens block, so
// an answer is refused with a reason and nothing is stored.
func TestSteeringIsWiredOnTheDemo(t *testing.T) {
	dir := t.TempDir()
	cfgText, err := os.ReadFile("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	linkDemoFiles(t, dir)
	file := filepath.Join(dir, "configs", "demo.yaml")
	if err := os.WriteFile(file, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err := engine.New(t.Context(), cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mux := http.NewServeMux()
	for _, mount := range steering() {
		mount(mux, d)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	st := d.Store.(interface {
		AddFeedback(ctx context.Context, f store.Feedback, year int, source string, emit store.EmitFunc) (store.Feedback, bool, error)
	})
	if _, _, err := st.AddFeedback(t.Context(), store.Feedback{Origin: "m1", OAID: "oa", UserID: "u1", Agency: "UBND-XA-LONGHAU",
		Text: "Đèn đường hỏng", CreatedAt: time.Now().UTC()}, 2026, "zalo", func(store.Feedback) []store.OutboxEvent { return nil }); err != nil {
		t.Fatal(err)
	}
	call := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := call("GET", "/", "", ""); code != http.StatusSeeOther {
		t.Errorf("GET / without a session = %d, want 303 to the login form", code)
	}
	code, body := call("GET", "/api/v1/feedback", "demo-xa-longhau-2026", "")
	var fb struct {
		Feedback []struct{ Ref, Text string }
	}
	_ = json.Unmarshal([]byte(body), &fb)
	if code != 200 || len(fb.Feedback) != 1 || fb.Feedback[0].Ref != "GY-2026-000001" {
		t.Fatalf("the Long Hậu viewer's inbox = %d %s", code, body)
	}
	if code, body := call("POST", "/api/v1/feedback/GY-2026-000001/answer", "demo-van-hanh-2026", `{"text":"Đã sửa."}`); code != http.StatusConflict || !strings.Contains(body, "citizens block") {
		t.Errorf("answer on the demo (zalo sink without citizens) = %d %s, want 409 naming the citizens block", code, body)
	}
	if code, _ := call("POST", "/api/v1/feedback/GY-2026-000001/answer", "demo-lanh-dao-2026", `{"text":"Đã sửa."}`); code != http.StatusForbidden {
		t.Errorf("answer by the demo viewer = %d, want 403", code)
	}
}

// TestTheDaemonServesWhatTheOpenAPIDocumentSays mounts what `run` mounts, with
// the announcements on, and checks the OpenAPI document against the daemon's
// own mux both ways: each documented operation reaches its own route (not the
// catch-all 404 of /api/v1/), and each route of the API and the announcements is
// documented.
func TestTheDaemonServesWhatTheOpenAPIDocumentSays(t *testing.T) {
	config := announceSetup(t, newFakeZaloOA(t), 1)
	cfg, ok := loadConfig(config, io.Discard)
	if !ok {
		t.Fatal("config does not load")
	}
	log := slog.New(slog.DiscardHandler)
	d, err := engine.New(t.Context(), cfg, engine.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ann, err := newAnnouncements(cfg, d, log)
	if err != nil || ann == nil {
		t.Fatalf("announcements: %v %v", ann, err)
	}
	mux := http.NewServeMux()
	for _, mount := range mounts(&ann) {
		mount(mux, d)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	fill := strings.NewReplacer("{name}", "motcua", "{ref}", "GY-2026-000001", "{id}", "1", "{step}", "approve")
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			route := strings.ToUpper(m) + " " + path
			documented[route] = true
			req := httptest.NewRequest(strings.ToUpper(m), fill.Replace(path), nil)
			if _, pattern := mux.Handler(req); pattern != route {
				t.Errorf("%s is documented, but the daemon routes it to %q", route, pattern)
			}
		}
	}
	served := append(api.New(d, api.Options{}).Routes(), announce.Routes()...)
	for _, r := range served {
		if !documented[r] {
			t.Errorf("%s is served but not documented", r)
		}
	}
	if !documented["POST /api/v1/announcements/{id}/{step}"] || len(documented) != len(served) {
		t.Errorf("%d operations documented, %d served", len(documented), len(served))
	}
}

// linkDemoFiles links into dir what configs/demo.yaml names besides its data:
// the mappings, the demo's regulation and the crosswalk it reads.
func linkDemoFiles(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"mappings", "configs/regulation", "configs/places.example.csv"} {
		abs, _ := filepath.Abs(filepath.Join("../..", p))
		if err := os.Symlink(abs, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTheDemoAnnouncesWithItsTokens follows the README's demo steps on the demo
// config (its regulation as shipped, its dossiers synced once): the commune's token drafts and previews an announcement and
// cannot approve it, the leader's token approves it, the operator's schedules it.
func TestTheDemoAnnouncesWithItsTokens(t *testing.T) {
	dir := t.TempDir()
	cfgText, err := os.ReadFile("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The console sink would print every synced dossier into the test's output.
	quiet := bytes.Replace(cfgText, []byte(`to: [console, events]`), []byte(`to: [events]`), 1)
	if bytes.Equal(quiet, cfgText) {
		t.Fatal("configs/demo.yaml no longer routes to [console, events]: update this test")
	}
	cfgText = quiet
	linkDemoFiles(t, dir)
	file := filepath.Join(dir, "configs", "demo.yaml")
	if err := os.WriteFile(file, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	// The demo's agency database, synced once: the open dossiers are the segment.
	if code, out, errOut := runCmd(t, "run", "--once", "-c", file); code != 0 {
		t.Fatalf("run --once: %d\n%s\n%s", code, out, errOut)
	}
	cfg, err := engine.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Daytime in the province, whenever the test runs: the regulation's quiet
	// hours refuse a schedule at night.
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, cfg.Zone)
	log := slog.New(slog.DiscardHandler)
	d, err := engine.New(t.Context(), cfg, engine.Options{Logger: log, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ann, err := newAnnouncements(cfg, d, log)
	if err != nil || ann == nil {
		t.Fatalf("the demo has no announcements: %v", err)
	}
	mux := http.NewServeMux()
	for _, mount := range mounts(&ann) {
		mount(mux, d)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const (
		commune  = "demo-xa-longhau-2026"
		leader   = "demo-lanh-dao-2026"
		operator = "demo-van-hanh-2026"
	)
	draft := `{"agency": "UBND-XA-LONGHAU", "title": "Lịch tiếp công dân",
		"content": {"template": "ho-so-dang-xu-ly", "data": {"noi_dung": "UBND xã tiếp công dân sáng thứ Hai hằng tuần."}},
		"segment": {"kind": "dossiers"}, "send_at": "2026-12-01T10:00:00+07:00"}`
	code, body := call("POST", "/api/v1/announcements/preview", commune, draft)
	var p announce.Preview
	if err := json.Unmarshal([]byte(body), &p); code != http.StatusOK || err != nil || p.ZNS == 0 || p.Recipients != p.ZNS+p.Unreachable || p.Cost != int64(300*p.ZNS) {
		t.Fatalf("preview: %d %s", code, body)
	}
	code, body = call("POST", "/api/v1/announcements", commune, draft)
	if code != http.StatusCreated || !strings.Contains(body, `"id":1`) {
		t.Fatalf("draft: %d %s", code, body)
	}
	// A commune may not speak to the district's other communes.
	other := strings.Replace(draft, `{"kind": "dossiers"}`, `{"kind": "area", "places": ["Xã Cần Giuộc"]}`, 1)
	if code, body := call("POST", "/api/v1/announcements", commune, other); code != http.StatusForbidden {
		t.Errorf("a draft to another commune: %d %s", code, body)
	}
	for _, step := range []struct {
		token, step string
		want        int
		state       string
	}{
		{commune, "submit", http.StatusOK, "submitted"},
		{commune, "approve", http.StatusForbidden, ""},
		{leader, "approve", http.StatusOK, "approved"},
		{operator, "schedule", http.StatusOK, "scheduled"},
	} {
		code, body := call("POST", "/api/v1/announcements/1/"+step.step, step.token, "")
		if code != step.want || !strings.Contains(body, step.state) {
			t.Fatalf("%s by %s: %d %s", step.step, step.token, code, body)
		}
	}
	if code, body := call("GET", "/api/v1/announcements/report", leader, ""); code != http.StatusOK || !strings.Contains(body, `"agency":"UBND-XA-LONGHAU"`) {
		t.Errorf("report: %d %s", code, body)
	}
}
