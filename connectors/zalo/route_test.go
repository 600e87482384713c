package zalo

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// withTemplate gives rule "dossier.result_ready" a ZNS template.
func withTemplate(o *Options) {
	o.Rules = map[string]RuleOptions{"dossier.result_ready": {
		ZNSTemplateID: "tpl-42",
		TemplateData:  map[string]string{"ma_ho_so": "code", "ten": "citizen", "noi_dung": "$text", "han": "due_at"},
		MaxAge:        Age(7 * 24 * time.Hour),
	}}
}

func TestRouting(t *testing.T) {
	const rule = "dossier.result_ready"
	tests := []struct {
		name      string
		phone     string
		edit      func(o *Options)
		setup     func(h *harness)
		detected  time.Duration // how long before now the change was detected
		wantRoute string
		wantWhy   string // start of the record's reason
		wantPath  string // the Zalo endpoint called, "" for none
	}{
		{name: "follower gets an OA message", phone: phoneN(1), edit: withTemplate,
			setup: func(h *harness) { h.follower("u1", phoneN(1), true) }, wantRoute: "oa", wantPath: pathText},
		{name: "not a follower, with a template: ZNS", phone: phoneN(2), edit: withTemplate,
			wantRoute: "zns", wantPath: pathZNS},
		{name: "neither: undeliverable with its reason", phone: phoneN(3),
			wantRoute: "undeliverable", wantWhy: "not_follower_no_template"},
		{name: "recipient error on OA moves to ZNS", phone: phoneN(4), edit: withTemplate,
			setup: func(h *harness) {
				h.follower("u4", phoneN(4), true)
				h.fake.mu.Lock()
				delete(h.fake.followers, "u4") // Zalo no longer counts them a follower: -213
				h.fake.mu.Unlock()
			}, wantRoute: "zns", wantPath: pathZNS},
		{name: "opted out, no template", phone: phoneN(5),
			setup: func(h *harness) { h.follower("u5", phoneN(5), false) }, wantRoute: "undeliverable", wantWhy: "opted_out"},
		{name: "no phone", phone: "", edit: withTemplate, wantRoute: "undeliverable", wantWhy: "no_phone"},
		{name: "invalid phone", phone: "12345", edit: withTemplate, wantRoute: "undeliverable", wantWhy: "invalid_phone"},
		{name: "stale notice dropped with its reason", phone: phoneN(6), edit: withTemplate,
			setup: func(h *harness) { h.follower("u6", phoneN(6), true) }, detected: 8 * 24 * time.Hour,
			wantRoute: "stale", wantWhy: "stale: detected 192h0m0s ago, over the rule's max_age 168h"},
		{name: "routes per rule: ZNS first", phone: phoneN(7),
			edit: func(o *Options) {
				withTemplate(o)
				r := o.Rules[rule]
				r.Routes = []string{RouteZNS, RouteOA}
				o.Rules[rule] = r
			},
			setup: func(h *harness) { h.follower("u7", phoneN(7), true) }, wantRoute: "zns", wantPath: pathZNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.edit)
			if tt.setup != nil {
				tt.setup(h)
			}
			ev := newNotice("HS-1", rule, tt.phone, "Hồ sơ HS-1 đã có kết quả.")
			ev.DetectedAt = day.Add(-tt.detected)
			if err := h.deliver(ev); err != nil {
				t.Fatalf("Deliver: %v (an unsent notice is not an error)", err)
			}
			recs := h.sends(ev)
			if len(recs) != 1 || recs[0].Route != tt.wantRoute || !strings.HasPrefix(recs[0].Reason, tt.wantWhy) {
				t.Fatalf("records = %+v; want one on route %s, reason %q", recs, tt.wantRoute, tt.wantWhy)
			}
			if recs[0].Month != "2026-03" || recs[0].Agency != "UBND-TEST" || recs[0].Rule != rule {
				t.Fatalf("record %+v lacks the accounting keys", recs[0])
			}
			msgs, _, _ := h.fake.snapshot()
			if tt.wantPath == "" {
				if len(msgs) != 0 {
					t.Fatalf("Zalo got %+v; want nothing", msgs)
				}
				return
			}
			if len(msgs) != 1 || msgs[0].Path != tt.wantPath {
				t.Fatalf("Zalo got %+v; want one message on %s", msgs, tt.wantPath)
			}
			if recs[0].MessageID == "" || recs[0].QuotaType != "sub_quota" {
				t.Fatalf("record %+v lacks Zalo's message id or quota type", recs[0])
			}
			if m := msgs[0]; m.Path == pathZNS {
				if m.Phone != tt.phone || m.TemplateID != "tpl-42" || m.TrackingID != ev.ID ||
					m.Data["ma_ho_so"] != "HS-1" || m.Data["ten"] != "Nguyễn Văn Đức" || m.Data["noi_dung"] != ev.Message.Text || m.Data["han"] != "15/03/2026" {
					t.Fatalf("ZNS request %+v", m)
				}
			}
			// A redelivery sends nothing again.
			if err := h.deliver(ev); err != nil {
				t.Fatal(err)
			}
			if again, _, _ := h.fake.snapshot(); len(again) != 1 {
				t.Fatalf("a redelivery reached Zalo again")
			}
		})
	}
}

