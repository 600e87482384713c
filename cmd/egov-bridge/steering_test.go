package main

import (
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
	mappings, _ := filepath.Abs("../../mappings")
	if err := os.MkdirAll(filepath.Join(dir, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mappings, filepath.Join(dir, "mappings")); err != nil {
		t.Fatal(err)
	}
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
