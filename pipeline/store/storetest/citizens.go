package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// citizens is what the OA's citizen features need of a store (connectors/zalo).
type citizens interface {
	AddZaloInbound(ctx context.Context, e store.ZaloInbound) (bool, error)
	WaitingZaloInbound(ctx context.Context, oaID string, limit int) ([]store.ZaloInbound, error)
	FinishZaloInbound(ctx context.Context, id int64, at time.Time, errMsg string, done bool) error
	ZaloFollower(ctx context.Context, oaID, userID string) (store.ZaloFollower, error)
	SetZaloFollowing(ctx context.Context, oaID, userID string, following bool, at time.Time) error
	TouchZaloFollower(ctx context.Context, oaID, userID string, at time.Time) error
	LinkZaloPhone(ctx context.Context, oaID, userID, phone string, consentAt time.Time) error
	StopZaloFollower(ctx context.Context, oaID, userID string, stop bool, at time.Time) error
	Subscribe(ctx context.Context, sub store.ZaloSubscription) (bool, error)
	Unsubscribe(ctx context.Context, oaID, userID, topic, place string) (bool, error)
	Subscribers(ctx context.Context, oaID, topic string, places []string) ([]store.ZaloSubscription, error)
	AddFeedback(ctx context.Context, f store.Feedback, year int, source string, emit store.EmitFunc) (store.Feedback, bool, error)
	AnswerFeedback(ctx context.Context, ref, answer, by string, at time.Time, source string, emit store.EmitFunc) (store.Feedback, error)
	FeedbackByRef(ctx context.Context, ref string) (store.Feedback, error)
	Rate(ctx context.Context, r store.Rating) error
	ListRatings(ctx context.Context, f store.RatingFilter) ([]store.Rating, error)
	RatingsByAgency(ctx context.Context, f store.RatingFilter) ([]store.AgencyRatings, error)
	IndexLookup(entity, name string, fn store.IndexFunc)
	FillLookupIndex(ctx context.Context, entity, name string, at time.Time) (bool, error)
	LookupRecords(ctx context.Context, entity, name, value string, limit int) ([]store.LookupHit, error)
	LookupRecordsAfter(ctx context.Context, entity, name, value, afterSource, afterKey string, limit int) ([]store.LookupHit, error)
	ListFeedback(ctx context.Context, agency string, limit int) ([]store.Feedback, error)
	CountCitizens(ctx context.Context, oaID string) (store.CitizenCounts, error)
}

// citizenTests are the store cases of citizens writing to the OA.
var citizenTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"zalo webhook events are kept once and handled later", testZaloInbox},
	{"a follow, a shared phone and a stop keep each other", testZaloFollowerLife},
	{"subscribers are found by topic and place", testSubscriptions},
	{"feedback reference numbers stay unique under 100 concurrent submissions", testFeedbackRefsConcurrent},
	{"an answered feedback queues its reply with the answer", testFeedbackAnswer},
	{"ratings are kept per dossier and citizen and summed per agency", testRatings},
	{"look-up index follows commits and fills from the snapshot once", testLookupIndex},
}

func cit(t *testing.T, s store.Store) citizens {
	t.Helper()
	c, ok := s.(citizens)
	if !ok {
		t.Fatalf("%T lacks the citizens' store methods", s)
	}
	return c
}