func TestZNSInQuietHoursWaitsUntilSix(t *testing.T) {
	h := newHarness(t, withTemplate)
	h.clock.set(time.Date(2026, 3, 10, 23, 0, 0, 0, hcm))
	ev := newNotice("HS-1", "dossier.result_ready", phoneN(2), "Hồ sơ đã có kết quả.")
	ev.DetectedAt = h.clock.now()
	err := h.deliver(ev)
	wait, ok := pipeline.RetryAfterOf(err)
	if err == nil || pipeline.IsPermanent(err) || !ok || wait != 7*time.Hour {
		t.Fatalf("at 23:00: %v (wait %s); want a transient wait of 7h until 06:00", err, wait)
	}
	if msgs, _, _ := h.fake.snapshot(); len(msgs) != 0 || len(h.sends(ev)) != 0 {
		t.Fatal("a ZNS was sent or recorded in the quiet hours")
	}
	h.clock.add(wait)
	if err := h.deliver(ev); err != nil {
		t.Fatalf("at 06:00: %v", err)
	}
	if recs := h.sends(ev); len(recs) != 1 || recs[0].Route != "zns" || !recs[0].At.Equal(time.Date(2026, 3, 11, 6, 0, 0, 0, hcm)) {
		t.Fatalf("records = %+v; want the ZNS sent at 06:00", recs)
	}
}

func TestZNSNightCodeDefers(t *testing.T) {
	h := newHarness(t, func(o *Options) { withTemplate(o); o.QuietHours.Off = true })
	h.fake.night = true
	err := h.deliver(newNotice("HS-1", "dossier.result_ready", phoneN(2), "x."))
	if wait, ok := pipeline.RetryAfterOf(err); err == nil || pipeline.IsPermanent(err) || !ok || wait <= 0 {
		t.Fatalf("-133: %v; want a transient wait", err)
	}
}

