package zalo

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func TestWebhookSignatureAndLimits(t *testing.T) {
	h := newCitizenHarness(t)
	body, _ := h.text("u1", "HD")
	altered := bytes.Replace(body, []byte(`"HD"`), []byte(`"HE"`), 1)
	h.clock.add(-6 * time.Minute)
	stale, _ := h.text("u1", "HD")
	h.clock.add(12 * time.Minute)
	future, _ := h.text("u1", "HD")
	h.clock.add(-6 * time.Minute)
	big := h.event("user_send_text", "u1", map[string]any{"message": map[string]any{"msg_id": "big", "text": strings.Repeat("a", DefaultWebhookMaxBody)}})
	for _, tc := range []struct {
		name   string
		body   []byte
		mac    string
		want   int
		result string
	}{
		{"valid", body, sign(body, "oa-secret"), http.StatusOK, "accepted"},
		{"repeated delivery", body, sign(body, "oa-secret"), http.StatusOK, "repeated"},
		{"wrong key", body, sign(body, "not-the-secret"), http.StatusUnauthorized, "refused_bad_signature"},
		{"altered byte", altered, sign(body, "oa-secret"), http.StatusUnauthorized, "refused_bad_signature"},
		{"stale timestamp", stale, sign(stale, "oa-secret"), http.StatusUnauthorized, "refused_stale"},
		{"future timestamp", future, sign(future, "oa-secret"), http.StatusUnauthorized, "refused_future"},
		{"missing header", body, "", http.StatusUnauthorized, "refused_no_signature"},
		{"mac without its prefix", body, strings.TrimPrefix(sign(body, "oa-secret"), "mac="), http.StatusUnauthorized, "refused_bad_signature"},
		{"body over the cap", big, sign(big, "oa-secret"), http.StatusRequestEntityTooLarge, "refused_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(h.sink.metrics.webhook.WithLabelValues(tc.result))
			if got := h.post(tc.body, tc.mac); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
			if got := testutil.ToFloat64(h.sink.metrics.webhook.WithLabelValues(tc.result)); got != before+1 {
				t.Errorf("metric result=%s = %v, want %v", tc.result, got, before+1)
			}
		})
	}
	waiting, err := h.st.(CitizenState).WaitingZaloInbound(t.Context(), "oa-1", 100)
	if err != nil || len(waiting) != 1 {
		t.Fatalf("inbox holds %d events (%v), want only the valid one, once", len(waiting), err)
	}
}

// Zalo wants 200 within 2 s whatever happens downstream: answers are queued, not
// sent inline, so a slow send API does not slow the webhook.
func TestWebhookAnswersQuicklyWhileZaloIsSlow(t *testing.T) {
	h := newCitizenHarness(t)
	h.fake.hook = slow(300 * time.Millisecond)
	h.sink.StartWorker()
	stop := make(chan struct{})
	var delivering sync.WaitGroup
	delivering.Add(1)
	go func() { // the dispatcher, sending to the slow API meanwhile
		defer delivering.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p, _ := h.st.Pending(t.Context(), "zalo", h.clock.now().Add(time.Hour), 4)
			for _, row := range p {
				ev := row.Event
				if h.sink.Deliver(t.Context(), &ev) == nil {
					_ = h.st.Delivered(t.Context(), "zalo", row.Seq, 1, h.clock.now())
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { close(stop); delivering.Wait() }()
	const calls = 1000
	bodies := make([][]byte, calls)
	for i := range bodies {
		bodies[i], _ = h.text(fmt.Sprintf("u%d", i%50), "HD")
	}
	var slowest time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan []byte)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				start := time.Now()
				code := h.post(b, sign(b, "oa-secret"))
				took := time.Since(start)
				mu.Lock()
				slowest = max(slowest, took)
				mu.Unlock()
				if code != http.StatusOK {
					t.Errorf("webhook answered %d", code)
				}
			}
		}()
	}
	for _, b := range bodies {
		next <- b
	}
	close(next)
	wg.Wait()
	t.Logf("slowest of %d webhook answers: %s", calls, slowest)
	if slowest >= 2*time.Second {
		t.Errorf("slowest webhook answer took %s, want under 2s", slowest)
	}
	// Every message got its answer queued, whatever the send API's pace.
	waitFor(t, "every message handled", func() bool {
		w, err := h.st.(CitizenState).WaitingZaloInbound(t.Context(), "oa-1", 1)
		return err == nil && len(w) == 0
	})
	st, err := h.st.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := h.fake.snapshot()
	if st.Events != calls {
		t.Errorf("%d answers committed, want %d (one per message)", st.Events, calls)
	}
	if sent := len(msgs); sent >= calls/2 {
		t.Errorf("%d answers already sent to a 300ms API: they are being sent inline", sent)
	}
}

