package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/connectors/zalo"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// The daemon serves Zalo's webhook on its own HTTP server: a citizen's GOPY is
// answered (a reply to the message, through the outbox) and reaches the dashboard
// sink as a feedback event; an unsigned request is refused.
func TestDaemonServesTheZaloWebhook(t *testing.T) {
	dir := t.TempDir()
	agency := filepath.Join(dir, "agency.db")
	db, err := sql.Open("sqlite", agency)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE hoso (ma TEXT PRIMARY KEY, cap_nhat TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	write(t, filepath.Join(dir, "dossier.yaml"), "entity: dossier\nkey: [code]\nfields:\n  code: { from: ma }\n")
	write(t, filepath.Join(dir, "places.csv"), "current,former\nXã Mỹ Yên,Xã Long Hiệp\n")
	config := filepath.Join(dir, "egov.yaml")
	write(t, config, `
store: { path: `+filepath.Join(dir, "state.db")+` }
http: { listen: "127.0.0.1:0" }
delivery: { poll: 50ms }
sources:
  - { name: motcua, type: sql, driver: sqlite, dsn: `+agency+`, table: hoso, cursor: { column: cap_nhat, key: ma }, mapping: dossier.yaml, schedule: "@every 1h" }
sinks:
  - { name: dash, type: log, path: `+filepath.Join(dir, "dash.jsonl")+` }
  - name: zalo
    type: zalo
    dry_run: true
    app_id: "app-1"
    oa_id: "oa-1"
    oa_secret_key: "s3cret"
    citizens: { places: places.csv, feedback: { agency: UBND-TINH } }
routes:
  - { entities: [feedback], to: [dash] }
`)
	cfg, err := engine.LoadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	d, err := engine.New(context.Background(), cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 20*time.Second, "the HTTP server", func() bool { return d.HTTPAddr() != "" })

	body := []byte(`{"app_id":"app-1","event_name":"user_send_text","sender":{"id":"u1"},"recipient":{"id":"oa-1"},` +
		`"message":{"msg_id":"m-42","text":"GOPY Đường ấp 3 ngập nước"},"timestamp":"` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `"}`)
	var ev struct {
		Timestamp string `json:"timestamp"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	post := func(mac string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.HTTPAddr()+zalo.WebhookPath, bytes.NewReader(body))
		if mac != "" {
			req.Header.Set(zalo.SignatureHeader, mac)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d, want 401", code)
	}
	if code := post(zalo.Sign("app-1", body, ev.Timestamp, "s3cret")); code != http.StatusOK {
		t.Fatalf("signed: %d, want 200", code)
	}
	waitFor(t, 20*time.Second, "the feedback event on the dashboard sink", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "dash.jsonl"))
		return strings.Contains(string(b), `"entity":"feedback"`) && strings.Contains(string(b), "GY-")
	})
	type sends interface {
		ZaloSends(ctx context.Context, sink, eventID string, limit int) ([]store.ZaloSend, error)
	}
	waitFor(t, 20*time.Second, "the reply (dry run: recorded, not sent)", func() bool {
		r, _ := d.Store.(sends).ZaloSends(context.Background(), "zalo", "", 0)
		return len(r) == 1 && strings.Contains(r[0].Request, `"message_id":"m-42"`) && strings.Contains(r[0].Request, "GY-")
	})
	code, out, errOut := runCmd(t, "zalo", "status", "-c", config)
	if code != 0 || !strings.Contains(out, "0 messages waiting, 0 given up; 0 subscriptions; 1 feedback (1 unanswered); 0 ratings") {
		t.Errorf("zalo status: %d\n%s\n%s", code, out, errOut)
	}
}
