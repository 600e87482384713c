package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egov-bridge/egov-bridge/pipeline/announce"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// fakeZaloOA is Zalo's OA API as far as announcements use it, in the test
// process: promotion messages (logged in arrival order, each answered with
// sub_quota) and the conversation look-up. It outlives the daemons the test kills.
type fakeZaloOA struct {
	srv  *httptest.Server
	mu   sync.Mutex
	log  []fakeOAMessage
	slow time.Duration
}

type fakeOAMessage struct {
	UserID string
	Header string
	At     time.Time
}

func newFakeZaloOA(t *testing.T) *fakeZaloOA {
	f := &fakeZaloOA{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeZaloOA) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("access_token") != "access-announce" {
		_ = json.NewEncoder(w).Encode(map[string]any{"error": -216, "message": "Access token is invalid"})
		return
	}
	switch r.URL.Path {
	case "/v3.0/oa/message/promotion":
		var body struct {
			Recipient struct {
				UserID string `json:"user_id"`
			} `json:"recipient"`
			Message struct {
				Attachment struct {
					Payload struct {
						Elements []map[string]any `json:"elements"`
					} `json:"payload"`
				} `json:"attachment"`
			} `json:"message"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			_ = json.NewEncoder(w).Encode(map[string]any{"error": -201, "message": "invalid body"})
			return
		}
		header := ""
		for _, e := range body.Message.Attachment.Payload.Elements {
			if e["type"] == "header" {
				header, _ = e["content"].(string)
			}
		}
		f.mu.Lock()
		f.log = append(f.log, fakeOAMessage{UserID: body.Recipient.UserID, Header: header, At: time.Now()})
		n := len(f.log)
		slow := f.slow
		f.mu.Unlock()
		time.Sleep(slow) // a remote API takes its time; the kill lands mid-send
		_ = json.NewEncoder(w).Encode(map[string]any{"error": 0, "message": "Success",
			"data": map[string]any{"message_id": fmt.Sprintf("m%d", n), "quota": map[string]any{"quota_type": "sub_quota"}}})
	case "/v2.0/oa/conversation":
		var q struct {
			UserID string `json:"user_id"`
			Count  int    `json:"count"`
		}
		_ = json.Unmarshal([]byte(r.URL.Query().Get("data")), &q)
		data := []map[string]any{}
		f.mu.Lock()
		for i := len(f.log) - 1; i >= 0 && len(data) < q.Count; i-- {
			if m := f.log[i]; m.UserID == q.UserID {
				data = append(data, map[string]any{"msg_id": fmt.Sprintf("m%d", i+1), "src": 0, "time": m.At.UnixMilli(), "type": "text", "message": m.Header})
			}
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"error": 0, "message": "Success", "data": data})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeZaloOA) received() []fakeOAMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeOAMessage(nil), f.log...)
}

// announceSetup writes a config with a zalo sink pointed at the fake, the
// regulation, and a store holding a token and the OA's followers.
func announceSetup(t *testing.T, fake *fakeZaloOA, followers int) (config string) {
	t.Helper()
	dir := t.TempDir()
	agency := filepath.Join(dir, "agency.db")
	db, err := sql.Open("sqlite", agency)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE HoSo (MaHoSo TEXT PRIMARY KEY, NgayCapNhat DATETIME)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	write(t, filepath.Join(dir, "dossier.yaml"), "entity: dossier\nkey: [code]\nfields:\n  code: { from: MaHoSo, required: true }\n")
	write(t, filepath.Join(dir, "regulation.yaml"), `quiet_hours: { off: true }   # the test runs at any hour
caps: { daily: 20000, monthly: 100000 }
free_quota: 2000
prices: { oa: 150 }
batch: 50
agencies:
  STTTT:
    authors: [an]
    approvers: [binh]
    senders: [chi]
    areas: ["*"]
    all_followers: true
`)
	config = filepath.Join(dir, "config.yaml")
	write(t, config, fmt.Sprintf(`store: { driver: sqlite, path: state.db }
log: { level: warn }
agencies:
  - { code: STTTT, name: Sở Thông tin và Truyền thông, sources: [motcua] }
sources:
  - { name: motcua, type: sql, driver: sqlite, dsn: agency.db, table: HoSo, cursor: { column: NgayCapNhat, key: MaHoSo }, mapping: dossier.yaml, schedule: "@every 1h" }
sinks:
  - { name: zalo, type: zalo, app_id: app-1, secret_key: secret-1, oa_id: oa-1, oauth_url: %[1]q, oa_url: %[1]q, zns_url: %[1]q, rate_per_minute: 600000 }
routes:
  - { events: ["dossier.*"], to: [zalo] }
announcements: { regulation: regulation.yaml, poll: 100ms }
`, fake.srv.URL))

	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", Path: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	if _, err := st.SaveZaloToken(ctx, store.ZaloToken{OAID: "oa-1", AccessToken: "access-announce", RefreshToken: "refresh-1",
		ExpiresAt: now.Add(25 * time.Hour), RefreshedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	fs := make([]store.ZaloFollower, followers)
	for i := range fs {
		fs[i] = store.ZaloFollower{OAID: "oa-1", UserID: fmt.Sprintf("u%05d", i), Followed: true, UpdatedAt: now}
	}
	if _, err := st.UpsertZaloFollowers(ctx, fs); err != nil {
		t.Fatal(err)
	}
	return config
}

// approveAnnouncement writes, approves and schedules an announcement to every
// follower, as three different people, through the same service the daemon runs.
func approveAnnouncement(t *testing.T, config, title string) int64 {
	t.Helper()
	ctx := context.Background()
	cfg, ok := loadConfig(config, io.Discard)
	if !ok {
		t.Fatal("config does not load")
	}
	log := slog.New(slog.DiscardHandler)
	d, err := engine.New(ctx, cfg, engine.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	svc, err := newAnnouncements(cfg, d, log)
	if err != nil {
		t.Fatal(err)
	}
	id, err := svc.Create(ctx, "an", announce.Draft{Agency: "STTTT", Title: title,
		Content: announce.Content{Text: "Từ 01/01/2027 người dân nộp hồ sơ trực tuyến tại dichvucong.gov.vn.", Link: "https://dichvucong.gov.vn"},
		Segment: announce.Segment{Kind: announce.SegmentAll}, SendAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return svc.Submit(ctx, "an", id) },
		func() error { return svc.Approve(ctx, "binh", id) },
		func() error { return svc.Schedule(ctx, "chi", id) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func readAnnouncement(t *testing.T, config string, id int64) (store.Announcement, []store.AuditEntry, int) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", Path: filepath.Join(filepath.Dir(config), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.(announce.Store).Announcement(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	log, err := st.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := st.(announce.Store).AnnouncementRecipients(ctx, id, announce.RecipientSent, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	confirmed := 0
	for _, r := range rs {
		if strings.Contains(r.Detail, "confirmed with Zalo") {
			confirmed++
		}
	}
	return a, log, confirmed
}

// A daemon killed with SIGKILL twice in the middle of a 10,000-recipient send
// resumes it: the receiving server's log holds every follower exactly once.
func TestAnnouncementKilledMidSendResumesWithoutDuplicateOrGap(t *testing.T) {
	const followers = 10000
	fake := newFakeZaloOA(t)
	fake.slow = 200 * time.Microsecond
	config := announceSetup(t, fake, followers)
	// One follower sent HUY TIN: nothing may reach them.
	func() {
		st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(filepath.Dir(config), "state.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.(interface {
			StopZaloFollower(ctx context.Context, oaID, userID string, stop bool, at time.Time) error
		}).StopZaloFollower(context.Background(), "oa-1", "u04321", true, time.Now()); err != nil {
			t.Fatal(err)
		}
	}()
	id := approveAnnouncement(t, config, "Thông báo dịch vụ công trực tuyến")

	var kills []int
	for _, at := range []int{2500, 6000} {
		d := startDaemon(t, config, os.Stderr)
		waitFor(t, 120*time.Second, fmt.Sprintf("%d messages at the fake Zalo", at), func() bool { return len(fake.received()) >= at })
		if err := d.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = d.Wait()
		kills = append(kills, len(fake.received()))
	}
	if kills[len(kills)-1] >= followers-1 {
		t.Fatalf("the send had finished (%d messages) before the last kill", kills[len(kills)-1])
	}
	last := startDaemon(t, config, os.Stderr)
	waitFor(t, 120*time.Second, "every follower but the opted-out one to be sent to", func() bool { return len(fake.received()) >= followers-1 })
	// Let the daemon settle and finish, then stop it.
	time.Sleep(time.Second)
	if err := last.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := last.Wait(); err != nil {
		t.Fatalf("daemon did not exit 0 on SIGTERM: %v", err)
	}

	got := fake.received()
	per := map[string]int{}
	for _, m := range got {
		per[m.UserID]++
		if m.Header != "Thông báo dịch vụ công trực tuyến" {
			t.Fatalf("a message with header %q", m.Header)
		}
	}
	for i := range followers {
		u := fmt.Sprintf("u%05d", i)
		switch {
		case u == "u04321" && per[u] != 0:
			t.Errorf("the opted-out citizen received %d messages", per[u])
		case u != "u04321" && per[u] != 1:
			t.Errorf("%s received %d messages, want exactly 1", u, per[u])
		}
	}
	if len(got) != followers-1 {
		t.Errorf("the fake Zalo logged %d messages, want %d (killed at %v)", len(got), followers-1, kills)
	}
	a, audit, confirmed := readAnnouncement(t, config, id)
	if a.State != announce.StateSent || a.Sent != followers-1 || a.OptedOut != 1 || a.Recipients != followers {
		t.Fatalf("announcement after the restarts: state %s recipients %d sent %d opted out %d", a.State, a.Recipients, a.Sent, a.OptedOut)
	}
	var steps []string
	for _, e := range audit {
		steps = append(steps, e.Actor+" "+e.Action)
	}
	want := "an announcement draft, an announcement submit, binh announcement approve, chi announcement schedule, egov-bridge announcement start, egov-bridge announcement sent"
	if strings.Join(steps, ", ") != want {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(steps, ", "), want)
	}
	t.Logf("killed at %v messages; %d recipients each reached once; %d found in doubt after a kill and confirmed with Zalo instead of sent again",
		kills, len(per), confirmed)
}

// The command line acts as the OS user: an author who is also an approver drafts,
// previews and submits, and cannot approve their own announcement.
func TestAnnounceCommands(t *testing.T) {
	fake := newFakeZaloOA(t)
	config := announceSetup(t, fake, 3)
	me := actor()
	write(t, filepath.Join(filepath.Dir(config), "regulation.yaml"), fmt.Sprintf(`quiet_hours: { off: true }
free_quota: 2
prices: { oa: 150 }
agencies:
  STTTT:
    authors: [%[1]q]
    approvers: [%[1]q, someone-else]
    senders: [%[1]q]
    all_followers: true
`, me))
	code, out, errOut := runCmd(t, "announce", "draft", "-c", config, "--agency", "STTTT", "--title", "Thông báo",
		"--text", "Nội dung thông báo.", "--link", "https://stttt.example.gov.vn", "--segment", "all", "--at", "now")
	if code != 0 || !strings.Contains(out, "announcement 1 drafted") {
		t.Fatalf("draft: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "announce", "preview", "-c", config, "1")
	for _, want := range []string{"Thông báo\n\nNội dung thông báo.\n\n[Xem chi tiết] https://stttt.example.gov.vn", "Recipients: 3",
		"OA, free quota:   2", "OA, paid:         1", "Cost: 150 đồng"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("preview lacks %q: %d\n%s\n%s", want, code, out, errOut)
		}
	}
	if code, out, errOut = runCmd(t, "announce", "submit", "-c", config, "1"); code != 0 {
		t.Fatalf("submit: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "announce", "approve", "-c", config, "1")
	if code != 1 || !strings.Contains(errOut, "refused: "+me+" wrote announcement 1 and cannot approve it") {
		t.Fatalf("self-approval: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "announce", "list", "-c", config)
	if code != 0 || !strings.Contains(out, "submitted") {
		t.Fatalf("list: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "state", "audit", "-c", config)
	if code != 0 || !strings.Contains(out, "announcement draft") || !strings.Contains(out, "announcement submit") || strings.Contains(out, "announcement approve") {
		t.Fatalf("audit: %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut = runCmd(t, "announce", "approve", "-c", config, "x"); code != 1 || !strings.Contains(errOut, "not an announcement number") {
		t.Fatalf("bad id: %d %s", code, errOut)
	}
}

// The page's announcements section in a browser: the approver logs in, finds the
// author's announcement in the approval queue with its preview, approves it; once
// the sender has scheduled it and it has gone out, the report shows the reach and
// cost per agency.
func TestAnnouncementsOnThePageInABrowser(t *testing.T) {
	exe := chromium(t)
	fake := newFakeZaloOA(t)
	config := announceSetup(t, fake, 5)
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "log: { level: warn }", `log: { level: info }
http:
  listen: 127.0.0.1:0
  tokens:
    - { name: an, role: viewer, token: announce-token-an-0001 }
    - { name: binh, role: viewer, token: announce-token-binh-0001 }
    - { name: chi, role: viewer, token: announce-token-chi-0001 }`, 1))
	write(t, config, string(b))
	// an drafts and submits; the page shows it to binh.
	ctx := context.Background()
	cfg, ok := loadConfig(config, os.Stderr)
	if !ok {
		t.Fatal("config does not load")
	}
	func() {
		d, err := engine.New(ctx, cfg, engine.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		svc, err := newAnnouncements(cfg, d, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		id, err := svc.Create(ctx, "an", announce.Draft{Agency: "STTTT", Title: "Ngày hội chuyển đổi số",
			Content: announce.Content{Text: "Mời bà con tham dự ngày hội chuyển đổi số tại nhà văn hoá xã.", Link: "https://stttt.example.gov.vn/ngay-hoi"},
			Segment: announce.Segment{Kind: announce.SegmentAll}, SendAt: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Submit(ctx, "an", id); err != nil {
			t.Fatal(err)
		}
	}()

	log := &syncBuffer{}
	cmd := startDaemon(t, config, log)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	addrRE := regexp.MustCompile(`http listening"? addr=(\S+)`)
	var base string
	waitFor(t, 60*time.Second, "the daemon to listen", func() bool {
		if cmd.ProcessState != nil {
			t.Fatalf("the daemon exited:\n%s", log.String())
		}
		if m := addrRE.FindStringSubmatch(log.String()); m != nil {
			base = "http://" + m[1]
			return true
		}
		return false
	})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 2200),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	bctx, cancelTimeout := context.WithTimeout(bctx, 90*time.Second)
	defer cancelTimeout()
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "announce-token-binh-0001"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS("#announce-queue li button")),
	); err != nil {
		t.Fatalf("the approver's page: %v", err)
	}
	queue, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("announce-queue")))
	if err != nil || !strings.Contains(queue, "Ngày hội chuyển đổi số") || !strings.Contains(queue, "an") {
		t.Fatalf("the approval queue shows %q (%v)", queue, err)
	}
	clickButton := func(container, label string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const b = [...document.querySelectorAll(%q)].find(x => x.textContent === %q); if (!b) return false; b.click(); return true })()`,
			container+" button", label)
		if ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](js)); err != nil || !ok {
			t.Fatalf("no %q button in %s (%v)", label, container, err)
		}
	}
	clickButton("#announce-queue", "Xem trước")
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS("#announce-counts table"))); err != nil {
		t.Fatal(err)
	}
	preview, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("announce-preview")))
	if !strings.Contains(preview, "Ngày hội chuyển đổi số\n\nMời bà con") || !strings.Contains(preview, "[Xem chi tiết] https://stttt.example.gov.vn/ngay-hoi") {
		t.Errorf("the preview shows %q", preview)
	}
	clickButton("#announce-queue", "Duyệt")
	waitFor(t, 30*time.Second, "the list to show the announcement approved", func() bool {
		s, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("announce-list")))
		return strings.Contains(s, "Đã duyệt")
	})
	// chi schedules it through the API; the daemon sends it.
	req, _ := http.NewRequest("POST", base+"/api/v1/announcements/1/schedule", nil)
	req.Header.Set("Authorization", "Bearer announce-token-chi-0001")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("schedule: %d", resp.StatusCode)
	}
	waitFor(t, 30*time.Second, "5 messages at the fake Zalo", func() bool { return len(fake.received()) == 5 })
	if err := chromedp.Do(bctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the report to show the reach", func() bool {
		s, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("announce-report")))
		return strings.Contains(s, "Sở Thông tin và Truyền thông") && strings.Contains(s, "5")
	})
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifactDir(t), "announcements-page.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}

// validate checks the regulation with the config, naming its file and line.
func TestValidateChecksTheRegulation(t *testing.T) {
	fake := newFakeZaloOA(t)
	config := announceSetup(t, fake, 0)
	reg := filepath.Join(filepath.Dir(config), "regulation.yaml")
	write(t, reg, "caps: { daily: 10, monthly: 5 }\nagencies:\n  STTTT:\n    authorz: [an]\n")
	code, out, errOut := runCmd(t, "validate", "-c", config)
	if code != 1 || !strings.Contains(errOut, reg+":4:5: agencies.STTTT.authorz: unknown field") {
		t.Fatalf("validate: %d\n%s\n%s", code, out, errOut)
	}
	write(t, reg, "caps: { daily: 10, monthly: 5 }\n")
	code, out, errOut = runCmd(t, "validate", "-c", config)
	if code != 1 || !strings.Contains(errOut, reg+":1:16: caps.daily: the daily cap 10 is above the monthly cap 5") {
		t.Fatalf("validate: %d\n%s\n%s", code, out, errOut)
	}
	// Residents are located through the regulation's crosswalk, which this one lacks.
	write(t, reg, "agencies:\n  STTTT: { authors: [an], approvers: [binh], areas: [\"*\"] }\n")
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	write(t, config, strings.Replace(string(b), "poll: 100ms }", "poll: 100ms, residence: [{ entity: dossier, places: [address] }, { entity: dossier }] }", 1))
	code, out, errOut = runCmd(t, "validate", "-c", config)
	if code != 1 || !strings.Contains(errOut, "announcements.residence: the regulation "+reg+" has no crosswalk") ||
		!strings.Contains(errOut, "announcements.residence[1].places") {
		t.Fatalf("validate: %d\n%s\n%s", code, out, errOut)
	}
}

// An announcement's messages are counted where the notices are: the steering
// figures' routes, `zalo status` and the OA's proactive quota, which a notice
// sent the same month shares.
func TestAnnouncementSendsCountWithTheNotices(t *testing.T) {
	fake := newFakeZaloOA(t)
	config := announceSetup(t, fake, 3)
	id := approveAnnouncement(t, config, "Lịch tiếp công dân tháng 12")

	ctx := context.Background()
	cfg, ok := loadConfig(config, io.Discard)
	if !ok {
		t.Fatal("config does not load")
	}
	log := slog.New(slog.DiscardHandler)
	d, err := engine.New(ctx, cfg, engine.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	svc, err := newAnnouncements(cfg, d, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	as := d.Store.(announce.Store)
	if a, err := as.Announcement(ctx, id); err != nil || a.State != announce.StateSent || a.Sent != 3 {
		t.Fatalf("announcement after a tick: %+v %v", a, err)
	}
	// A notice by OA the same month, as the zalo sink records it.
	if err := d.Store.RecordZaloSend(ctx, store.ZaloSend{Sink: "zalo", EventID: "notice-1", Parts: 1, OAID: "oa-1", Route: "oa",
		Agency: "STTTT", Rule: "dossier.result_ready", Month: time.Now().In(cfg.Zone).Format("2006-01"), QuotaType: "sub_quota", At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}

	f, err := d.Figures.Figures(ctx, figures.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Total.Notices.OA != 4 || f.Total.Notices.Messages != 4 {
		t.Errorf("figures' notices by route: %+v, want 4 by OA (3 announcement messages and the notice)", f.Total.Notices)
	}
	// The announcements' own quota (preview, cost) sees the same number.
	from := time.Now().Add(-time.Hour)
	if n, err := as.OAMessages(ctx, "zalo", from, from.Add(2*time.Hour)); err != nil || n != 4 {
		t.Errorf("OA messages for the quota: %d %v, want 4", n, err)
	}
	d.Close()

	code, out, errOut := runCmd(t, "zalo", "status", "-c", config)
	for _, want := range []*regexp.Regexp{regexp.MustCompile(`(?m)^zalo\s+STTTT\s+oa\s+4\s+4\s+0$`),
		regexp.MustCompile(`proactive quota: 4 OA messages in \d{4}-\d\d \(notices and announcements\)`)} {
		if code != 0 || !want.MatchString(out) {
			t.Fatalf("zalo status lacks %s: %d\n%s\n%s", want, code, out, errOut)
		}
	}
}