func TestErrorClasses(t *testing.T) {
	type outcome int
	const (
		transient outcome = iota
		permanent
		waits
	)
	tests := []struct {
		name string
		hook func(w http.ResponseWriter, path string, body map[string]any) bool
		want outcome
		wait time.Duration
	}{
		{"rate limit code waits a minute", code(-32), waits, time.Minute},
		{"quota code waits an hour", code(-211), waits, time.Hour},
		{"bad input is permanent", code(-201), permanent, 0},
		{"unknown code is transient", code(-99999), transient, 0},
		{"HTTP 500 is transient", status(500, ""), transient, 0},
		{"HTTP 429 with Retry-After waits", status(429, "30"), waits, 30 * time.Second},
		{"slow answer is transient", slow(300 * time.Millisecond), transient, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.Timeout = config.Duration(100 * time.Millisecond) })
			h.follower("u1", phoneN(1), true)
			h.fake.hook = tt.hook
			err := h.deliver(newNotice("HS-1", "r", phoneN(1), "x."))
			wait, hasWait := pipeline.RetryAfterOf(err)
			switch {
			case err == nil:
				t.Fatal("delivered; want an error")
			case tt.want == permanent && !pipeline.IsPermanent(err):
				t.Fatalf("%v; want permanent", err)
			case tt.want != permanent && pipeline.IsPermanent(err):
				t.Fatalf("%v; want transient", err)
			case tt.want == waits && (!hasWait || wait != tt.wait):
				t.Fatalf("%v: wait %s; want %s", err, wait, tt.wait)
			case tt.want == transient && hasWait:
				t.Fatalf("%v: waits %s; want the usual backoff", err, wait)
			}
			if len(h.sends(newNotice("HS-1", "r", phoneN(1), "x."))) != 0 {
				t.Fatal("a failed send was recorded")
			}
		})
	}
	t.Run("unknown code is logged with its number", func(t *testing.T) {
		h := newHarness(t, nil)
		h.follower("u1", phoneN(1), true)
		h.fake.hook = code(-99999)
		_ = h.deliver(newNotice("HS-1", "r", phoneN(1), "x."))
		if !strings.Contains(h.logs.String(), "code=-99999") {
			t.Fatalf("log does not name the code:\n%s", h.logs)
		}
	})
	t.Run("bad input keeps Zalo's message for the dead letter, not the log", func(t *testing.T) {
		h := newHarness(t, nil)
		h.follower("u1", phoneN(1), true)
		h.fake.hook = code(-201)
		err := h.deliver(newNotice("HS-1", "r", phoneN(1), "x."))
		if !strings.Contains(err.Error(), "zalo says -201") || strings.Contains(pipeline.LogText(err), "zalo says") {
			t.Fatalf("err = %v / log text %q", err, pipeline.LogText(err))
		}
	})
	t.Run("a token rejected twice is transient", func(t *testing.T) {
		h := newHarness(t, nil)
		h.follower("u1", phoneN(1), true)
		h.fake.hook = code(-216)
		err := h.deliver(newNotice("HS-1", "r", phoneN(1), "x."))
		var ae *APIError
		if err == nil || pipeline.IsPermanent(err) || !errors.As(err, &ae) || ae.Class != ClassToken {
			t.Fatalf("%v; want a transient token error", err)
		}
		if _, refreshes, _ := h.fake.snapshot(); refreshes != 1 {
			t.Fatalf("refreshes = %d; want one, then no retry loop", refreshes)
		}
	})
}

func code(c int) func(w http.ResponseWriter, path string, body map[string]any) bool {
	return func(w http.ResponseWriter, _ string, _ map[string]any) bool {
		zerr(w, c, "zalo says "+itoa(c))
		return true
	}
}

