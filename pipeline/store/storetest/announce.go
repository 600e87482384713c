package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// announcements is what pipeline/announce needs of a store.
type announcements interface {
	CreateAnnouncement(ctx context.Context, a store.Announcement, audit store.AuditEntry) (int64, error)
	EditAnnouncement(ctx context.Context, a store.Announcement, from []string, audit store.AuditEntry) error
	MoveAnnouncement(ctx context.Context, id int64, from []string, ch store.AnnouncementChange, audit store.AuditEntry) error
	Announcement(ctx context.Context, id int64) (store.Announcement, error)
	Announcements(ctx context.Context, f store.AnnouncementFilter) ([]store.Announcement, error)
	AnnouncementUsage(ctx context.Context, agency string, from, to time.Time, except int64) (int, error)
	StartAnnouncement(ctx context.Context, id int64, rs []store.AnnouncementRecipient, at time.Time, audit store.AuditEntry) error
	AnnouncementRecipients(ctx context.Context, id int64, state string, after, limit int) ([]store.AnnouncementRecipient, error)
	ClaimRecipients(ctx context.Context, id int64, limit int, at time.Time) ([]store.AnnouncementRecipient, error)
	SettleRecipients(ctx context.Context, id int64, rs []store.AnnouncementRecipient) error
	CancelRecipients(ctx context.Context, id int64, at time.Time) (int, error)
	RecipientStates(ctx context.Context, id int64) (map[string]int, error)
	OAMessages(ctx context.Context, oa string, from, to time.Time) (int, error)
	Followers(ctx context.Context, oaID, after string, limit int) ([]store.ZaloFollower, error)
	PlaceFollowers(ctx context.Context, oaID string, places []string) ([]string, error)
	OpenRecords(ctx context.Context, kind string, agencies []string) ([]store.FactRecord, error)
}

var announceTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"announcement steps are compare-and-set and audited in the same transaction", testAnnouncementSteps},
	{"announcement recipients are claimed, settled once and counted", testAnnouncementRecipients},
	{"announcement usage counts planned, then sent, per agency and period", testAnnouncementUsage},
	{"followers, followers by place and open records for segments", testAnnouncementSegments},
}

func ann(t *testing.T, s store.Store) announcements {
	t.Helper()
	a, ok := s.(announcements)
	if !ok {
		t.Fatalf("%T lacks the announcement store methods", s)
	}
	return a
}

var annAt = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

