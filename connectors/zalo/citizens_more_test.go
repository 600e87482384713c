package zalo

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// texts are the texts of the requests, a request-info form as "FORM".
func texts(msgs []fakeMessage) []string {
	var out []string
	for _, m := range msgs {
		msg, _ := m.Body["message"].(map[string]any)
		if txt, ok := msg["text"].(string); ok {
			out = append(out, txt)
			continue
		}
		out = append(out, "FORM")
	}
	return out
}

func TestLookupOfSomebodyElsesDossierRevealsNothing(t *testing.T) {
	h := newCitizenHarness(t)
	h.linkPhone("u2", "84987654321") // Trần Thị Mai: owns ...0003, not ...0001
	other, _ := h.text("u2", "HS 000.00.12.H45-260301-0001")
	none, _ := h.text("u2", "HS 000.00.12.H45-999999-9999")
	gotOther, gotNone := h.say(other), h.say(none)
	a, b := texts(gotOther), texts(gotNone)
	if len(a) != 2 || a[1] != "FORM" {
		t.Fatalf("answer = %q; want a text and the request-info form", a)
	}
	// The same words whether the dossier is somebody else's or does not exist.
	if strings.Replace(a[0], "000.00.12.H45-260301-0001", "X", 1) != strings.Replace(b[0], "000.00.12.H45-999999-9999", "X", 1) {
		t.Errorf("somebody else's dossier answered %q, a missing one %q: the difference reveals it exists", a[0], b[0])
	}
	for _, secret := range []string{"Nguyễn Văn Đức", "Cấp giấy phép", "đang xử lý", "14/03/2026", "912"} {
		if strings.Contains(strings.Join(a, " "), secret) {
			t.Errorf("answer %q reveals %q", a, secret)
		}
	}
	form := gotOther[1].Body
	want := jsonOf(t, map[string]any{"recipient": map[string]any{"message_id": gotOther[1].ReplyTo},
		"message": map[string]any{"attachment": map[string]any{"type": "template", "payload": map[string]any{
			"template_type": "request_user_info", "elements": []any{map[string]any{"title": defaultRequestInfo.Title, "subtitle": defaultRequestInfo.Subtitle}}}}}})
	if jsonOf(t, form) != want || gotOther[1].ReplyTo == "" {
		t.Errorf("form = %s\nwant   %s", jsonOf(t, form), want)
	}
	// Without a linked phone nothing is looked up: the citizen is asked to share it.
	anon, _ := h.text("u9", "HS 000.00.12.H45-260301-0001")
	if got := texts(h.say(anon)); len(got) != 2 || got[0] != h.sink.cit.cfg.Texts.NeedPhone || got[1] != "FORM" {
		t.Errorf("without a phone: %q", got)
	}
	// Once the owner shares the phone, the same question is answered.
	h.linkPhone("u9", "84912345678")
	again, _ := h.text("u9", "HS 000.00.12.H45-260301-0001")
	if got := texts(h.say(again)); len(got) != 1 || !strings.Contains(got[0], "đang xử lý") {
		t.Errorf("after sharing the phone: %q", got)
	}
}

func TestStopEndsProactiveNoticesForThatCitizen(t *testing.T) {
	h := newCitizenHarness(t)
	h.say(h.event("follow", "u1", nil))
	h.fake.follow("u1", "u2")
	h.linkPhone("u1", "84912345678")
	h.linkPhone("u2", "84987654321")
	stop, _ := h.text("u1", "HUY TIN")
	if got := texts(h.say(stop)); len(got) != 1 || got[0] != h.sink.cit.cfg.Texts.Stopped {
		t.Fatalf("HUY TIN answered %q", got)
	}
	notice := func(key, phone string) []fakeMessage {
		before, _, _ := h.fake.snapshot()
		if err := h.deliver(newNotice(key, "dossier.result_ready", phone, "Hồ sơ "+key+" đã có kết quả.")); err != nil {
			t.Fatal(err)
		}
		after, _, _ := h.fake.snapshot()
		return after[len(before):]
	}
	if sent := notice("HS-1", "84912345678"); len(sent) != 0 {
		t.Errorf("a notice reached the citizen who sent HUY TIN: %+v", sent)
	}
	if r := h.sends(newNotice("HS-1", "dossier.result_ready", "84912345678", "Hồ sơ HS-1 đã có kết quả.")); len(r) != 1 ||
		!strings.HasPrefix(r[0].Reason, "stopped_by_citizen") {
		t.Errorf("record = %+v; want undeliverable, stopped_by_citizen", r)
	}
	if sent := notice("HS-2", "84987654321"); len(sent) != 1 || sent[0].UserID != "u2" {
		t.Errorf("another citizen's notice: %+v", sent)
	}
	// Answers to the citizen's own questions still go out; DK TIN lifts the stop.
	resume, _ := h.text("u1", "DK TIN")
	if got := texts(h.say(resume)); len(got) != 1 {
		t.Fatalf("DK TIN answered %q", got)
	}
	if sent := notice("HS-3", "84912345678"); len(sent) != 1 || sent[0].UserID != "u1" {
		t.Errorf("after DK TIN: %+v", sent)
	}
}

