package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// zaloTests are the Zalo OA sink's store cases (tokens, followers, sends).
var zaloTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"zalo token pairs are saved, fenced and refused", testZaloToken},
	{"zalo followers are found by phone, following ones first", testZaloFollowers},
	{"zalo sends are recorded once and counted per month", testZaloSends},
}

func testZaloToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.ZaloToken(ctx, "oa1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token of an OA never set = %v; want ErrNotFound", err)
	}
	gen, err := s.SaveZaloToken(ctx, store.ZaloToken{OAID: "oa1", RefreshToken: "r1", RefreshedAt: t0}, nil)
	if err != nil || gen != 1 {
		t.Fatalf("first save = %d, %v; want generation 1", gen, err)
	}
	lock, ok, err := s.TryLock(ctx, "zalo/token/oa1")
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	stale := lock.Fence()
	lock.Unlock()
	again, ok, err := s.TryLock(ctx, "zalo/token/oa1")
	if err != nil || !ok {
		t.Fatalf("TryLock again = %v, %v", ok, err)
	}
	defer again.Unlock()
	exp := t0.Add(25 * time.Hour)
	pair := store.ZaloToken{OAID: "oa1", AccessToken: "a2", RefreshToken: "r2", ExpiresAt: exp, RefreshedAt: t0}
	if _, err := s.SaveZaloToken(ctx, pair, &stale); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("save with a superseded fence = %v; want ErrFenced", err)
	}
	cur := again.Fence()
	if gen, err = s.SaveZaloToken(ctx, pair, &cur); err != nil || gen != 2 {
		t.Fatalf("fenced save = %d, %v; want generation 2", gen, err)
	}
	got, err := s.ZaloToken(ctx, "oa1")
	if err != nil || got.AccessToken != "a2" || got.RefreshToken != "r2" || !got.ExpiresAt.Equal(exp) ||
		got.Generation != 2 || got.Refused != "" {
		t.Fatalf("ZaloToken = %+v, %v; want the pair of generation 2", got, err)
	}
	// A refusal of an older generation leaves the newer pair alone.
	if err := s.RefuseZaloToken(ctx, "oa1", 1, "old", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ZaloToken(ctx, "oa1"); got.Refused != "" || got.AccessToken != "a2" {
		t.Fatalf("a refusal of generation 1 changed generation 2: %+v", got)
	}
	if err := s.RefuseZaloToken(ctx, "oa1", 2, "Invalid refresh token", t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ZaloToken(ctx, "oa1"); got.Refused != "Invalid refresh token" || got.AccessToken != "" || !got.RefusedAt.Equal(t0) {
		t.Fatalf("refused token = %+v; want the reason and no access token", got)
	}
	if _, err := s.SaveZaloToken(ctx, store.ZaloToken{OAID: "oa1", RefreshToken: "r3", RefreshedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ZaloToken(ctx, "oa1"); got.Refused != "" || got.RefreshToken != "r3" || got.Generation != 3 || !got.ExpiresAt.IsZero() {
		t.Fatalf("after a new refresh token: %+v; want it usable, generation 3", got)
	}
}

func testZaloFollowers(t *testing.T, s store.Store) {
	ctx := t.Context()
	fs := []store.ZaloFollower{
		{OAID: "oa1", UserID: "u-old", Phone: "84912345678", Followed: false, UpdatedAt: t0},
		{OAID: "oa1", UserID: "u-new", Phone: "84912345678", Followed: true, ConsentAt: t0, InteractionAt: t0, UpdatedAt: t0},
		{OAID: "oa1", UserID: "u-gone", Phone: "84987654321", Followed: false, UpdatedAt: t0},
		{OAID: "oa2", UserID: "u-other", Phone: "84900000000", Followed: true, UpdatedAt: t0},
	}
	if n, err := s.UpsertZaloFollowers(ctx, fs); err != nil || n != 4 {
		t.Fatalf("UpsertZaloFollowers = %d, %v", n, err)
	}
	f, err := s.ZaloFollowerByPhone(ctx, "oa1", "84912345678")
	if err != nil || f.UserID != "u-new" || !f.Followed || !f.ConsentAt.Equal(t0) {
		t.Fatalf("by phone = %+v, %v; want the one still following", f, err)
	}
	f, err = s.ZaloFollowerByPhone(ctx, "oa1", "84987654321")
	if err != nil || f.UserID != "u-gone" || f.Followed {
		t.Fatalf("by phone of one who unfollowed = %+v, %v; want it, not following", f, err)
	}
	if _, err := s.ZaloFollowerByPhone(ctx, "oa1", "84900000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a phone linked only under another OA = %v; want ErrNotFound", err)
	}
	// A later upsert without times keeps the consent time.
	if _, err := s.UpsertZaloFollowers(ctx, []store.ZaloFollower{{OAID: "oa1", UserID: "u-new", Phone: "84912345678", Followed: false, UpdatedAt: t0.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	f, _ = s.ZaloFollowerByPhone(ctx, "oa1", "84912345678")
	if f.Followed || !f.ConsentAt.Equal(t0) {
		t.Fatalf("after an unfollow: %+v; want not following, consent time kept", f)
	}
	if following, withPhone, err := s.CountZaloFollowers(ctx, "oa2"); err != nil || following != 1 || withPhone != 1 {
		t.Fatalf("CountZaloFollowers = %d, %d, %v; want 1, 1", following, withPhone, err)
	}
}

func testZaloSends(t *testing.T, s store.Store) {
	ctx := t.Context()
	recs := []store.ZaloSend{
		{Sink: "zalo", EventID: "e1", Part: 0, Parts: 2, OAID: "oa1", Route: store.ZaloRouteOA, Agency: "A", Month: "2025-03", MessageID: "m1", QuotaType: "sub_quota", At: t0},
		{Sink: "zalo", EventID: "e1", Part: 1, Parts: 2, OAID: "oa1", Route: store.ZaloRouteOA, Agency: "A", Month: "2025-03", MessageID: "m2", At: t0},
		{Sink: "zalo", EventID: "e2", Parts: 1, OAID: "oa1", Route: store.ZaloRouteZNS, Agency: "A", Month: "2025-03", MessageID: "m3", At: t0.Add(time.Second)},
		{Sink: "zalo", EventID: "e3", Parts: 1, OAID: "oa1", Route: store.ZaloRouteUndeliverable, Agency: "B", Month: "2025-03", Reason: "no phone", At: t0.Add(2 * time.Second)},
		{Sink: "zalo", EventID: "e4", Parts: 1, OAID: "oa1", Route: store.ZaloRouteZNS, Agency: "A", Month: "2025-04", DryRun: true, Request: `{"phone":"84..."}`, At: t0.Add(3 * time.Second)},
	}
	for _, r := range recs {
		if err := s.RecordZaloSend(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	dup := recs[0]
	dup.MessageID = "m-again"
	if err := s.RecordZaloSend(ctx, dup); err != nil {
		t.Fatalf("recording a part again = %v; want it ignored", err)
	}
	got, err := s.ZaloSends(ctx, "zalo", "e1", 0)
	if err != nil || len(got) != 2 || got[0].MessageID != "m1" || got[1].Part != 1 || got[0].QuotaType != "sub_quota" || !got[0].At.Equal(t0) {
		t.Fatalf("ZaloSends(e1) = %+v, %v; want both parts, the first record kept", got, err)
	}
	all, err := s.ZaloSends(ctx, "zalo", "", 0)
	if err != nil || len(all) != 5 || all[4].EventID != "e4" || !all[4].DryRun || all[4].Request == "" {
		t.Fatalf("ZaloSends(all) = %+v, %v", all, err)
	}
	use, err := s.ZaloUsage(ctx, "", "2025-03")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.ZaloUsage{
		{Month: "2025-03", Agency: "A", Route: "oa", Notices: 1, Messages: 2},
		{Month: "2025-03", Agency: "A", Route: "zns", Notices: 1, Messages: 1},
		{Month: "2025-03", Agency: "B", Route: "undeliverable", Notices: 1, Messages: 1},
	}
	if len(use) != len(want) {
		t.Fatalf("ZaloUsage = %+v; want %+v", use, want)
	}
	for i := range want {
		if use[i] != want[i] {
			t.Fatalf("ZaloUsage[%d] = %+v; want %+v", i, use[i], want[i])
		}
	}
	if use, _ := s.ZaloUsage(ctx, "zalo", "2025-04"); len(use) != 1 || use[0].DryRun != 1 {
		t.Fatalf("April usage = %+v; want one dry-run ZNS", use)
	}
}