func TestCommandsAnswerFromSyncedRecords(t *testing.T) {
	h := newCitizenHarness(t)
	h.linkPhone("u1", "0912 345 678")
	reply := func(msgID, text string) string {
		return jsonOf(t, map[string]any{"recipient": map[string]any{"message_id": msgID}, "message": map[string]any{"text": text}})
	}
	for _, tc := range []struct{ text, want string }{
		{"hs 000.00.12.h45-260301-0001", "Hồ sơ 000.00.12.H45-260301-0001 (Cấp giấy phép xây dựng): đang xử lý. Hẹn trả: 14/03/2026."},
		{"HỒSƠ 000.00.12.H45-260301-0001", "Hồ sơ 000.00.12.H45-260301-0001 (Cấp giấy phép xây dựng): đang xử lý. Hẹn trả: 14/03/2026."},
		{"xin chào", ""}, // not a command: help
		{"Hoso 000.00.12.H45-260301-0001", "Hồ sơ 000.00.12.H45-260301-0001 (Cấp giấy phép xây dựng): đang xử lý. Hẹn trả: 14/03/2026."},
		{"DIEM 48000123", "SBD 48000123: Toán 8.75, Ngữ văn 7.5, Ngoại ngữ 9."},
		{"điểm 99999999", "Không tìm thấy số báo danh 99999999."},
		{"cupdien my yen", "Lịch ngừng cung cấp điện tại Xã Mỹ Yên:\n- 08:00-11:30 ngày 11/03/2026: Xã Long Hiệp\n- 07:00-15:00 ngày 12/03/2026: Ấp 3, xã Mỹ Yên"},
		{"CUPDIEN Cần Giuộc", "Không có lịch ngừng cung cấp điện tại Xã Cần Giuộc trong 7 ngày tới."},
		{"CUPDIEN Hà Nội", `Không tìm thấy xã/phường "Hà Nội". Vui lòng nhắn tên xã/phường hiện nay hoặc tên trước khi sắp xếp, ví dụ: CUPDIEN My Yen.`},
		{"TC phuoc loi", "Điểm tiêm chủng tại Xã Mỹ Yên:\n- Trạm Y tế xã Mỹ Yên (Ấp 3, xã Mỹ Yên): Sởi - Rubella, 07:30-11:00 ngày 12/03/2026"},
		{"dk cupdien long hiep", "Đã đăng ký nhận thông báo lịch cắt điện tại Xã Mỹ Yên. Nhắn HUY CUPDIEN long hiep để hủy."},
		{"HUY CUPDIEN Mỹ Yên", "Đã hủy nhận thông báo lịch cắt điện tại Xã Mỹ Yên."},
		{"HUY CUPDIEN Mỹ Yên", "Ông/Bà chưa đăng ký nhận thông báo lịch cắt điện tại Xã Mỹ Yên."},
		{"GOPY Đèn đường ấp 3 bị hỏng", "Cảm ơn Ông/Bà đã góp ý. Mã góp ý: GY-2026-000001. Cơ quan chức năng sẽ xem xét và trả lời qua Zalo."},
		{"dg 5", "Cảm ơn Ông/Bà đã đánh giá 5/5 cho hồ sơ 000.00.12.H45-260201-0002."},
		{"DG 9", "Vui lòng nhắn DG kèm điểm từ 1 (rất không hài lòng) đến 5 (rất hài lòng), ví dụ: DG 5."},
		{"huy tin", "Ông/Bà sẽ không nhận thêm thông báo chủ động nào từ Tổng đài. Nhắn DK TIN để nhận lại."},
		{"DK TIN", "Ông/Bà sẽ nhận lại các thông báo đã đăng ký."},
	} {
		t.Run(tc.text, func(t *testing.T) {
			body, id := h.text("u1", tc.text)
			sent := h.say(body)
			if len(sent) != 1 {
				t.Fatalf("%d requests sent, want 1: %+v", len(sent), sent)
			}
			want := tc.want
			if want == "" {
				want = h.sink.cit.cfg.Texts.Unknown + "\n" + h.sink.cit.help()
			}
			if got := jsonOf(t, sent[0].Body); got != reply(id, want) {
				t.Errorf("request = %s\nwant      %s", got, reply(id, want))
			}
			if sent[0].Path != pathText {
				t.Errorf("sent to %s, want %s", sent[0].Path, pathText)
			}
		})
	}
	// HD lists what the province configured.
	body, _ := h.text("u1", "hd")
	help := h.say(body)[0].Body["message"].(map[string]any)["text"].(string)
	for _, want := range []string{"HS <mã hồ sơ>", "DIEM <số báo danh>", "CUPDIEN <xã/phường>: lịch cắt điện", "DK CUPDIEN <xã/phường>", "GOPY <nội dung>", "DG <1-5>", "HUY TIN"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	ratings, err := h.st.(interface {
		ListRatings(ctx context.Context, f store.RatingFilter) ([]store.Rating, error)
	}).ListRatings(t.Context(), store.RatingFilter{})
	if err != nil || len(ratings) != 1 || ratings[0].Dossier != "000.00.12.H45-260201-0002" || ratings[0].Score != 5 ||
		ratings[0].Agency != "UBND-XA-MYYEN" || ratings[0].Source != "motcua" {
		t.Errorf("ratings = %+v, %v; want the returned dossier rated 5 for its agency", ratings, err)
	}
}