func newAnnouncement(t *testing.T, s announcements, agency string, sendAt time.Time) int64 {
	t.Helper()
	id, err := s.CreateAnnouncement(context.Background(), store.Announcement{Agency: agency, OA: "zalo", Title: "Tiêu đề",
		Content: `{"text":"Nội dung"}`, Segment: `{"kind":"all"}`, SendAt: sendAt, State: "draft", Author: "an", CreatedAt: annAt},
		store.AuditEntry{At: annAt, Actor: "an", Action: "announcement draft", Detail: "drafted"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func testAnnouncementSteps(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := ann(t, s)
	id := newAnnouncement(t, a, "HUYEN-A", annAt)
	got, err := a.Announcement(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "draft" || got.Author != "an" || !got.SendAt.Equal(annAt) || got.Title != "Tiêu đề" {
		t.Fatalf("stored: %+v", got)
	}
	audit := func(action string) store.AuditEntry {
		return store.AuditEntry{At: annAt, Actor: "binh", Action: action, Detail: "x"}
	}
	// A step from the wrong state changes nothing and writes no audit entry.
	err = a.MoveAnnouncement(ctx, id, []string{"submitted"}, store.AnnouncementChange{State: "approved", Approver: "binh", At: annAt}, audit("approve"))
	if !errors.Is(err, store.ErrStateChanged) {
		t.Fatalf("approve a draft: %v, want ErrStateChanged", err)
	}
	if err := a.MoveAnnouncement(ctx, 999, []string{"draft"}, store.AnnouncementChange{State: "submitted", At: annAt}, audit("submit")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown announcement: %v, want ErrNotFound", err)
	}
	if err := a.MoveAnnouncement(ctx, id, []string{"draft"}, store.AnnouncementChange{State: "submitted", At: annAt}, audit("submit")); err != nil {
		t.Fatal(err)
	}
	planned := 7
	if err := a.MoveAnnouncement(ctx, id, []string{"submitted"}, store.AnnouncementChange{State: "approved", Approver: "binh", Planned: &planned, At: annAt.Add(time.Minute)}, audit("approve")); err != nil {
		t.Fatal(err)
	}
	got, _ = a.Announcement(ctx, id)
	if got.State != "approved" || got.Approver != "binh" || got.Planned != 7 || !got.UpdatedAt.Equal(annAt.Add(time.Minute)) {
		t.Fatalf("approved: %+v", got)
	}
	if err := a.EditAnnouncement(ctx, store.Announcement{ID: id, Title: "Khác", State: "draft", UpdatedAt: annAt}, []string{"draft", "rejected"}, audit("edit")); !errors.Is(err, store.ErrStateChanged) {
		t.Fatalf("edit an approved announcement: %v", err)
	}
	log, err := s.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action)
	}
	if len(actions) != 3 || actions[0] != "announcement draft" || actions[1] != "submit" || actions[2] != "approve" {
		t.Fatalf("audit log: %v, want the draft, submit and approve only", actions)
	}
	if log[0].Detail != "announcement 1: drafted" && log[0].Detail[:13] != "announcement " {
		t.Fatalf("draft's audit detail %q does not name the announcement", log[0].Detail)
	}
	list, err := a.Announcements(ctx, store.AnnouncementFilter{Agencies: []string{"HUYEN-B"}})
	if err != nil || len(list) != 0 {
		t.Fatalf("another agency's list: %v %v", list, err)
	}
	list, err = a.Announcements(ctx, store.AnnouncementFilter{States: []string{"approved"}})
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("approved list: %v %v", list, err)
	}
}

func testAnnouncementRecipients(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := ann(t, s)
	id := newAnnouncement(t, a, "HUYEN-A", annAt)
	start := func() error {
		return a.StartAnnouncement(ctx, id, []store.AnnouncementRecipient{{UserID: "u1"}, {UserID: "u2"}, {Phone: "84901234567"}, {UserID: "u4"}, {UserID: "u5"}},
			annAt, store.AuditEntry{At: annAt, Actor: "egov-bridge", Action: "announcement start"})
	}
	if err := start(); !errors.Is(err, store.ErrStateChanged) {
		t.Fatalf("start a draft: %v", err)
	}
	if err := a.MoveAnnouncement(ctx, id, []string{"draft"}, store.AnnouncementChange{State: "scheduled", At: annAt}, store.AuditEntry{At: annAt, Action: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	if err := start(); !errors.Is(err, store.ErrStateChanged) {
		t.Fatalf("a second start: %v", err)
	}
	batch, err := a.ClaimRecipients(ctx, id, 2, annAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 2 || batch[0].N != 1 || batch[1].N != 2 || batch[0].State != "sending" {
		t.Fatalf("claimed %+v", batch)
	}
	again, err := a.ClaimRecipients(ctx, id, 2, annAt)
	if err != nil || len(again) != 2 || again[0].N != 3 {
		t.Fatalf("second claim: %+v %v", again, err)
	}
	doubt, err := a.AnnouncementRecipients(ctx, id, "sending", 0, 0)
	if err != nil || len(doubt) != 4 || !doubt[0].AttemptAt.Equal(annAt) {
		t.Fatalf("in doubt: %+v %v", doubt, err)
	}
	batch[0].State, batch[0].Route, batch[0].MessageID, batch[0].DoneAt = "sent", "oa", "m1", annAt
	batch[1].State, batch[1].Route, batch[1].Code, batch[1].DoneAt = "failed", "oa", -201, annAt
	again[0].State, again[0].Route, again[0].Cost, again[0].DoneAt = "sent", "zns", 300, annAt
	again[1].State, again[1].DoneAt = "opted_out", annAt
	sendOf := func(r store.AnnouncementRecipient) *store.ZaloSend {
		return &store.ZaloSend{Sink: "zalo", EventID: fmt.Sprintf("announcement/%d/%d", id, r.N), Parts: 1, OAID: "oa1",
			Route: r.Route, Agency: "HUYEN-A", Rule: "announcement", Month: annAt.Format("2006-01"), MessageID: r.MessageID, At: annAt}
	}
	batch[0].Send, again[0].Send = sendOf(batch[0]), sendOf(again[0])
	settle := append(batch, again...)
	for range 2 { // a second settle of the same rows counts nothing
		if err := a.SettleRecipients(ctx, id, settle); err != nil {
			t.Fatal(err)
		}
	}
	n, err := a.CancelRecipients(ctx, id, annAt)
	if err != nil || n != 1 {
		t.Fatalf("cancelled %d, %v; want the 1 pending", n, err)
	}
	got, _ := a.Announcement(ctx, id)
	if got.State != "sending" || got.Recipients != 5 || got.Sent != 2 || got.Failed != 1 || got.OptedOut != 1 || got.Cancelled != 1 || got.Paid != 1 || got.Cost != 300 {
		t.Fatalf("counters: %+v", got)
	}
	states, err := a.RecipientStates(ctx, id)
	if err != nil || states["sent"] != 2 || states["cancelled"] != 1 || states["sending"] != 0 {
		t.Fatalf("states: %v %v", states, err)
	}
	rs, err := a.AnnouncementRecipients(ctx, id, "", 1, 2)
	if err != nil || len(rs) != 2 || rs[0].N != 2 || rs[0].Code != -201 || rs[1].Phone != "84901234567" || rs[1].Cost != 300 {
		t.Fatalf("page after 1: %+v %v", rs, err)
	}
	from, to := annAt.Add(-time.Hour), annAt.Add(time.Hour)
	// The settled messages are in zalo_sends once, each, with the notices.
	use, err := s.ZaloUsage(ctx, "zalo", annAt.Format("2006-01"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.ZaloUsage{{Month: annAt.Format("2006-01"), Agency: "HUYEN-A", Route: "oa", Notices: 1, Messages: 1},
		{Month: annAt.Format("2006-01"), Agency: "HUYEN-A", Route: "zns", Notices: 1, Messages: 1}}; !reflect.DeepEqual(use, want) {
		t.Fatalf("usage after the settle:\n got %+v\nwant %+v", use, want)
	}
	// A notice by OA counts against the same quota; a reply does not.
	for i, qt := range []string{"sub_quota", "reply"} {
		if err := s.RecordZaloSend(ctx, store.ZaloSend{Sink: "zalo", EventID: fmt.Sprintf("notice-%d", i), Parts: 1, OAID: "oa1",
			Route: "oa", Agency: "HUYEN-A", Month: annAt.Format("2006-01"), QuotaType: qt, At: annAt}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := a.OAMessages(ctx, "zalo", from, to); err != nil || n != 2 {
		t.Fatalf("OA messages: %d %v, want 2 (the announcement's and the notice's; not the ZNS one nor the reply)", n, err)
	}
}

func testAnnouncementUsage(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := ann(t, s)
	move := func(id int64, from, to string, planned int) {
		t.Helper()
		if err := a.MoveAnnouncement(ctx, id, []string{from}, store.AnnouncementChange{State: to, Planned: &planned, At: annAt}, store.AuditEntry{At: annAt, Action: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	one := newAnnouncement(t, a, "HUYEN-A", annAt)
	move(one, "draft", "approved", 10)
	two := newAnnouncement(t, a, "HUYEN-A", annAt.Add(2*time.Hour))
	move(two, "draft", "submitted", 50) // not approved: reserves nothing
	other := newAnnouncement(t, a, "HUYEN-B", annAt)
	move(other, "draft", "approved", 99)
	later := newAnnouncement(t, a, "HUYEN-A", annAt.Add(48*time.Hour))
	move(later, "draft", "approved", 5)
	day := func(except int64) int {
		n, err := a.AnnouncementUsage(ctx, "HUYEN-A", annAt.Add(-time.Hour), annAt.Add(23*time.Hour), except)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := day(0); n != 10 {
		t.Fatalf("day usage %d, want 10", n)
	}
	if n := day(one); n != 0 {
		t.Fatalf("day usage without the first %d, want 0", n)
	}
	// A finished one counts what it sent, not what it planned.
	move(one, "approved", "sent", 10)
	if n := day(0); n != 0 {
		t.Fatalf("a sent announcement with nothing sent counts %d", n)
	}
}

func testAnnouncementSegments(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := ann(t, s)
	c := cit(t, s)
	z := s
	if _, err := z.UpsertZaloFollowers(ctx, []store.ZaloFollower{
		{OAID: "oa", UserID: "u1", Followed: true, UpdatedAt: annAt},
		{OAID: "oa", UserID: "u2", Followed: false, UpdatedAt: annAt},
		{OAID: "oa", UserID: "u3", Followed: true, UpdatedAt: annAt},
		{OAID: "other", UserID: "u4", Followed: true, UpdatedAt: annAt},
	}); err != nil {
		t.Fatal(err)
	}
	fs, err := a.Followers(ctx, "oa", "", 10)
	if err != nil || len(fs) != 2 || fs[0].UserID != "u1" || fs[1].UserID != "u3" {
		t.Fatalf("followers: %+v %v", fs, err)
	}
	if fs, err = a.Followers(ctx, "oa", "u1", 10); err != nil || len(fs) != 1 {
		t.Fatalf("followers after u1: %+v %v", fs, err)
	}
	for _, sub := range []store.ZaloSubscription{
		{OAID: "oa", UserID: "u1", Topic: "cupdien", Place: "xa can giuoc"},
		{OAID: "oa", UserID: "u1", Topic: "nuoc", Place: "xa can giuoc"},
		{OAID: "oa", UserID: "u3", Topic: "cupdien", Place: "xa phuoc vinh tay"},
	} {
		sub.CreatedAt = annAt
		if _, err := c.Subscribe(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	users, err := a.PlaceFollowers(ctx, "oa", []string{"xa can giuoc"})
	if err != nil || len(users) != 1 || users[0] != "u1" {
		t.Fatalf("followers in a place: %v %v", users, err)
	}
	err = s.Commit(ctx, store.Batch{Source: "motcua", At: annAt, Facts: []store.Fact{
		{Entity: "dossier", Key: "HS1", Kind: "dossier", Agency: "XA-A1", State: "open"},
		{Entity: "dossier", Key: "HS2", Kind: "dossier", Agency: "XA-A1", State: "finished"},
		{Entity: "dossier", Key: "HS3", Kind: "dossier", Agency: "HUYEN-B", State: "open"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := a.OpenRecords(ctx, "dossier", []string{"XA-A1", "HUYEN-A"})
	if err != nil || len(recs) != 1 || recs[0].Key != "HS1" || recs[0].Source != "motcua" {
		t.Fatalf("open records: %+v %v", recs, err)
	}
}