func testZaloInbox(t *testing.T, s store.Store) {
	c, ctx := cit(t, s), t.Context()
	e := store.ZaloInbound{OAID: "oa", EventKey: "msg-1", EventName: "user_send_text", UserID: "u1", Payload: []byte(`{"a":1}`), ReceivedAt: t0}
	for i, want := range []bool{true, false} {
		added, err := c.AddZaloInbound(ctx, e)
		if err != nil || added != want {
			t.Fatalf("delivery %d: added = %v, %v; want %v", i+1, added, err, want)
		}
	}
	w, err := c.WaitingZaloInbound(ctx, "oa", 10)
	if err != nil || len(w) != 1 || string(w[0].Payload) != `{"a":1}` || w[0].UserID != "u1" {
		t.Fatalf("waiting = %+v, %v", w, err)
	}
	if err := c.FinishZaloInbound(ctx, w[0].ID, t0, "store down", false); err != nil {
		t.Fatal(err)
	}
	if w, _ = c.WaitingZaloInbound(ctx, "oa", 10); len(w) != 1 || w[0].Attempts != 1 || w[0].LastError != "store down" {
		t.Fatalf("after a failed attempt: %+v", w)
	}
	if err := c.FinishZaloInbound(ctx, w[0].ID, t0, "", true); err != nil {
		t.Fatal(err)
	}
	if w, _ = c.WaitingZaloInbound(ctx, "oa", 10); len(w) != 0 {
		t.Fatalf("handled event still waiting: %+v", w)
	}
	// Handled events go with the events' retention; waiting ones stay.
	e2 := e
	e2.EventKey = "msg-2"
	if _, err := c.AddZaloInbound(ctx, e2); err != nil {
		t.Fatal(err)
	}
	res, err := s.Purge(ctx, store.Retention{Events: time.Hour}, t0.Add(2*time.Hour))
	if err != nil || res.Inbox != 1 {
		t.Fatalf("purge = %+v, %v; want the handled event purged", res, err)
	}
	if w, _ = c.WaitingZaloInbound(ctx, "oa", 10); len(w) != 1 || w[0].EventKey != "msg-2" {
		t.Fatalf("after purge, waiting = %+v", w)
	}
}

