package zalo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// citizensYAML is the province's citizens block the tests run with: the same
// look-ups as configs/production.example.yaml.
const citizensYAML = `
places: testdata/places.csv
lookups:
  - keywords: [HS, HOSO]
    usage: "HS <mã hồ sơ>: tình trạng hồ sơ của Ông/Bà"
    entity: dossier
    field: code
    owner: phone
    reply: 'Hồ sơ {{.code}} ({{.procedure}}): {{choose .status "2" "đã tiếp nhận" "4" "đang xử lý" "9" "đã có kết quả" "10" "đã trả kết quả"}}. Hẹn trả: {{date .due_at}}.'
  - keywords: [DIEM]
    usage: "DIEM <số báo danh>: điểm thi tốt nghiệp THPT"
    entity: exam_thpt
    field: sbd
    reply: 'SBD {{.sbd}}: Toán {{.math}}, Ngữ văn {{.literature}}, Ngoại ngữ {{.language}}.'
    not_found: 'Không tìm thấy số báo danh {{.query}}.'
  - keywords: [CUPDIEN]
    usage: "CUPDIEN <xã/phường>: lịch cắt điện 7 ngày tới"
    entity: outage
    area: [commune, area]
    upcoming: { start: start, end: end, days: 7 }
    unless: cancelled
    header: 'Lịch ngừng cung cấp điện tại {{.place}}:'
    reply: '- {{time .start}}-{{time .end}} ngày {{date .start}}: {{.area}}'
    not_found: 'Không có lịch ngừng cung cấp điện tại {{.place}} trong 7 ngày tới.'
  - keywords: [TIEMCHUNG, TC]
    usage: "TIEMCHUNG <xã/phường>: điểm tiêm chủng 14 ngày tới"
    entity: vaccination_point
    area: [commune, address]
    upcoming: { start: open_from, end: open_until, days: 14 }
    header: 'Điểm tiêm chủng tại {{.place}}:'
    reply: '- {{.name}} ({{.address}}): {{.vaccines}}, {{time .open_from}}-{{time .open_until}} ngày {{date .open_from}}'
    not_found: 'Chưa có lịch tiêm chủng tại {{.place}} trong 14 ngày tới.'
topics:
  - { name: CUPDIEN, label: lịch cắt điện, rules: ["outage.*"], area: [commune, area] }
feedback: { agency: UBND-TINH }
rating: { agency_field: unit }
`

// citizenHarness is a sink with a citizens block, its webhook on an httptest
// server, and synced records in its store.
type citizenHarness struct {
	*harness
	web *httptest.Server
	seq int
}

func newCitizenHarness(t *testing.T) *citizenHarness {
	t.Helper()
	var c Citizens
	if err := yaml.Unmarshal([]byte(citizensYAML), &c); err != nil {
		t.Fatal(err)
	}
	f := newFakeZalo(t)
	h := &harness{t: t, fake: f, st: openStore(t, t.TempDir()+"/state.db"), clock: newClock(day), logs: &syncBuffer{}}
	access, refresh := f.pair()
	if _, err := h.st.SaveZaloToken(t.Context(), store.ZaloToken{OAID: "oa-1", AccessToken: access, RefreshToken: refresh,
		ExpiresAt: day.Add(25 * time.Hour), RefreshedAt: day}, nil); err != nil {
		t.Fatal(err)
	}
	o := testOptions(f)
	o.OASecretKey, o.Citizens = "oa-secret", &c
	env := pipeline.Env{Name: "zalo", Clock: h.clock.now, Zone: hcm, State: h.st, Logger: slog.New(slog.NewTextHandler(h.logs, nil)),
		Route: func(ev *pipeline.Event) []string {
			if ev.Entity == FeedbackEntity {
				return []string{"dashboard"}
			}
			return nil
		}}
	s, err := New(env, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h.sink = s
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+WebhookPath, s.ServeWebhook)
	ch := &citizenHarness{harness: h, web: httptest.NewServer(mux)}
	t.Cleanup(ch.web.Close)
	ch.sync()
	return ch
}