func status(code int, retryAfter string) func(w http.ResponseWriter, path string, body map[string]any) bool {
	return func(w http.ResponseWriter, _ string, _ map[string]any) bool {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		return true
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestLongTextIsSplitIntoOrderedMessages(t *testing.T) {
	h := newHarness(t, nil)
	h.follower("u1", phoneN(1), true)
	sentence := strings.Repeat("Ông/Bà vui lòng mang theo giấy tờ tùy thân khi đến nhận kết quả. ", 60) // ~3,900 characters
	ev := newNotice("HS-1", "r", phoneN(1), sentence)
	if err := h.deliver(ev); err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := h.fake.snapshot()
	if len(msgs) != 2 {
		t.Fatalf("%d messages; want 2", len(msgs))
	}
	joined := msgs[0].Text + " " + msgs[1].Text
	if joined != strings.TrimSpace(sentence) || !strings.HasSuffix(msgs[0].Text, ".") {
		t.Fatal("parts do not rebuild the text in order at a sentence boundary")
	}
	if recs := h.sends(ev); len(recs) != 2 || recs[1].Part != 1 || recs[1].Parts != 2 {
		t.Fatalf("records = %+v", recs)
	}
}

// A delivery that failed after its first part resumes at the second.
func TestSplitTextResumesAfterAFailedPart(t *testing.T) {
	h := newHarness(t, nil)
	h.follower("u1", phoneN(1), true)
	text := strings.Repeat("Câu một hai ba bốn năm sáu bảy tám chín mười. ", 80)
	ev := newNotice("HS-1", "r", phoneN(1), text)
	calls := 0
	h.fake.hook = func(w http.ResponseWriter, _ string, _ map[string]any) bool {
		calls++
		if calls == 2 {
			w.WriteHeader(500)
			return true
		}
		return false
	}
	if err := h.deliver(ev); err == nil {
		t.Fatal("want the second part's HTTP 500")
	}
	if err := h.deliver(ev); err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := h.fake.snapshot()
	if len(msgs) != 2 || msgs[0].Text == msgs[1].Text {
		t.Fatalf("Zalo holds %d parts; want each of the 2 once", len(msgs))
	}
}

func TestTransactionMessage(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Rules = map[string]RuleOptions{"dossier.result_ready": {Transaction: &Transaction{Header: "Thông báo kết quả hồ sơ",
			Table: []TableRow{{Key: "Mã hồ sơ", Field: "code"}, {Key: "Trạng thái", Field: "status_label"}}}}}
	})
	h.follower("u1", phoneN(1), true)
	if err := h.deliver(newNotice("HS-1", "dossier.result_ready", phoneN(1), "Hồ sơ đã có kết quả.")); err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := h.fake.snapshot()
	if len(msgs) != 1 || msgs[0].Path != pathTransaction || !strings.Contains(msgs[0].Text, `"template_type":"transaction_order"`) ||
		!strings.Contains(msgs[0].Text, `"value":"Đã có kết quả"`) {
		t.Fatalf("messages = %+v", msgs)
	}
}

func TestDryRunSendsNothingButRoutesAndAccounts(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		withTemplate(o)
		o.DryRun = true
		o.AppID, o.SecretKey = "", ""
	})
	h.follower("u1", phoneN(1), true)
	evs := []*pipeline.Event{
		newNotice("HS-1", "dossier.result_ready", phoneN(1), "Hồ sơ đã có kết quả."),
		newNotice("HS-2", "dossier.result_ready", phoneN(2), "Hồ sơ đã có kết quả."),
		newNotice("HS-3", "dossier.received", phoneN(3), "Hồ sơ đã được tiếp nhận."),
	}
	for _, ev := range evs {
		if err := h.deliver(ev); err != nil {
			t.Fatal(err)
		}
	}
	if msgs, refreshes, _ := h.fake.snapshot(); len(msgs) != 0 || refreshes != 0 {
		t.Fatalf("dry run reached Zalo: %d messages, %d refreshes", len(msgs), refreshes)
	}
	want := []struct{ route, request string }{{"oa", `"user_id":"u1"`}, {"zns", `"tracking_id":"` + evs[1].ID}, {"undeliverable", ""}}
	for i, ev := range evs {
		recs := h.sends(ev)
		if len(recs) != 1 || recs[0].Route != want[i].route || !recs[0].DryRun ||
			!strings.Contains(recs[0].Request, want[i].request) || strings.Contains(recs[0].Request, "access_token") {
			t.Fatalf("%s: records = %+v; want %s with the would-be request", ev.Key, recs, want[i].route)
		}
	}
	use, err := h.st.ZaloUsage(t.Context(), "zalo", "2026-03")
	if err != nil || len(use) != 3 {
		t.Fatalf("usage = %+v, %v", use, err)
	}
	if !strings.Contains(h.logs.String(), "dry run") || strings.Contains(h.logs.String(), phoneN(1)) {
		t.Fatalf("dry-run log lines missing or unmasked:\n%s", h.logs)
	}
}

func TestEventWithoutMessageIsUndeliverable(t *testing.T) {
	h := newHarness(t, nil)
	ev := newNotice("HS-1", "r", phoneN(1), "x")
	ev.Message = nil
	if err := h.deliver(ev); err != nil {
		t.Fatal(err)
	}
	if recs := h.sends(ev); len(recs) != 1 || !strings.HasPrefix(recs[0].Reason, "no_message") {
		t.Fatalf("records = %+v", recs)
	}
}

var _ = store.ZaloRouteOA