func TestOutageReachesExactlyTheSubscribersOfTheCommunesItNames(t *testing.T) {
	h := newCitizenHarness(t)
	for user, msg := range map[string]string{
		"u1": "DK CUPDIEN Mỹ Yên",         // named in the outage without diacritics
		"u2": "DK CUPDIEN Phước Vĩnh Tây", // named in the outage by its former name, Long Hậu
		"u3": "DK CUPDIEN My Yen Dong",    // not named: "Mỹ Yên" is not "Mỹ Yên Đông"
	} {
		h.fake.follow(user)
		body, _ := h.text(user, msg)
		if got := texts(h.say(body)); len(got) != 1 || !strings.HasPrefix(got[0], "Đã đăng ký") {
			t.Fatalf("%s: %q", user, got)
		}
	}
	ev := &pipeline.Event{Type: "rule", Rule: "outage.scheduled", Source: "evn", Entity: "outage", Key: "k1", Version: 1,
		After:   map[string]any{"unit": "Điện lực Cần Giuộc", "area": "Ấp 3 xa my yen; ấp Tân Thanh, xã Long Hậu"},
		Message: &pipeline.Message{Text: "Điện lực Cần Giuộc thông báo tạm ngừng cung cấp điện.", Audience: "ap 3 xa my yen"}, DetectedAt: day}
	ev.ID = pipeline.EventID("evn", "outage", "k1", 1, "outage.scheduled", "x")
	if err := h.deliver(ev); err != nil {
		t.Fatal(err)
	}
	if err := h.deliver(ev); err != nil { // redelivered: nobody twice
		t.Fatal(err)
	}
	before, _, _ := h.fake.snapshot()
	h.drain()
	after, _, _ := h.fake.snapshot()
	sent := after[len(before):]
	var users []string
	for _, m := range sent {
		users = append(users, m.UserID)
		if m.Text != ev.Message.Text || m.ReplyTo != "" {
			t.Errorf("notice = %+v; want the outage's text to the follower", m)
		}
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"u1", "u2"}) {
		t.Errorf("notices went to %v, want exactly u1 and u2", users)
	}
	if r := h.sends(ev); len(r) != 1 || r[0].Route != store.ZaloRouteFanout || !strings.HasPrefix(r[0].Reason, "2 subscribers") {
		t.Errorf("record of the outage = %+v", r)
	}
}

func TestSubscriptionNoticesWaitForTheEndOfQuietHours(t *testing.T) {
	h := newCitizenHarness(t)
	h.fake.follow("u1")
	body, _ := h.text("u1", "DK CUPDIEN my yen")
	h.say(body)
	h.clock.set(time.Date(2026, 3, 10, 23, 0, 0, 0, hcm))
	ev := &pipeline.Event{Type: "rule", Rule: "outage.scheduled", Source: "evn", Entity: "outage", Key: "k2", Version: 1,
		After: map[string]any{"area": "Xã Mỹ Yên"}, Message: &pipeline.Message{Text: "Cắt điện xã Mỹ Yên."}, DetectedAt: h.clock.now()}
	ev.ID = pipeline.EventID("evn", "outage", "k2", 1, "outage.scheduled", "y")
	if err := h.deliver(ev); err != nil {
		t.Fatal(err)
	}
	p, err := h.st.Pending(t.Context(), "zalo", h.clock.now(), 10)
	if err != nil || len(p) != 1 {
		t.Fatalf("pending = %d, %v", len(p), err)
	}
	child := p[0].Event
	err = h.sink.Deliver(t.Context(), &child)
	if wait, ok := pipeline.RetryAfterOf(err); !ok || wait != 7*time.Hour {
		t.Fatalf("at 23:00 the notice = %v (wait %v); want it deferred to 06:00", err, wait)
	}
}

