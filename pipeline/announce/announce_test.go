package announce_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/announce"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// The province of these tests: a department that may address every follower, two
// districts with their own communes, and a commune office under district A.
var agencies = []figures.Agency{
	{Code: "STTTT", Name: "Sở Thông tin và Truyền thông"},
	{Code: "HUYEN-A", Name: "UBND huyện A"},
	{Code: "HUYEN-B", Name: "UBND huyện B"},
	{Code: "XA-A1", Name: "UBND xã Cần Giuộc", Parent: "HUYEN-A"},
}

const crosswalk = `current,former
Xã Cần Giuộc,Thị trấn Cần Giuộc
Xã Cần Giuộc,Xã Phước Lâm
Xã Phước Vĩnh Tây,Xã Long Hậu
Xã Phước Vĩnh Tây,Xã Phước Lại
`

const regulation = `
quiet_hours: { start: "21:00", end: "07:00" }
caps: { daily: 100, monthly: 1000 }
free_quota: 2
prices: { oa: 150, zns: 300 }
places: crosswalk.csv
batch: 3
agencies:
  STTTT:
    authors: [an]
    approvers: [binh, an]
    senders: [chi]
    areas: ["*"]
    all_followers: true
  HUYEN-A:
    authors: [dung]
    approvers: [em]
    senders: [em]
    areas: [Xã Cần Giuộc]
    topics: [cupdien]
    caps: { daily: 4, monthly: 6 }
  HUYEN-B:
    authors: [giang]
    approvers: [hoa]
    senders: [hoa]
    areas: [Xã Phước Vĩnh Tây]
templates:
  lich-cat-dien:
    title: Lịch cắt điện
    text: "Điện lực thông báo cắt điện tại {{.noi}} ngày {{.ngay}}."
  ho-so:
    title: Hồ sơ của bạn
    text: "{{.noi_dung}}"
    zns_template_id: "z-1"
    template_data: { noi_dung: $text, tieu_de: $title }
`

// fakeOA is a Channel that records what it is asked to send; blockAfter makes it
// wait (for a cancel) after that many sends.
type fakeOA struct {
	mu       sync.Mutex
	got      []announce.Recipient
	refuse   map[string]int // user -> Zalo error code
	received map[string]bool
	hook     func(n int)
	// transient makes the next sends to a user fail as an outage does.
	transient map[string]int
}

func (f *fakeOA) OAID() string { return "oa-1" }

func (f *fakeOA) Announce(ctx context.Context, m announce.Message, to announce.Recipient) (announce.Result, error) {
	f.mu.Lock()
	if f.transient[to.UserID] > 0 {
		f.transient[to.UserID]--
		f.mu.Unlock()
		return announce.Result{}, pipeline.RetryAfter(errors.New("zalo: HTTP 503"), time.Millisecond)
	}
	f.got = append(f.got, to)
	n := len(f.got)
	code := f.refuse[to.UserID]
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	if code != 0 {
		return announce.Result{State: announce.RecipientFailed, Route: announce.RouteOA, Code: code, Detail: "refused"}, nil
	}
	if to.UserID == "" {
		return announce.Result{State: announce.RecipientUnreachable, Detail: "not a follower"}, nil
	}
	return announce.Result{State: announce.RecipientSent, Route: announce.RouteOA, MessageID: "m-" + to.UserID}, nil
}

func (f *fakeOA) Received(ctx context.Context, m announce.Message, to announce.Recipient, since time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received[to.UserID], nil
}

func (f *fakeOA) users() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.got {
		out = append(out, r.UserID)
	}
	slices.Sort(out) // a batch is sent concurrently
	return out
}

type fixture struct {
	t   *testing.T
	ctx context.Context
	st  store.Store
	svc *announce.Service
	oa  *fakeOA
	now time.Time
	mu  sync.Mutex
}

var hcm, _ = time.LoadLocation("Asia/Ho_Chi_Minh")