// sync commits the records the look-ups answer from, as a source's sync would.
func (h *citizenHarness) sync() {
	h.t.Helper()
	at := func(s string) time.Time {
		t, err := time.ParseInLocation("02/01/2006 15:04", s, hcm)
		if err != nil {
			h.t.Fatal(err)
		}
		return t.UTC()
	}
	rec := func(entity, key string, f map[string]any) store.SnapshotEntry {
		return store.SnapshotEntry{Entity: entity, Key: key, Hash: key, Version: 1, Fields: f}
	}
	batches := []store.Batch{
		{Source: "motcua", At: day, Snapshot: []store.SnapshotEntry{
			rec("dossier", "000.00.12.H45-260301-0001", map[string]any{"code": "000.00.12.H45-260301-0001", "procedure": "Cấp giấy phép xây dựng",
				"citizen": "Nguyễn Văn Đức", "phone": "84912345678", "unit": "UBND-XA-MYYEN", "status": int64(4), "due_at": at("14/03/2026 17:00")}),
			rec("dossier", "000.00.12.H45-260201-0002", map[string]any{"code": "000.00.12.H45-260201-0002", "procedure": "Chứng thực bản sao",
				"citizen": "Nguyễn Văn Đức", "phone": "84912345678", "unit": "UBND-XA-MYYEN", "status": int64(10),
				"due_at": at("03/03/2026 17:00"), "finished_at": at("02/03/2026 10:00")}),
			rec("dossier", "000.00.12.H45-260301-0003", map[string]any{"code": "000.00.12.H45-260301-0003", "procedure": "Đăng ký kết hôn",
				"citizen": "Trần Thị Mai", "phone": "84987654321", "unit": "UBND-XA-CANGIUOC", "status": int64(9), "due_at": at("12/03/2026 17:00")}),
		}},
		{Source: "thpt", At: day, Snapshot: []store.SnapshotEntry{
			rec("exam_thpt", "48000123", map[string]any{"sbd": "48000123", "math": 8.75, "literature": 7.5, "language": 9.0}),
		}},
		{Source: "yte", At: day, Snapshot: []store.SnapshotEntry{
			rec("vaccination_point", "TYT-MYYEN", map[string]any{"code": "TYT-MYYEN", "name": "Trạm Y tế xã Mỹ Yên", "address": "Ấp 3, xã Mỹ Yên",
				"commune": "Xã Mỹ Yên", "vaccines": "Sởi - Rubella", "open_from": at("12/03/2026 07:30"), "open_until": at("12/03/2026 11:00")}),
		}},
		{Source: "evn", At: day, Snapshot: []store.SnapshotEntry{
			rec("outage", "1", map[string]any{"unit": "Điện lực Cần Giuộc", "area": "Ấp 3, xã Mỹ Yên", "start": at("12/03/2026 07:00"), "end": at("12/03/2026 15:00"), "cancelled": false}),
			rec("outage", "2", map[string]any{"unit": "Điện lực Cần Giuộc", "area": "Xã Long Hiệp", "start": at("11/03/2026 08:00"), "end": at("11/03/2026 11:30"), "cancelled": false}),
			rec("outage", "3", map[string]any{"unit": "Điện lực Cần Giuộc", "area": "Xã Mỹ Yên Đông", "start": at("11/03/2026 08:00"), "end": at("11/03/2026 11:30"), "cancelled": false}),
			rec("outage", "4", map[string]any{"unit": "Điện lực Cần Giuộc", "area": "Xã Mỹ Yên", "start": at("13/03/2026 08:00"), "end": at("13/03/2026 11:30"), "cancelled": true}),
			rec("outage", "5", map[string]any{"unit": "Điện lực Cần Giuộc", "area": "Xã Mỹ Yên", "start": at("01/03/2026 08:00"), "end": at("01/03/2026 11:30"), "cancelled": false}),
		}},
	}
	for _, b := range batches {
		if err := h.st.Commit(h.t.Context(), b); err != nil {
			h.t.Fatal(err)
		}
	}
}

// event builds a webhook body as Zalo sends it (ids and timestamp as strings).
func (h *citizenHarness) event(name, user string, extra map[string]any) []byte {
	h.seq++
	ev := map[string]any{"app_id": fakeAppID, "event_name": name, "timestamp": strconv.FormatInt(h.clock.now().UnixMilli(), 10),
		"user_id_by_app": "app-" + user}
	switch name {
	case "follow", "unfollow":
		ev["oa_id"], ev["follower"], ev["source"] = "oa-1", map[string]any{"id": user}, "oa_profile"
	default:
		ev["sender"], ev["recipient"] = map[string]any{"id": user}, map[string]any{"id": "oa-1"}
	}
	for k, v := range extra {
		ev[k] = v
	}
	b, err := json.Marshal(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// text is a user_send_text body; its message id is returned.
func (h *citizenHarness) text(user, text string) ([]byte, string) {
	id := fmt.Sprintf("m%d", h.seq+1)
	return h.event("user_send_text", user, map[string]any{"message": map[string]any{"msg_id": id, "text": text}}), id
}

// post sends a body signed with the given key (and timestamp taken from the body).
func (h *citizenHarness) post(body []byte, mac string) int {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.web.URL+WebhookPath, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if mac != "" {
		req.Header.Set(SignatureHeader, mac)
	}
	resp, err := h.web.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sign signs a body as Zalo does.
func sign(body []byte, secret string) string {
	var ev envelope
	_ = json.Unmarshal(body, &ev)
	return Sign(fakeAppID, body, ev.timestamp(), secret)
}

// say posts a signed event, handles the inbox and delivers what it queued; it
// returns the Zalo requests sent meanwhile.
func (h *citizenHarness) say(body []byte) []fakeMessage {
	h.t.Helper()
	if code := h.post(body, sign(body, "oa-secret")); code != http.StatusOK {
		h.t.Fatalf("webhook answered %d", code)
	}
	before, _, _ := h.fake.snapshot()
	if err := h.sink.HandleInbox(h.t.Context()); err != nil {
		h.t.Fatal(err)
	}
	h.drain()
	after, _, _ := h.fake.snapshot()
	return after[len(before):]
}

// drain delivers everything due for the zalo sink, as the dispatcher would,
// including what deliveries queue (a topic's subscribers).
func (h *citizenHarness) drain() {
	h.t.Helper()
	ctx := h.t.Context()
	for range 10 {
		p, err := h.st.Pending(ctx, "zalo", h.clock.now().Add(time.Hour), 1000)
		if err != nil {
			h.t.Fatal(err)
		}
		if len(p) == 0 {
			return
		}
		for _, row := range p {
			ev := row.Event
			if err := h.sink.Deliver(ctx, &ev); err != nil {
				h.t.Fatalf("deliver %s: %v", ev.ID, err)
			}
			if err := h.st.Delivered(ctx, "zalo", row.Seq, 1, h.clock.now()); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	h.t.Fatal("outbox did not drain")
}

// linkPhone makes user share phone through Zalo's request-info form.
func (h *citizenHarness) linkPhone(user, phone string) {
	h.t.Helper()
	h.say(h.event("user_submit_info", user, map[string]any{"info": map[string]any{"name": "Công dân", "phone": phone}}))
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