func TestFeedbackGetsUniqueReferencesAndReachesTheDashboard(t *testing.T) {
	h := newCitizenHarness(t)
	const n = 100
	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i], _ = h.text(fmt.Sprintf("u%d", i), fmt.Sprintf("GOPY Ổ gà trên đường số %d", i))
	}
	for _, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := h.post(b, sign(b, "oa-secret")); code != http.StatusOK {
				t.Errorf("webhook answered %d", code)
			}
		}()
	}
	wg.Wait()
	if err := h.sink.HandleInbox(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.drain()
	msgs, _, _ := h.fake.snapshot()
	refs := map[string]bool{}
	for _, m := range msgs {
		i := strings.Index(m.Text, "GY-2026-")
		if i < 0 {
			t.Fatalf("answer without a reference: %q", m.Text)
		}
		refs[m.Text[i:i+len("GY-2026-000000")]] = true
	}
	if len(msgs) != n || len(refs) != n {
		t.Fatalf("%d answers with %d distinct references, want %d each", len(msgs), len(refs), n)
	}
	p, err := h.st.Pending(t.Context(), "dashboard", day.Add(time.Hour), 1000)
	if err != nil || len(p) != n {
		t.Fatalf("dashboard outbox = %d, %v; want %d feedback events", len(p), err, n)
	}
	ev := p[0].Event
	if ev.Entity != FeedbackEntity || ev.Type != pipeline.EventCreated || ev.Agency != "UBND-TINH" || !refs[ev.Key] ||
		!strings.HasPrefix(fmt.Sprint(ev.After["text"]), "Ổ gà trên đường số") {
		t.Errorf("feedback event = %+v", ev)
	}
	if _, ok := ev.After["user_id"]; ok {
		t.Error("the feedback event names the citizen")
	}
}

func TestAnswerFeedbackRepliesToTheCitizensMessage(t *testing.T) {
	h := newCitizenHarness(t)
	body, msgID := h.text("u1", "GOPY Đèn đường ấp 3 bị hỏng")
	h.say(body)
	var answerer FeedbackAnswerer = h.sink
	f, err := answerer.AnswerFeedback(t.Context(), "GY-2026-000001", "Điện lực đã thay bóng đèn ngày 11/03.", "can.bo.a")
	if err != nil || f.Answer == "" || f.AnsweredBy != "can.bo.a" {
		t.Fatalf("answer = %+v, %v", f, err)
	}
	before, _, _ := h.fake.snapshot()
	h.drain()
	after, _, _ := h.fake.snapshot()
	sent := after[len(before):]
	want := jsonOf(t, map[string]any{"recipient": map[string]any{"message_id": msgID},
		"message": map[string]any{"text": "Trả lời góp ý GY-2026-000001: Điện lực đã thay bóng đèn ngày 11/03."}})
	if len(sent) != 1 || jsonOf(t, sent[0].Body) != want {
		t.Fatalf("sent %+v\nwant %s", sent, want)
	}
	// After Zalo's reply window the answer goes to the citizen instead.
	h.clock.add(72 * time.Hour)
	h.fake.follow("u1")
	if _, err := answerer.AnswerFeedback(t.Context(), "GY-2026-000001", "Bổ sung: đã kiểm tra lại.", "can.bo.a"); err != nil {
		t.Fatal(err)
	}
	h.drain()
	after2, _, _ := h.fake.snapshot()
	if last := after2[len(after2)-1]; last.UserID != "u1" || last.ReplyTo != "" {
		t.Errorf("late answer = %+v; want a message to u1", last)
	}
	if _, err := answerer.AnswerFeedback(t.Context(), "GY-2026-424242", "x", "y"); err == nil {
		t.Error("answering an unknown reference succeeded")
	}
}