// at is a time of day in the province on 2 December 2026.
func at(hhmm string) time.Time {
	t, _ := time.ParseInLocation("2006-01-02 15:04", "2026-12-02 "+hhmm, hcm)
	return t.UTC()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "crosswalk.csv"), []byte(crosswalk), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "regulation.yaml")
	if err := os.WriteFile(path, []byte(regulation), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := announce.LoadRegulation(path, agencies)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", Path: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, ctx: ctx, st: st, oa: &fakeOA{refuse: map[string]int{}, received: map[string]bool{}, transient: map[string]int{}}, now: at("09:00")}
	f.svc, err = announce.New(announce.Options{Regulation: reg, Store: st.(announce.Store), Agencies: agencies,
		Channels: map[string]announce.Channel{"zalo": f.oa}, Clock: f.clock, Zone: hcm})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

type citizens interface {
	UpsertZaloFollowers(ctx context.Context, fs []store.ZaloFollower) (int, error)
	StopZaloFollower(ctx context.Context, oaID, userID string, stop bool, at time.Time) error
	Subscribe(ctx context.Context, sub store.ZaloSubscription) (bool, error)
}

// follow adds followers; place, when set, is where they subscribed to outages.
func (f *fixture) follow(place string, users ...string) {
	f.t.Helper()
	c := f.st.(citizens)
	for _, u := range users {
		if _, err := c.UpsertZaloFollowers(f.ctx, []store.ZaloFollower{{OAID: "oa-1", UserID: u, Followed: true, UpdatedAt: f.now}}); err != nil {
			f.t.Fatal(err)
		}
		if place != "" {
			if _, err := c.Subscribe(f.ctx, store.ZaloSubscription{OAID: "oa-1", UserID: u, Topic: "cupdien", Place: place, CreatedAt: f.now}); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

func (f *fixture) draft(agency string, seg announce.Segment, sendAt time.Time) announce.Draft {
	return announce.Draft{Agency: agency, Title: "Thông báo tiêm chủng",
		Content: announce.Content{Text: "Mời bà con đưa trẻ đi tiêm chủng tại trạm y tế xã.", Link: "https://tiemchung.example.gov.vn"},
		Segment: seg, SendAt: sendAt}
}

// approved drafts, submits, approves and schedules an announcement.
func (f *fixture) approved(author, approver, sender string, d announce.Draft) int64 {
	f.t.Helper()
	id, err := f.svc.Create(f.ctx, author, d)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.svc.Submit(f.ctx, author, id); err != nil {
		f.t.Fatal(err)
	}
	if err := f.svc.Approve(f.ctx, approver, id); err != nil {
		f.t.Fatal(err)
	}
	if err := f.svc.Schedule(f.ctx, sender, id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) tick() {
	f.t.Helper()
	if err := f.svc.Tick(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) get(id int64) store.Announcement {
	f.t.Helper()
	a, _, err := f.svc.Get(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func refused(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("allowed; want a refusal mentioning %q", want)
	}
	if !announce.IsRefused(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("refused with %q (a refusal: %v); want it to mention %q", err, announce.IsRefused(err), want)
	}
}

func TestAuthorCannotApproveOwnAnnouncement(t *testing.T) {
	f := newFixture(t)
	f.follow("", "u1")
	// an is both an author and an approver of STTTT.
	id, err := f.svc.Create(f.ctx, "an", f.draft("STTTT", announce.Segment{Kind: announce.SegmentAll}, at("10:00")))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Submit(f.ctx, "an", id); err != nil {
		t.Fatal(err)
	}
	refused(t, f.svc.Approve(f.ctx, "an", id), "cannot approve it")
	if a := f.get(id); a.State != announce.StateSubmitted || a.Approver != "" {
		t.Fatalf("after the refused approval: state %s approver %q", a.State, a.Approver)
	}
	refused(t, f.svc.Approve(f.ctx, "hoa", id), "not an approver of STTTT")
	if err := f.svc.Approve(f.ctx, "binh", id); err != nil {
		t.Fatalf("another approver: %v", err)
	}
	if a := f.get(id); a.State != announce.StateApproved || a.Approver != "binh" || a.Planned != 1 {
		t.Fatalf("approved: state %s approver %q planned %d", a.State, a.Approver, a.Planned)
	}
	// Roles hold for every step: a non-sender cannot schedule, a non-author cannot draft.
	refused(t, f.svc.Schedule(f.ctx, "binh", id), "not an sender")
	_, err = f.svc.Create(f.ctx, "binh", f.draft("STTTT", announce.Segment{Kind: announce.SegmentAll}, at("10:00")))
	refused(t, err, "not an author")
}

func TestDistrictCannotTargetAnotherDistrictsCommunes(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		agency string
		author string
		seg    announce.Segment
		want   string // "" allowed
	}{
		{"own commune by its current name", "HUYEN-A", "dung", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Cần Giuộc"}}, ""},
		{"own commune by a former name, no diacritics", "HUYEN-A", "dung", announce.Segment{Kind: announce.SegmentArea, Places: []string{"thi tran can giuoc"}}, ""},
		{"another district's commune", "HUYEN-A", "dung", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Phước Vĩnh Tây"}}, "not one of HUYEN-A's communes"},
		{"another district's commune by a former name", "HUYEN-A", "dung", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Long Hậu"}}, "not one of HUYEN-A's communes"},
		{"own and another's together", "HUYEN-B", "giang", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Phước Vĩnh Tây", "Xã Phước Lâm"}}, "not one of HUYEN-B's communes"},
		{"topic in another district", "HUYEN-A", "dung", announce.Segment{Kind: announce.SegmentTopic, Topic: "cupdien", Places: []string{"Xã Phước Lại"}}, "not one of HUYEN-A's communes"},
		{"a topic it does not own", "HUYEN-B", "giang", announce.Segment{Kind: announce.SegmentTopic, Topic: "cupdien", Places: []string{"Xã Phước Vĩnh Tây"}}, "may not address topic"},
		{"every follower without the right", "HUYEN-A", "dung", announce.Segment{Kind: announce.SegmentAll}, "may not address every follower"},
		{"open dossiers of an agency under it", "HUYEN-A", "dung", announce.Segment{Kind: announce.SegmentDossiers, Agency: "XA-A1"}, ""},
		{"open dossiers of another district", "HUYEN-A", "dung", announce.Segment{Kind: announce.SegmentDossiers, Agency: "HUYEN-B"}, "not HUYEN-A or under it"},
		{"a place nobody knows", "HUYEN-A", "dung", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Phường Không Có"}}, "no commune or ward"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Create(f.ctx, tc.author, f.draft(tc.agency, tc.seg, at("10:00")))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			refused(t, err, tc.want)
		})
	}
}

func TestOptedOutCitizenReceivesNothing(t *testing.T) {
	f := newFixture(t)
	f.follow("xa can giuoc", "u1", "u2", "u3", "u4")
	c := f.st.(citizens)
	// u2 sent HUY TIN before the announcement was written.
	if err := c.StopZaloFollower(f.ctx, "oa-1", "u2", true, f.now); err != nil {
		t.Fatal(err)
	}
	d := f.draft("HUYEN-A", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Cần Giuộc"}}, at("10:00"))
	p, err := f.svc.PreviewDraft(f.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if p.Recipients != 4 || p.OptedOut != 1 || p.OAFree+p.OAPaid != 3 {
		t.Fatalf("preview: %+v", p)
	}
	id := f.approved("dung", "em", "em", d)
	// u4 sends HUY TIN after approval, while the send is under way (after the
	// first recipient).
	f.oa.hook = func(n int) {
		if n == 1 {
			if err := c.StopZaloFollower(f.ctx, "oa-1", "u4", true, f.now); err != nil {
				t.Error(err)
			}
		}
	}
	f.set(at("10:00"))
	f.tick()
	got := f.oa.users()
	if slices.Contains(got, "u2") || slices.Contains(got, "u4") {
		t.Fatalf("opted-out citizens were sent to: %v", got)
	}
	if !slices.Equal(got, []string{"u1", "u3"}) {
		t.Fatalf("sent to %v, want [u1 u3]", got)
	}
	a := f.get(id)
	if a.State != announce.StateSent || a.Sent != 2 || a.OptedOut != 2 {
		t.Fatalf("announcement: state %s sent %d opted out %d", a.State, a.Sent, a.OptedOut)
	}
	rs, err := f.st.(announce.Store).AnnouncementRecipients(f.ctx, id, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		want := announce.RecipientSent
		if r.UserID == "u2" || r.UserID == "u4" {
			want = announce.RecipientOptedOut
		}
		if r.State != want {
			t.Errorf("recipient %s: state %s, want %s", r.UserID, r.State, want)
		}
	}
}

func TestQuietHoursHold(t *testing.T) {
	f := newFixture(t)
	f.follow("xa can giuoc", "u1", "u2")
	d := f.draft("HUYEN-A", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Cần Giuộc"}}, at("22:30"))
	_, err := f.svc.Create(f.ctx, "dung", d)
	refused(t, err, "quiet hours")
	d.SendAt = at("20:50")
	id := f.approved("dung", "em", "em", d)
	f.set(at("20:40")) // before the send time: nothing
	f.tick()
	f.set(at("21:05")) // due, but the quiet hours began: nothing
	f.tick()
	if got := f.oa.users(); len(got) != 0 {
		t.Fatalf("sent in quiet hours or early: %v", got)
	}
	if a := f.get(id); a.State != announce.StateScheduled {
		t.Fatalf("state %s, want scheduled", a.State)
	}
	f.set(at("06:59").Add(24 * time.Hour))
	f.tick()
	if got := f.oa.users(); len(got) != 0 {
		t.Fatalf("sent at 06:59: %v", got)
	}
	f.set(at("07:00").Add(24 * time.Hour))
	f.tick()
	if got := f.oa.users(); len(got) != 2 {
		t.Fatalf("after the quiet hours sent to %v, want 2", got)
	}
}

func TestQuietHoursPauseASendUnderWay(t *testing.T) {
	f := newFixture(t)
	f.follow("", "u1", "u2", "u3", "u4", "u5")
	id := f.approved("an", "binh", "chi", f.draft("STTTT", announce.Segment{Kind: announce.SegmentAll}, at("20:59")))
	// The clock passes 21:00 while the first batch (3) is sent.
	f.oa.hook = func(n int) {
		if n == 3 {
			f.set(at("21:00"))
		}
	}
	f.set(at("20:59"))
	f.tick()
	if got := f.oa.users(); len(got) != 3 {
		t.Fatalf("sent %d before the pause, want the first batch of 3", len(got))
	}
	f.tick()
	if got := f.oa.users(); len(got) != 3 {
		t.Fatalf("sent %d in quiet hours", len(got))
	}
	f.set(at("07:00").Add(24 * time.Hour))
	f.tick()
	if got := f.oa.users(); len(got) != 5 {
		t.Fatalf("sent %d after the quiet hours, want 5", len(got))
	}
	if a := f.get(id); a.State != announce.StateSent {
		t.Fatalf("state %s", a.State)
	}
}

func TestCapsHold(t *testing.T) {
	f := newFixture(t)
	f.follow("xa can giuoc", "u1", "u2", "u3")
	seg := announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Cần Giuộc"}}
	// HUYEN-A may send 4 messages a day, 6 a month.
	f.approved("dung", "em", "em", f.draft("HUYEN-A", seg, at("10:00")))
	second, err := f.svc.Create(f.ctx, "dung", f.draft("HUYEN-A", seg, at("15:00")))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Submit(f.ctx, "dung", second); err != nil {
		t.Fatal(err)
	}
	refused(t, f.svc.Approve(f.ctx, "em", second), "daily cap")
	p, err := f.svc.PreviewStored(f.ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if p.DailyUsed != 3 || p.DailyCap != 4 || len(p.Problems) == 0 {
		t.Fatalf("preview: daily %d/%d problems %v", p.DailyUsed, p.DailyCap, p.Problems)
	}
	// The next day it fits the daily cap, and takes the month to 6.
	next := f.draft("HUYEN-A", seg, at("10:00").Add(24*time.Hour))
	if err := f.svc.Edit(f.ctx, "dung", second, next); err == nil {
		t.Fatal("edited a submitted announcement")
	}
	third := f.approved("dung", "em", "em", next)
	_ = third
	// A third day: the month is full.
	fourth, err := f.svc.Create(f.ctx, "dung", f.draft("HUYEN-A", seg, at("10:00").Add(48*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Submit(f.ctx, "dung", fourth); err != nil {
		t.Fatal(err)
	}
	refused(t, f.svc.Approve(f.ctx, "em", fourth), "monthly cap")
	// Another agency's caps are its own.
	f.follow("xa phuoc vinh tay", "v1")
	f.approved("giang", "hoa", "hoa", f.draft("HUYEN-B", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Phước Vĩnh Tây"}}, at("10:00")))
	// The segment grows past the cap after approval: the send is refused at start.
	f.follow("xa can giuoc", "u4", "u5")
	f.set(at("10:00").Add(24 * time.Hour))
	f.tick()
	if a := f.get(third); a.State != announce.StateCancelled || !strings.Contains(a.Reason, "cap") {
		t.Fatalf("an announcement over its cap at start: state %s reason %q", a.State, a.Reason)
	}
}

func TestAuditLogHoldsEveryStep(t *testing.T) {
	f := newFixture(t)
	f.follow("xa can giuoc", "u1")
	d := f.draft("HUYEN-A", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Cần Giuộc"}}, at("10:00"))
	id, err := f.svc.Create(f.ctx, "dung", d)
	if err != nil {
		t.Fatal(err)
	}
	f.set(at("09:05"))
	if err := f.svc.Submit(f.ctx, "dung", id); err != nil {
		t.Fatal(err)
	}
	f.set(at("09:10"))
	if err := f.svc.Reject(f.ctx, "em", id, "thiếu địa điểm"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Edit(f.ctx, "dung", id, d); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Submit(f.ctx, "dung", id); err != nil {
		t.Fatal(err)
	}
	f.set(at("09:20"))
	if err := f.svc.Approve(f.ctx, "em", id); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Schedule(f.ctx, "em", id); err != nil {
		t.Fatal(err)
	}
	f.set(at("10:00"))
	f.tick()
	// A refused step is not a step: it leaves no entry.
	_ = f.svc.Approve(f.ctx, "dung", id)
	log, err := f.st.AuditLog(f.ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ actor, action, at string }{
		{"dung", "announcement draft", "09:00"},
		{"dung", "announcement submit", "09:05"},
		{"em", "announcement reject", "09:10"},
		{"dung", "announcement edit", "09:10"},
		{"dung", "announcement submit", "09:10"},
		{"em", "announcement approve", "09:20"},
		{"em", "announcement schedule", "09:20"},
		{announce.System, "announcement start", "10:00"},
		{announce.System, "announcement sent", "10:00"},
	}
	if len(log) != len(want) {
		for _, e := range log {
			t.Logf("%s %s %s %s", e.At.In(hcm).Format("15:04"), e.Actor, e.Action, e.Detail)
		}
		t.Fatalf("%d audit entries, want %d", len(log), len(want))
	}
	for i, w := range want {
		e := log[i]
		if e.Actor != w.actor || e.Action != w.action || e.At.In(hcm).Format("15:04") != w.at || !strings.Contains(e.Detail, fmt.Sprintf("announcement %d", id)) || !strings.Contains(e.Detail, "HUYEN-A") {
			t.Errorf("entry %d: %s %s %s %q; want %s %s at %s, naming the announcement and agency", i, e.At.In(hcm).Format("15:04"), e.Actor, e.Action, e.Detail, w.actor, w.action, w.at)
		}
	}
}

func TestCancelWhileSending(t *testing.T) {
	f := newFixture(t)
	var users []string
	for i := range 12 {
		users = append(users, fmt.Sprintf("u%02d", i))
	}
	f.follow("", users...)
	id := f.approved("an", "binh", "chi", f.draft("STTTT", announce.Segment{Kind: announce.SegmentAll}, at("10:00")))
	f.oa.hook = func(n int) {
		if n == 4 { // in the second batch of 3
			if err := f.svc.Cancel(f.ctx, "chi", id, "sai nội dung"); err != nil {
				t.Error(err)
			}
		}
	}
	f.set(at("10:00"))
	f.tick()
	f.tick()
	got := len(f.oa.users())
	if got > 6 {
		t.Fatalf("sent %d after a cancel in the second batch; at most that batch may finish", got)
	}
	a := f.get(id)
	if a.State != announce.StateCancelled || a.Sent != got || a.Cancelled != 12-got {
		t.Fatalf("state %s sent %d cancelled %d (channel saw %d)", a.State, a.Sent, a.Cancelled, got)
	}
	// Someone without a role in the agency may not cancel; nobody can cancel twice.
	refused(t, f.svc.Cancel(f.ctx, "dung", id, ""), "may not cancel")
	if err := f.svc.Cancel(f.ctx, "chi", id, ""); !errors.Is(err, store.ErrStateChanged) {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestResumeChecksRecipientsInDoubtWithZalo(t *testing.T) {
	f := newFixture(t)
	f.follow("", "u1", "u2", "u3", "u4")
	id := f.approved("an", "binh", "chi", f.draft("STTTT", announce.Segment{Kind: announce.SegmentAll}, at("10:00")))
	// A process started the send, claimed the first batch and died: u1 reached
	// Zalo, u2 and u3 did not.
	st := f.st.(announce.Store)
	a := f.get(id)
	if err := st.StartAnnouncement(f.ctx, id, []store.AnnouncementRecipient{{UserID: "u1"}, {UserID: "u2"}, {UserID: "u3"}, {UserID: "u4"}}, at("10:00"), store.AuditEntry{At: at("10:00"), Actor: "test", Action: "announcement start"}); err != nil {
		t.Fatal(err)
	}
	_ = a
	if _, err := st.ClaimRecipients(f.ctx, id, 3, at("10:00")); err != nil {
		t.Fatal(err)
	}
	f.oa.received["u1"] = true
	f.set(at("10:01"))
	f.tick()
	if got := f.oa.users(); !slices.Equal(got, []string{"u2", "u3", "u4"}) {
		t.Fatalf("after the restart sent to %v, want [u2 u3 u4] (u1 already has it)", got)
	}
	if a := f.get(id); a.State != announce.StateSent || a.Sent != 4 {
		t.Fatalf("state %s sent %d", a.State, a.Sent)
	}
}

func TestPreviewRendersTheMessageAndCountsQuota(t *testing.T) {
	f := newFixture(t)
	f.follow("", "u1", "u2", "u3")
	d := f.draft("STTTT", announce.Segment{Kind: announce.SegmentAll}, at("10:00"))
	d.Content = announce.Content{Template: "lich-cat-dien", Data: map[string]string{"noi": "xã Cần Giuộc", "ngay": "05/12/2026"}, Image: "https://evn.example.vn/banner.png"}
	d.Title = ""
	p, err := f.svc.PreviewDraft(f.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	wantText := "[ảnh] https://evn.example.vn/banner.png\nLịch cắt điện\n\nĐiện lực thông báo cắt điện tại xã Cần Giuộc ngày 05/12/2026."
	if p.Text != wantText || p.Title != "Lịch cắt điện" {
		t.Fatalf("rendered:\n%s\nwant:\n%s", p.Text, wantText)
	}
	// free_quota 2: two followers free, one paid at 150 đồng.
	if p.Recipients != 3 || p.OAFree != 2 || p.OAPaid != 1 || p.Cost != 150 || p.FreeLeft != 2 {
		t.Fatalf("counts: %+v", p)
	}
	long := f.draft("STTTT", announce.Segment{Kind: announce.SegmentAll}, at("10:00"))
	long.Content.Text = strings.Repeat("Câu dài. ", 250)
	_, err = f.svc.PreviewDraft(f.ctx, long)
	refused(t, err, "at most 2000")
	bad := f.draft("STTTT", announce.Segment{Kind: announce.SegmentAll}, at("10:00"))
	bad.Content.Link = "http://insecure.example"
	_, err = f.svc.PreviewDraft(f.ctx, bad)
	refused(t, err, "https")
}

// The model regulation shipped in configs/ loads as the README documents it.
func TestModelRegulationLoads(t *testing.T) {
	reg, err := announce.LoadRegulation("../../configs/regulation/model.yaml", []figures.Agency{
		{Code: "VP-UBND-TINH", Name: "Văn phòng UBND tỉnh"}, {Code: "SO-TTTT", Name: "Sở TT&TT"},
		{Code: "UBND-HUYEN-CANGIUOC", Name: "UBND huyện Cần Giuộc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Caps.Daily != 5000 || reg.QuietHours.Start != "21:00" || reg.FreeQuota != 1000 || len(reg.Agencies) != 3 {
		t.Fatalf("model regulation: %+v", reg)
	}
}

// Mistakes in a regulation are reported with the file, line and field.
func TestRegulationMistakesNameTheLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "regulation.yaml")
	if err := os.WriteFile(path, []byte("quiet_hours: { start: \"9pm\" }\ncaps: { daily: 10, monthly: 5 }\nagencies:\n  NOBODY:\n    authors: [a]\n    approvers: [a]\n    areas: [Xã Cần Giuộc]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := announce.LoadRegulation(path, agencies)
	if err == nil {
		t.Fatal("a bad regulation loaded")
	}
	for _, want := range []string{
		path + ":1:", "quiet_hours.start", "9pm",
		path + ":2:", "caps.daily: the daily cap 10 is above the monthly cap 5",
		"agencies.NOBODY: no agency has code",
		"the only approver is the only author",
		"places: agencies name areas",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestDossierSegmentReachesFollowersAndPhones(t *testing.T) {
	f := newFixture(t)
	c := f.st.(citizens)
	if _, err := c.UpsertZaloFollowers(f.ctx, []store.ZaloFollower{{OAID: "oa-1", UserID: "u1", Phone: "84912345678", Followed: true, UpdatedAt: f.now}}); err != nil {
		t.Fatal(err)
	}
	snap := func(key, phone string) store.SnapshotEntry {
		return store.SnapshotEntry{Entity: "dossier", Key: key, Hash: "h-" + key, Version: 1, Fields: map[string]any{"code": key, "phone": phone}}
	}
	fact := func(key, agency, state string) store.Fact {
		return store.Fact{Entity: "dossier", Key: key, Kind: "dossier", Agency: agency, State: state}
	}
	if err := f.st.Commit(f.ctx, store.Batch{Source: "motcua", At: f.now,
		Snapshot: []store.SnapshotEntry{snap("HS1", "0912 345 678"), snap("HS2", "0987654321"), snap("HS3", ""), snap("HS4", "0987000000"), snap("HS5", "0987654321")},
		Facts:    []store.Fact{fact("HS1", "XA-A1", "open"), fact("HS2", "XA-A1", "open"), fact("HS3", "XA-A1", "open"), fact("HS4", "XA-A1", "finished"), fact("HS5", "HUYEN-A", "open")},
	}); err != nil {
		t.Fatal(err)
	}
	d := f.draft("HUYEN-A", announce.Segment{Kind: announce.SegmentDossiers}, at("10:00"))
	d.Title = ""
	d.Content = announce.Content{Template: "ho-so", Data: map[string]string{"noi_dung": "Bộ phận một cửa nghỉ làm việc thứ bảy này."}}
	p, err := f.svc.PreviewDraft(f.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	// HS1's citizen follows (OA); HS2 and HS5 share a phone that follows nobody (one
	// ZNS); HS3 has no phone; HS4 is finished.
	if p.Recipients != 2 || p.OAFree != 1 || p.ZNS != 1 || p.Cost != 300 || p.ZNSTemplate != "z-1" {
		t.Fatalf("preview: %+v", p)
	}
	id := f.approved("dung", "em", "em", d)
	f.set(at("10:00"))
	f.tick()
	got := f.oa.got
	if len(got) != 2 || got[0].UserID != "u1" && got[1].UserID != "u1" {
		t.Fatalf("sent to %+v", got)
	}
	a := f.get(id)
	if a.Sent != 1 || a.Unreachable != 1 { // the fake channel has no ZNS: not reachable
		t.Fatalf("sent %d unreachable %d", a.Sent, a.Unreachable)
	}
}

// An outage during a send leaves the recipients it hit claimed; the next tick
// asks Zalo about them and sends only to those it does not have.
func TestTransientFailureIsRetriedOnce(t *testing.T) {
	f := newFixture(t)
	f.follow("", "u1", "u2", "u3", "u4")
	f.oa.transient["u2"] = 2
	f.oa.refuse["u4"] = -201
	id := f.approved("an", "binh", "chi", f.draft("STTTT", announce.Segment{Kind: announce.SegmentAll}, at("10:00")))
	f.set(at("10:00"))
	for range 3 {
		f.tick()
	}
	per := map[string]int{}
	for _, u := range f.oa.users() {
		per[u]++
	}
	// u2 met two outages, then was sent to once; the others once.
	if per["u1"] != 1 || per["u2"] != 1 || per["u3"] != 1 || per["u4"] != 1 || f.oa.transient["u2"] != 0 {
		t.Fatalf("messages per user: %v (outages left for u2: %d)", per, f.oa.transient["u2"])
	}
	a := f.get(id)
	if a.State != announce.StateSent || a.Sent != 3 || a.Failed != 1 {
		t.Fatalf("state %s sent %d failed %d", a.State, a.Sent, a.Failed)
	}
	rs, err := f.st.(announce.Store).AnnouncementRecipients(f.ctx, id, announce.RecipientFailed, 0, 0)
	if err != nil || len(rs) != 1 || rs[0].UserID != "u4" || rs[0].Code != -201 {
		t.Fatalf("failed recipients: %+v %v", rs, err)
	}
}

// An agency with its own OA speaks through it, and so do the agencies under it;
// the others through the province's.
func TestAgenciesSpeakThroughTheirOwnOA(t *testing.T) {
	f := newFixture(t)
	own := &fakeOA{refuse: map[string]int{}, received: map[string]bool{}, transient: map[string]int{}}
	withOA := slices.Clone(agencies)
	withOA[1].OA = "zalo-huyen-a" // HUYEN-A
	reg := f.svc.Regulation()
	reg.OA = "zalo"
	svc, err := announce.New(announce.Options{Regulation: reg, Store: f.st.(announce.Store), Agencies: withOA,
		Channels: map[string]announce.Channel{"zalo": f.oa, "zalo-huyen-a": own}, Clock: f.clock, Zone: hcm})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	f.follow("xa can giuoc", "u1")
	f.follow("xa phuoc vinh tay", "v1")
	a := f.approved("dung", "em", "em", f.draft("HUYEN-A", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Cần Giuộc"}}, at("10:00")))
	b := f.approved("giang", "hoa", "hoa", f.draft("HUYEN-B", announce.Segment{Kind: announce.SegmentArea, Places: []string{"Xã Phước Vĩnh Tây"}}, at("10:00")))
	if got := f.get(a).OA; got != "zalo-huyen-a" {
		t.Fatalf("HUYEN-A's announcement speaks through %q", got)
	}
	if got := f.get(b).OA; got != "zalo" {
		t.Fatalf("HUYEN-B's announcement speaks through %q", got)
	}
	f.set(at("10:00"))
	f.tick()
	if got := own.users(); !slices.Equal(got, []string{"u1"}) {
		t.Fatalf("HUYEN-A's OA sent to %v", got)
	}
	if got := f.oa.users(); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("the province's OA sent to %v", got)
	}
	_, err = announce.New(announce.Options{Regulation: reg, Store: f.st.(announce.Store), Agencies: withOA,
		Channels: map[string]announce.Channel{"zalo": f.oa}, Clock: f.clock, Zone: hcm})
	if err == nil || !strings.Contains(err.Error(), "zalo-huyen-a") {
		t.Fatalf("an agency's OA that is no zalo sink: %v", err)
	}
}
