package zalo

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/announce"
)

func TestAnnouncementRoutes(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.QuietHours = QuietHours{Start: "22:00", End: "06:00"}
	})
	h.follower("u1", "84900000001", true)
	m := announce.Message{ID: "ann-7", Title: "Lịch tiêm chủng", Text: "Mời bà con đưa trẻ đi tiêm.", Link: "https://yte.example.vn/tc",
		Image: "https://yte.example.vn/b.png", ZNSTemplateID: "zns-1", TemplateData: map[string]string{"noi_dung": "Mời bà con"}}
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		to        announce.Recipient
		state     string
		route     string
		code      int
		wantPath  string
		wantQuota string
	}{
		{"a follower gets a promotion message", announce.Recipient{UserID: "u1"}, announce.RecipientSent, announce.RouteOA, 0, pathPromotion, "sub_quota"},
		{"not a follower, with a phone: ZNS", announce.Recipient{UserID: "u9", Phone: "84900000009"}, announce.RecipientSent, announce.RouteZNS, 0, pathZNS, "sub_quota"},
		{"a phone only: ZNS", announce.Recipient{Phone: "84900000008"}, announce.RecipientSent, announce.RouteZNS, 0, pathZNS, "sub_quota"},
		{"not a follower, no phone: not reachable with Zalo's code", announce.Recipient{UserID: "u9"}, announce.RecipientUnreachable, "", 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _, _ := h.fake.snapshot()
			res, err := h.sink.Announce(ctx, m, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if res.State != tc.state || res.Route != tc.route || res.QuotaType != tc.wantQuota {
				t.Fatalf("result %+v", res)
			}
			after, _, _ := h.fake.snapshot()
			if tc.wantPath == "" {
				if len(after) != len(before) {
					t.Fatalf("a message went out")
				}
				return
			}
			last := after[len(after)-1]
			if len(after) != len(before)+1 || last.Path != tc.wantPath {
				t.Fatalf("%d messages, last to %s", len(after)-len(before), last.Path)
			}
			if tc.wantPath == pathPromotion && promotionHeader(last.Body) != m.Title {
				t.Fatalf("promotion header %q", promotionHeader(last.Body))
			}
			if tc.wantPath == pathZNS && (last.TrackingID != "ann-7-"+tc.to.Phone || last.TemplateID != "zns-1") {
				t.Fatalf("ZNS tracking %q template %q", last.TrackingID, last.TemplateID)
			}
		})
	}
	// Bad input is a failure with Zalo's code, not a retry.
	bad := m
	bad.Text = ""
	h.fake.hook = func(w http.ResponseWriter, path string, body map[string]any) bool {
		if path == pathPromotion {
			zerr(w, -201, "Parameters invalid")
			return true
		}
		return false
	}
	res, err := h.sink.Announce(ctx, bad, announce.Recipient{UserID: "u1"})
	if err != nil || res.State != announce.RecipientFailed || res.Code != -201 {
		t.Fatalf("bad input: %+v %v", res, err)
	}
	// A rate code is an error to retry later.
	h.fake.hook = func(w http.ResponseWriter, path string, body map[string]any) bool {
		zerr(w, -32, "Exceeded the limit")
		return true
	}
	if _, err := h.sink.Announce(ctx, m, announce.Recipient{UserID: "u1"}); err == nil {
		t.Fatal("a rate limit answer is not an error to retry")
	}
	h.fake.hook = nil
	// Quiet hours hold ZNS back.
	h.clock.set(time.Date(2026, 3, 10, 23, 0, 0, 0, hcm))
	if _, err := h.sink.Announce(ctx, m, announce.Recipient{Phone: "84900000007"}); err == nil {
		t.Fatal("ZNS sent in quiet hours")
	}
}

func TestAnnouncementReceivedReadsTheConversation(t *testing.T) {
	h := newHarness(t, nil)
	h.follower("u1", "", true)
	h.follower("u2", "", true)
	m := announce.Message{ID: "ann-8", Title: "Thông báo lịch cắt điện", Text: "Cắt điện chủ nhật."}
	ctx := context.Background()
	since := time.Now().Add(-time.Minute)
	if _, err := h.sink.Announce(ctx, m, announce.Recipient{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user  string
		since time.Time
		want  bool
	}{
		{"u1", since, true},
		{"u2", since, false},                     // never sent
		{"u1", time.Now().Add(time.Hour), false}, // sent before the claim: another announcement
	} {
		got, err := h.sink.Received(ctx, m, announce.Recipient{UserID: tc.user}, tc.since)
		if err != nil || got != tc.want {
			t.Errorf("received by %s since %s: %v %v, want %v", tc.user, tc.since.Format(time.TimeOnly), got, err, tc.want)
		}
	}
	if _, err := h.sink.Received(ctx, m, announce.Recipient{Phone: "84900000001"}, since); !errors.Is(err, announce.ErrCannotTell) {
		t.Fatalf("by phone: %v, want ErrCannotTell", err)
	}
}