func TestFollowUnfollowAndSharedPhoneKeepTheFollowersTable(t *testing.T) {
	h := newCitizenHarness(t)
	cs := h.st.(CitizenState)
	get := func() store.ZaloFollower {
		t.Helper()
		f, err := cs.ZaloFollower(context.Background(), "oa-1", "u7")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	h.say(h.event("follow", "u7", nil))
	if f := get(); !f.Followed || f.Phone != "" {
		t.Fatalf("after follow: %+v", f)
	}
	h.clock.add(time.Minute)
	h.linkPhone("u7", "+84 912 000 111")
	if f := get(); f.Phone != "84912000111" || !f.ConsentAt.Equal(h.clock.now().UTC().Truncate(time.Millisecond)) {
		t.Fatalf("after user_submit_info: %+v", f)
	}
	h.clock.add(time.Minute)
	body, _ := h.text("u7", "HD")
	h.say(body)
	if f := get(); !f.InteractionAt.Equal(h.clock.now().UTC().Truncate(time.Millisecond)) {
		t.Fatalf("a message did not update the interaction time: %+v", f)
	}
	h.say(h.event("unfollow", "u7", nil))
	if f := get(); f.Followed || f.Phone != "84912000111" {
		t.Fatalf("after unfollow: %+v; want not following, phone kept", f)
	}
}

func TestARefusedReplyGoesToTheCitizenInstead(t *testing.T) {
	h := newCitizenHarness(t)
	h.fake.follow("u1")
	h.fake.hook = func(w http.ResponseWriter, path string, body map[string]any) bool {
		if rec, _ := body["recipient"].(map[string]any); rec["message_id"] != nil {
			zerr(w, -201, "message_id is invalid!")
			return true
		}
		return false
	}
	body, _ := h.text("u1", "HD")
	sent := h.say(body)
	if len(sent) != 1 || sent[0].UserID != "u1" || sent[0].ReplyTo != "" || !strings.Contains(sent[0].Text, "HS <mã hồ sơ>") {
		t.Fatalf("sent %+v; want the help to u1 directly", sent)
	}
}

// The last interaction decides the message type: a follower silent for over 7 days
// cannot get an OA text (Zalo answers -230), so the notice goes by ZNS at once.
func TestASilentFollowerGetsTheNoticeByZNS(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Rules = map[string]RuleOptions{"dossier.result_ready": {ZNSTemplateID: "tpl-1", TemplateData: map[string]string{"noi_dung": "$text"}}}
	})
	h.follower("u1", "84912345678", true)
	if _, err := h.st.UpsertZaloFollowers(t.Context(), []store.ZaloFollower{{OAID: "oa-1", UserID: "u1", Phone: "84912345678",
		Followed: true, InteractionAt: day.Add(-8 * 24 * time.Hour), UpdatedAt: day}}); err != nil {
		t.Fatal(err)
	}
	ev := newNotice("HS-9", "dossier.result_ready", "84912345678", "Hồ sơ HS-9 đã có kết quả.")
	if err := h.deliver(ev); err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := h.fake.snapshot()
	if len(msgs) != 1 || msgs[0].Path != pathZNS {
		t.Fatalf("sent %+v; want one ZNS and no OA attempt", msgs)
	}
	if _, err := h.st.UpsertZaloFollowers(t.Context(), []store.ZaloFollower{{OAID: "oa-1", UserID: "u1", Phone: "84912345678",
		Followed: true, InteractionAt: day.Add(-time.Hour), UpdatedAt: day}}); err != nil {
		t.Fatal(err)
	}
	if err := h.deliver(newNotice("HS-10", "dossier.result_ready", "84912345678", "Hồ sơ HS-10 đã có kết quả.")); err != nil {
		t.Fatal(err)
	}
	if msgs, _, _ = h.fake.snapshot(); len(msgs) != 2 || msgs[1].Path != pathText {
		t.Fatalf("after a recent message: %+v; want an OA text", msgs)
	}
}