func testZaloFollowerLife(t *testing.T, s store.Store) {
	c, ctx := cit(t, s), t.Context()
	if _, err := c.ZaloFollower(ctx, "oa", "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown follower: %v", err)
	}
	must(t, c.SetZaloFollowing(ctx, "oa", "u1", true, t0))
	must(t, c.LinkZaloPhone(ctx, "oa", "u1", "84912345678", t0.Add(time.Minute)))
	must(t, c.TouchZaloFollower(ctx, "oa", "u1", t0.Add(2*time.Minute)))
	must(t, c.TouchZaloFollower(ctx, "oa", "u1", t0.Add(time.Second))) // late, out of order: kept the latest
	must(t, c.StopZaloFollower(ctx, "oa", "u1", true, t0.Add(3*time.Minute)))
	f, err := c.ZaloFollower(ctx, "oa", "u1")
	if err != nil || f.Phone != "84912345678" || !f.Followed || !f.ConsentAt.Equal(t0.Add(time.Minute)) ||
		!f.InteractionAt.Equal(t0.Add(2*time.Minute)) || !f.StoppedAt.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("follower = %+v, %v", f, err)
	}
	byPhone, err := s.ZaloFollowerByPhone(ctx, "oa", "84912345678")
	if err != nil || byPhone.StoppedAt.IsZero() {
		t.Fatalf("by phone = %+v, %v; want the stop visible", byPhone, err)
	}
	must(t, c.SetZaloFollowing(ctx, "oa", "u1", false, t0.Add(4*time.Minute)))
	must(t, c.StopZaloFollower(ctx, "oa", "u1", false, t0.Add(5*time.Minute)))
	if f, _ = c.ZaloFollower(ctx, "oa", "u1"); f.Followed || f.Phone != "84912345678" || !f.StoppedAt.IsZero() {
		t.Fatalf("after unfollow and restart: %+v; want phone kept, not following, not stopped", f)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testSubscriptions(t *testing.T, s store.Store) {
	c, ctx := cit(t, s), t.Context()
	for _, sub := range []store.ZaloSubscription{
		{OAID: "oa", UserID: "u1", Topic: "cupdien", Place: "my yen", Label: "Mỹ Yên", CreatedAt: t0},
		{OAID: "oa", UserID: "u1", Topic: "cupdien", Place: "long hau", Label: "Long Hậu", CreatedAt: t0},
		{OAID: "oa", UserID: "u2", Topic: "cupdien", Place: "long hau", Label: "Long Hậu", CreatedAt: t0},
		{OAID: "oa", UserID: "u3", Topic: "other", Place: "long hau", CreatedAt: t0},
		{OAID: "oa2", UserID: "u4", Topic: "cupdien", Place: "long hau", CreatedAt: t0},
	} {
		if added, err := c.Subscribe(ctx, sub); err != nil || !added {
			t.Fatalf("subscribe %+v = %v, %v", sub, added, err)
		}
	}
	if added, err := c.Subscribe(ctx, store.ZaloSubscription{OAID: "oa", UserID: "u2", Topic: "cupdien", Place: "long hau", CreatedAt: t0}); err != nil || added {
		t.Fatalf("second subscribe = %v, %v; want not added", added, err)
	}
	subs, err := c.Subscribers(ctx, "oa", "cupdien", []string{"long hau", "my yen", "nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range subs {
		got = append(got, s.UserID+"@"+s.Place)
	}
	if want := []string{"u1@long hau", "u1@my yen", "u2@long hau"}; !slices.Equal(got, want) {
		t.Fatalf("subscribers = %v, want %v", got, want)
	}
	if removed, err := c.Unsubscribe(ctx, "oa", "u1", "cupdien", "long hau"); err != nil || !removed {
		t.Fatalf("unsubscribe = %v, %v", removed, err)
	}
	if removed, _ := c.Unsubscribe(ctx, "oa", "u1", "cupdien", "long hau"); removed {
		t.Fatal("unsubscribing twice removed something")
	}
}

func feedbackEvent(f store.Feedback) []store.OutboxEvent {
	ev := &pipeline.Event{ID: "fb-" + f.Ref, Type: "created", Source: "zalo", Entity: "feedback", Key: f.Ref, Agency: f.Agency,
		Version: 1, After: map[string]any{"ref": f.Ref, "text": f.Text}, DetectedAt: f.CreatedAt}
	return []store.OutboxEvent{{Event: ev, Sinks: []string{"dashboard"}}}
}

func testFeedbackRefsConcurrent(t *testing.T, s store.Store) {
	c, ctx := cit(t, s), t.Context()
	const n = 100
	refs := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, added, err := c.AddFeedback(ctx, store.Feedback{Origin: fmt.Sprintf("m%d", i), OAID: "oa", UserID: fmt.Sprintf("u%d", i),
				Agency: "UBND-A", Text: "Đường hư hỏng", CreatedAt: t0}, 2026, "zalo", feedbackEvent)
			if err != nil || !added {
				errs <- fmt.Errorf("submission %d: added %v, %w", i, added, err)
				return
			}
			refs[i] = f.Ref
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sorted := slices.Clone(refs)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != n || sorted[0] != "GY-2026-000001" || sorted[n-1] != "GY-2026-000100" {
		t.Fatalf("refs not unique 1..100: first %s last %s, %d distinct", sorted[0], sorted[n-1], len(slices.Compact(slices.Clone(sorted))))
	}
	// The same origin again (a re-handled webhook event) finds its feedback.
	again, added, err := c.AddFeedback(ctx, store.Feedback{Origin: "m7", OAID: "oa", UserID: "u7", Text: "x", CreatedAt: t0}, 2026, "zalo", feedbackEvent)
	if err != nil || added || again.Ref != refs[7] {
		t.Fatalf("same origin again = %s, %v, %v; want %s, not added", again.Ref, added, err, refs[7])
	}
	if p := pending(t, s, "dashboard", t0); len(p) != n {
		t.Fatalf("dashboard has %d feedback events waiting, want %d", len(p), n)
	}
}

func testFeedbackAnswer(t *testing.T, s store.Store) {
	c, ctx := cit(t, s), t.Context()
	f, _, err := c.AddFeedback(ctx, store.Feedback{Origin: "m1", OAID: "oa", UserID: "u1", ReplyTo: "msg-1", Agency: "UBND-A",
		Text: "Đèn đường hỏng", CreatedAt: t0}, 2026, "zalo", feedbackEvent)
	must(t, err)
	reply := func(f store.Feedback) []store.OutboxEvent {
		ev := &pipeline.Event{ID: "answer-" + f.Ref, Type: "reply", Source: "zalo", Entity: "zalo_reply", Key: f.UserID,
			After: map[string]any{"text": f.Answer}, DetectedAt: f.AnsweredAt}
		return []store.OutboxEvent{{Event: ev, Sinks: []string{"zalo"}}}
	}
	if _, err := c.AnswerFeedback(ctx, "GY-2026-999999", "x", "op", t0, "zalo", reply); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("answering an unknown ref = %v; want ErrNotFound", err)
	}
	got, err := c.AnswerFeedback(ctx, f.Ref, "Đã sửa xong", "nguyen.van.a", t0.Add(time.Hour), "zalo", reply)
	if err != nil || got.Answer != "Đã sửa xong" || got.AnsweredBy != "nguyen.van.a" || !got.AnsweredAt.Equal(t0.Add(time.Hour)) || got.ReplyTo != "msg-1" {
		t.Fatalf("answer = %+v, %v", got, err)
	}
	p := pending(t, s, "zalo", t0.Add(time.Hour))
	if len(p) != 1 || p[0].Event.After["text"] != "Đã sửa xong" {
		t.Fatalf("zalo outbox = %+v; want the answer's reply", p)
	}
	if byRef, err := c.FeedbackByRef(ctx, f.Ref); err != nil || byRef.Answer != "Đã sửa xong" {
		t.Fatalf("by ref = %+v, %v", byRef, err)
	}
	if _, _, err := c.AddFeedback(ctx, store.Feedback{Origin: "m2", OAID: "oa", UserID: "u2", Agency: "UBND-B", Text: "Rác",
		CreatedAt: t0.Add(time.Minute)}, 2026, "zalo", feedbackEvent); err != nil {
		t.Fatal(err)
	}
	if list, err := c.ListFeedback(ctx, "", 10); err != nil || len(list) != 2 || list[0].Ref != "GY-2026-000002" {
		t.Fatalf("all feedback = %+v, %v; want newest first", list, err)
	}
	if list, err := c.ListFeedback(ctx, "UBND-A", 10); err != nil || len(list) != 1 || list[0].Ref != f.Ref {
		t.Fatalf("feedback of UBND-A = %+v, %v", list, err)
	}
	if n, err := c.CountCitizens(ctx, "oa"); err != nil || n.Feedback != 2 || n.Unanswered != 1 {
		t.Fatalf("counts = %+v, %v", n, err)
	}
}

func testRatings(t *testing.T, s store.Store) {
	c, ctx := cit(t, s), t.Context()
	for _, r := range []store.Rating{
		{Source: "motcua", Dossier: "HS1", OAID: "oa", UserID: "u1", Agency: "A", Score: 2, RatedAt: t0},
		{Source: "motcua", Dossier: "HS1", OAID: "oa", UserID: "u1", Agency: "A", Score: 5, RatedAt: t0.Add(time.Minute)}, // replaces
		{Source: "motcua", Dossier: "HS2", OAID: "oa", UserID: "u2", Agency: "A", Score: 3, RatedAt: t0},
		{Source: "motcua", Dossier: "HS3", OAID: "oa", UserID: "u3", Agency: "B", Score: 1, RatedAt: t0.Add(48 * time.Hour)},
	} {
		must(t, c.Rate(ctx, r))
	}
	if err := c.Rate(ctx, store.Rating{Source: "m", Dossier: "x", OAID: "oa", UserID: "u", Score: 6, RatedAt: t0}); err == nil {
		t.Fatal("a score of 6 was kept")
	}
	all, err := c.ListRatings(ctx, store.RatingFilter{Agency: "A"})
	if err != nil || len(all) != 2 || all[0].Dossier != "HS1" || all[0].Score != 5 {
		t.Fatalf("ratings of A = %+v, %v", all, err)
	}
	sum, err := c.RatingsByAgency(ctx, store.RatingFilter{Until: t0.Add(24 * time.Hour)})
	if err != nil || len(sum) != 1 || sum[0].Agency != "A" || sum[0].Count != 2 || sum[0].Average != 4 || sum[0].Scores != [5]int{0, 0, 1, 0, 1} {
		t.Fatalf("by agency until the next day = %+v, %v", sum, err)
	}
	if sum, _ = c.RatingsByAgency(ctx, store.RatingFilter{}); len(sum) != 2 || sum[1].Agency != "B" || sum[1].Average != 1 {
		t.Fatalf("by agency = %+v", sum)
	}
}

func testLookupIndex(t *testing.T, s store.Store) {
	c, ctx := cit(t, s), t.Context()
	version := map[string]int64{}
	entry := func(key, code string, deleted bool) store.SnapshotEntry {
		version[key]++ // as change detection counts them: 1 for a record's first version
		return store.SnapshotEntry{Entity: "dossier", Key: key, Hash: code, Version: version[key], Fields: map[string]any{"code": code}, Deleted: deleted}
	}
	// Stored before the index was asked for: found once the index is filled.
	commit(t, s, store.Batch{Source: "motcua", At: t0, Snapshot: []store.SnapshotEntry{entry("K1", "HS-Đầu", false)}})
	byCode := func(f map[string]any) []string {
		v, _ := f["code"].(string)
		return []string{transform.Fold(v)}
	}
	c.IndexLookup("dossier", "code", byCode)
	commit(t, s, store.Batch{Source: "motcua", At: t0, Snapshot: []store.SnapshotEntry{entry("K2", "HS-Hai", false)}})
	find := func(v string) []string {
		t.Helper()
		hits, err := c.LookupRecords(ctx, "dossier", "code", v, 10)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, h := range hits {
			keys = append(keys, h.Source+"/"+h.Key+"="+fmt.Sprint(h.Fields["code"]))
		}
		return keys
	}
	if got := find("hs-dau"); len(got) != 0 {
		t.Fatalf("before the fill: %v", got)
	}
	if got := find("hs-hai"); !slices.Equal(got, []string{"motcua/K2=HS-Hai"}) {
		t.Fatalf("committed after the index was asked for: %v", got)
	}
	filled, err := c.FillLookupIndex(ctx, "dossier", "code", t0)
	if err != nil || !filled {
		t.Fatalf("fill = %v, %v", filled, err)
	}
	if filled, _ = c.FillLookupIndex(ctx, "dossier", "code", t0); filled {
		t.Fatal("filled twice")
	}
	if got := find("hs-dau"); !slices.Equal(got, []string{"motcua/K1=HS-Đầu"}) {
		t.Fatalf("after the fill: %v", got)
	}
	// A change moves the record in the index; a delete takes it out.
	commit(t, s, store.Batch{Source: "motcua", At: t0, Snapshot: []store.SnapshotEntry{entry("K1", "HS-Ba", false), entry("K2", "HS-Hai", true)}})
	if got := strings.Join(append(find("hs-dau"), find("hs-hai")...), ","); got != "" {
		t.Fatalf("stale index rows: %s", got)
	}
	if got := find("hs-ba"); !slices.Equal(got, []string{"motcua/K1=HS-Ba"}) {
		t.Fatalf("after the change: %v", got)
	}
	// Every record of a value, a page at a time, across sources, each once.
	commit(t, s, store.Batch{Source: "motcua", At: t0, Snapshot: []store.SnapshotEntry{entry("K3", "HS-Ba", false), entry("K4", "HS-Ba", false)}})
	commit(t, s, store.Batch{Source: "dvc", At: t0, Snapshot: []store.SnapshotEntry{entry("K0", "HS-Ba", false)}})
	var pages [][]string
	for src, key := "", ""; ; {
		hits, err := c.LookupRecordsAfter(ctx, "dossier", "code", "hs-ba", src, key, 2)
		if err != nil {
			t.Fatal(err)
		}
		var page []string
		for _, h := range hits {
			page = append(page, h.Source+"/"+h.Key)
		}
		pages = append(pages, page)
		if len(hits) < 2 {
			break
		}
		src, key = hits[len(hits)-1].Source, hits[len(hits)-1].Key
	}
	if got := fmt.Sprint(pages); got != "[[dvc/K0 motcua/K1] [motcua/K3 motcua/K4] []]" {
		t.Fatalf("pages = %s", got)
	}
}
