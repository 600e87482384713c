package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/announce"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func TestEveryRouteIsInTheOpenAPIDocument(t *testing.T) {
	f := newFixture(t)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if code := f.call("GET", "/api/v1/openapi.json", "", nil, &doc); code != http.StatusOK || doc.OpenAPI == "" {
		t.Fatalf("GET /api/v1/openapi.json = %d %+v", code, doc.OpenAPI)
	}
	// What the daemon mounts under /api/v1: this package's routes and the
	// announcements' (pipeline/announce, any token: the regulation decides).
	// cmd/egov-bridge checks the same document against the daemon's own mux.
	served := map[string]access.Role{}
	for _, r := range New(f.d, Options{}).routes {
		served[r.method+" "+r.path] = r.role
	}
	for _, r := range announce.Routes() {
		served[r] = access.Viewer
	}
	if len(served) < 25 {
		t.Fatalf("only %d routes served: %v", len(served), served)
	}
	for r, role := range served {
		method, path, _ := strings.Cut(r, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s is served but not documented", r)
			continue
		}
		if role != "" && op["x-role"] != string(role) {
			t.Errorf("%s: documented role %v, served with %s", r, op["x-role"], role)
		}
		if _, ok := op["responses"].(map[string]any)["200"]; !ok && method == "GET" {
			t.Errorf("%s: no 200 answer documented", r)
		}
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			if _, ok := served[strings.ToUpper(m)+" "+path]; !ok {
				t.Errorf("%s %s is documented but not served", strings.ToUpper(m), path)
			}
		}
	}
	// Every reference points at a component the document has.
	var raw any
	if err := json.Unmarshal(openAPIDoc, &raw); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				kind, name, _ := strings.Cut(strings.TrimPrefix(ref, "#/components/"), "/")
				comps, _ := raw.(map[string]any)["components"].(map[string]any)[kind].(map[string]any)
				if _, ok := comps[name]; !ok {
					t.Errorf("$ref %s points at nothing", ref)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(raw)
}

func TestEveryRouteButTheDocumentNeedsAToken(t *testing.T) {
	f := newFixture(t)
	for _, r := range f.routes() {
		path := strings.NewReplacer("{name}", "motcua", "{ref}", "GY-2026-000001").Replace(r.path)
		for _, auth := range []string{"", "Bearer not-a-token-of-ours", "Basic " + viewerToken} {
			req, _ := http.NewRequest(r.method, f.srv.URL+path, strings.NewReader("{}"))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %q = %d, want 401 with WWW-Authenticate", r.method, path, auth, resp.StatusCode)
			}
		}
	}
	if code := f.call("GET", "/api/v1/no-such-thing", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("an unknown path without a token = %d, want 401", code)
	}
	if code := f.call("GET", "/api/v1/no-such-thing", viewerToken, nil, nil); code != http.StatusNotFound {
		t.Errorf("an unknown path with a token = %d, want 404", code)
	}
}

func (f *fixture) routes() []route {
	var out []route
	for _, r := range New(f.d, Options{}).routes {
		if r.role != "" {
			out = append(out, r)
		}
	}
	return out
}

func TestRolesGateTheActions(t *testing.T) {
	f := newFixture(t)
	f.seed()
	f.feedback(Feedback{Agency: "UBND-XA-LONGHAU", Text: "Đường hỏng", CreatedAt: now})
	answer := map[string]string{"text": "Đã chuyển xã xử lý."}
	for _, c := range []struct {
		method, path, token string
		body                any
		want                int
	}{
		{"POST", "/api/v1/dead-letters/replay", viewerToken, map[string]any{"sink": "hook"}, http.StatusForbidden},
		{"POST", "/api/v1/dead-letters/dismiss", viewerToken, map[string]any{"sink": "hook"}, http.StatusForbidden},
		{"POST", "/api/v1/sources/motcua/reset-cursor", viewerToken, nil, http.StatusForbidden},
		{"POST", "/api/v1/feedback/GY-2026-000001/answer", viewerToken, answer, http.StatusForbidden},
		{"GET", "/api/v1/audit", viewerToken, nil, http.StatusForbidden},
		{"GET", "/api/v1/audit", operatorToken, nil, http.StatusForbidden},
		{"GET", "/api/v1/events", viewerToken, nil, http.StatusOK},
		{"POST", "/api/v1/sources/motcua/reset-cursor", operatorToken, nil, http.StatusOK},
		{"POST", "/api/v1/feedback/GY-2026-000001/answer", operatorToken, answer, http.StatusOK},
		{"GET", "/api/v1/audit", adminToken, nil, http.StatusOK},
	} {
		if got := f.call(c.method, c.path, c.token, c.body, nil); got != c.want {
			t.Errorf("%s %s as %s = %d, want %d", c.method, c.path, c.token, got, c.want)
		}
	}
	if dead := f.deadCount(t); dead != 2 {
		t.Errorf("a viewer's refused replay changed the dead letters: %d left, want 2", dead)
	}
}

func (f *fixture) deadCount(t *testing.T) int {
	t.Helper()
	dl, err := f.d.Store.DeadLetters(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dl {
		if d.State.Replayable() {
			n++
		}
	}
	return n
}

func TestEventListPagesNewestFirstAndFilters(t *testing.T) {
	f := newFixture(t)
	f.seed()
	var page eventsPage
	if code := f.call("GET", "/api/v1/events?limit=2", viewerToken, nil, &page); code != http.StatusOK {
		t.Fatalf("GET /api/v1/events = %d", code)
	}
	if got, want := keysOf(page.Events), []string{"LH-2:created", "CG-1:dossier.result_ready"}; !slices.Equal(got, want) {
		t.Fatalf("first page = %v, want %v", got, want)
	}
	var all []string
	all = append(all, keysOf(page.Events)...)
	for page.Next != "" {
		next := page.Next
		page = eventsPage{}
		if code := f.call("GET", next, viewerToken, nil, &page); code != http.StatusOK {
			t.Fatalf("GET %s = %d", next, code)
		}
		all = append(all, keysOf(page.Events)...)
	}
	if want := []string{"LH-2:created", "CG-1:dossier.result_ready", "CG-1:updated", "LH-1:created", "CG-2:created", "CG-1:created"}; !slices.Equal(all, want) {
		t.Fatalf("paged through %v, want %v", all, want)
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"agency=UBND-XA-LONGHAU", []string{"LH-2:created", "LH-1:created"}},
		{"type=dossier.result_ready", []string{"CG-1:dossier.result_ready"}},
		{"type=created&agency=UBND-XA-PHUOCLAI", []string{"CG-1:created"}},
		{"since=2026-11-27T09:15&until=2026-11-27T09:45", []string{"LH-2:created"}}, // 02:15-02:45 UTC: only the 02:30 commit
		{"since=" + now.Add(-70*time.Minute).Format(time.RFC3339), []string{"LH-2:created", "CG-1:dossier.result_ready", "CG-1:updated"}},
		{"entity=outage", nil},
	} {
		page = eventsPage{}
		if code := f.call("GET", "/api/v1/events?"+c.query, viewerToken, nil, &page); code != http.StatusOK {
			t.Fatalf("GET ?%s = %d", c.query, code)
		}
		if got := keysOf(page.Events); !slices.Equal(got, c.want) {
			t.Errorf("?%s = %v, want %v", c.query, got, c.want)
		}
	}
	for _, bad := range []string{"limit=0", "limit=abc", "since=yesterday", "before=-1"} {
		if code := f.call("GET", "/api/v1/events?"+bad, viewerToken, nil, nil); code != http.StatusBadRequest {
			t.Errorf("?%s = %d, want 400", bad, code)
		}
	}
}

func TestCitizenDataIsMaskedUnlessTheRoleAllowsIt(t *testing.T) {
	f := newFixture(t)
	f.seed()
	f.feedback(Feedback{Agency: "UBND-XA-LONGHAU", UserID: "4455667788990011", Text: "Gọi tôi số 0912 345 678", CreatedAt: now})
	get := func(token string) (eventJSON, Feedback) {
		var page eventsPage
		f.call("GET", "/api/v1/events?type=dossier.result_ready", token, nil, &page)
		var fb struct{ Feedback []Feedback }
		f.call("GET", "/api/v1/feedback", token, nil, &fb)
		if len(page.Events) != 1 || len(fb.Feedback) != 1 {
			t.Fatalf("as %s: %d events, %d feedback", token, len(page.Events), len(fb.Feedback))
		}
		return page.Events[0], fb.Feedback[0]
	}
	ev, fb := get(viewerToken)
	if ev.After["citizen"] != "N*** V** A*" || ev.After["phone"] != "84912***678" || ev.Message.Phone != "84912***678" ||
		ev.Message.Text != "Hồ sơ CG-1 của Ông/Bà N*** V** A* đã có kết quả." {
		t.Errorf("a viewer sees citizen data: after %v, message %+v", ev.After, ev.Message)
	}
	if fb.Text != "Gọi tôi số 84912***678" || strings.Contains(fb.UserID, "44556677") {
		t.Errorf("a viewer sees the feedback's phone or user: %+v", fb)
	}
	var dl struct {
		DeadLetters []deadLetterJSON `json:"dead_letters"`
	}
	f.call("GET", "/api/v1/dead-letters", viewerToken, nil, &dl)
	for _, d := range dl.DeadLetters {
		if strings.Contains(d.Reason, "84912345678") || d.Event.After["citizen"] == "Trần Thị Bình" {
			t.Errorf("a viewer sees citizen data in a dead letter: %q %v", d.Reason, d.Event.After)
		}
	}
	ev, fb = get(adminToken)
	if ev.After["citizen"] != "Nguyễn Văn An" || ev.Message.Phone != "84912345678" || !strings.Contains(ev.Message.Text, "Nguyễn Văn An") {
		t.Errorf("an admin does not see the citizen: after %v, message %+v", ev.After, ev.Message)
	}
	if fb.Text != "Gọi tôi số 0912 345 678" || fb.UserID != "4455667788990011" {
		t.Errorf("an admin sees masked feedback: %+v", fb)
	}
}

func TestADistrictTokenNeverSeesAnotherDistrict(t *testing.T) {
	f := newFixture(t)
	f.seed()
	f.feedback(
		Feedback{Agency: "UBND-XA-LONGHAU", Text: "Đèn đường hỏng", CreatedAt: now},
		Feedback{Agency: "UBND-XA-PHUOCLAI", Text: "Rác chưa thu", CreatedAt: now},
	)
	// Events: only Long Hậu's, whatever the filter asks for.
	for _, q := range []string{"", "?agency=UBND-XA-PHUOCLAI", "?type=dossier.result_ready", "?agency=UBND-XA-LONGHAU"} {
		var page eventsPage
		f.call("GET", "/api/v1/events"+q, districtToken, nil, &page)
		for _, e := range page.Events {
			if e.Agency != "UBND-XA-LONGHAU" {
				t.Errorf("events%s shows %s of %s to the district", q, e.Key, e.Agency)
			}
		}
		if q == "" && len(page.Events) != 2 {
			t.Errorf("the district sees %v, want its 2 events", keysOf(page.Events))
		}
	}
	// Feedback.
	var fb struct {
		Feedback []Feedback
		Open     int
	}
	f.call("GET", "/api/v1/feedback", districtToken, nil, &fb)
	if len(fb.Feedback) != 1 || fb.Feedback[0].Ref != "GY-2026-000001" || fb.Open != 1 {
		t.Errorf("the district's feedback inbox = %+v", fb)
	}
	if code := f.call("POST", "/api/v1/feedback/GY-2026-000002/answer", districtToken, map[string]string{"text": "x"}, nil); code != http.StatusNotFound {
		t.Errorf("answering another district's feedback = %d, want 404", code)
	}
	// Status: its own source only.
	var st struct {
		Sources []sourceStatus
	}
	f.call("GET", "/api/v1/status", districtToken, nil, &st)
	if len(st.Sources) != 1 || st.Sources[0].Name != "motcua-longhau" {
		t.Errorf("the district's sources = %+v", st.Sources)
	}
	// Dead letters: sees and acts on its own only.
	var dl struct {
		DeadLetters []deadLetterJSON `json:"dead_letters"`
	}
	f.call("GET", "/api/v1/dead-letters", districtToken, nil, &dl)
	if len(dl.DeadLetters) != 1 || dl.DeadLetters[0].Event.Key != "LH-1" {
		t.Fatalf("the district's dead letters = %+v", dl.DeadLetters)
	}
	all, _ := f.d.Store.DeadLetters(t.Context(), "", 0)
	var other int64
	for _, d := range all {
		if d.Event.Key == "CG-2" {
			other = d.ID
		}
	}
	var res struct {
		Replayed int     `json:"replayed"`
		NotFound []int64 `json:"not_found"`
	}
	f.call("POST", "/api/v1/dead-letters/replay", districtToken, map[string]any{"ids": []int64{other}}, &res)
	if res.Replayed != 0 || !slices.Equal(res.NotFound, []int64{other}) {
		t.Errorf("replaying another district's dead letter: %+v", res)
	}
	res = struct {
		Replayed int     `json:"replayed"`
		NotFound []int64 `json:"not_found"`
	}{}
	f.call("POST", "/api/v1/dead-letters/replay", districtToken, map[string]any{"sink": "hook"}, &res)
	if res.Replayed != 1 || f.deadCount(t) != 1 {
		t.Errorf("replaying all of the sink as the district replayed %d, %d dead letters left; want 1 and 1", res.Replayed, f.deadCount(t))
	}
	if code := f.call("POST", "/api/v1/sources/motcua/reset-cursor", districtToken, nil, nil); code != http.StatusNotFound {
		t.Errorf("resetting another district's source = %d, want 404", code)
	}
}

func TestOperatorActionsAreDoneAndAuditedWithTheRole(t *testing.T) {
	f := newFixture(t)
	f.seed()
	ctx := t.Context()
	all, _ := f.d.Store.DeadLetters(ctx, "", 0)
	ids := map[string]int64{}
	for _, d := range all {
		ids[d.Event.Key] = d.ID
	}
	var rep map[string]any
	if code := f.call("POST", "/api/v1/dead-letters/replay", operatorToken, map[string]any{"ids": []int64{ids["CG-2"], 999}}, &rep); code != http.StatusOK {
		t.Fatalf("replay = %d", code)
	}
	if rep["replayed"] != 1.0 || len(rep["not_found"].([]any)) != 1 {
		t.Errorf("replay answered %v", rep)
	}
	pending, _ := f.d.Store.Pending(ctx, "hook", now, 0)
	if !slices.ContainsFunc(pending, func(p store.Pending) bool { return p.Event.Key == "CG-2" }) {
		t.Error("the replayed event is not back in the outbox")
	}
	var dis map[string]any
	f.call("POST", "/api/v1/dead-letters/dismiss", operatorToken, map[string]any{"ids": []int64{ids["LH-1"]}}, &dis)
	if dis["dismissed"] != 1.0 || f.deadCount(t) != 0 {
		t.Errorf("dismiss answered %v, %d replayable left", dis, f.deadCount(t))
	}
	if err := f.d.Store.Commit(ctx, store.Batch{Source: "motcua", Position: []byte("42"), At: now}); err != nil {
		t.Fatal(err)
	}
	if code := f.call("POST", "/api/v1/sources/motcua/reset-cursor", operatorToken, nil, nil); code != http.StatusOK {
		t.Fatalf("reset-cursor = %d", code)
	}
	if c, _ := f.d.Store.Cursor(ctx, "motcua"); c.Position != nil {
		t.Errorf("the cursor is still at %q", c.Position)
	}
	if code := f.call("POST", "/api/v1/sources/nope/reset-cursor", operatorToken, nil, nil); code != http.StatusNotFound {
		t.Errorf("reset-cursor of an unknown source = %d", code)
	}
	if code := f.call("POST", "/api/v1/dead-letters/replay", operatorToken, map[string]any{}, nil); code != http.StatusBadRequest {
		t.Errorf("replay naming nothing = %d, want 400", code)
	}
	var audit struct {
		Entries []struct{ Actor, Action, Detail string }
	}
	f.call("GET", "/api/v1/audit", adminToken, nil, &audit)
	var got []string
	for _, e := range audit.Entries {
		got = append(got, e.Actor+" "+e.Action)
	}
	want := []string{"api:van-hanh (operator) reset-cursor", "api:van-hanh (operator) dismiss", "api:van-hanh (operator) replay"}
	if !slices.Equal(got, want) {
		t.Errorf("audit log = %v, want %v", got, want)
	}
}

func TestFeedbackIsListedAndAnswered(t *testing.T) {
	f := newFixture(t)
	f.feedback(
		Feedback{Agency: "UBND-XA-LONGHAU", Text: "Đèn đường hỏng", CreatedAt: now.Add(-time.Hour)},
		Feedback{Agency: "UBND-XA-PHUOCLAI", Text: "Rác chưa thu", CreatedAt: now.Add(-time.Minute)},
	)
	var answered Feedback
	if code := f.call("POST", "/api/v1/feedback/GY-2026-000001/answer", operatorToken, map[string]string{"text": "  Xã đã sửa đèn.  "}, &answered); code != http.StatusOK {
		t.Fatalf("answer = %d", code)
	}
	if answered.Answer != "Xã đã sửa đèn." || answered.AnsweredBy != "api:van-hanh" {
		t.Errorf("answered %+v", answered)
	}
	// The reply to the citizen is queued with the answer, in the same transaction.
	pending, _ := f.d.Store.Pending(t.Context(), "hook", now, 0)
	if !slices.ContainsFunc(pending, func(p store.Pending) bool {
		return p.Event.Key == "GY-2026-000001" && p.Event.Message != nil && p.Event.Message.Text == "Xã đã sửa đèn."
	}) {
		t.Errorf("no reply to the citizen was queued: %+v", pending)
	}
	for _, c := range []struct {
		query string
		want  []string
		open  int
	}{
		{"", []string{"GY-2026-000002", "GY-2026-000001"}, 1},
		{"?status=open", []string{"GY-2026-000002"}, 1},
		{"?status=answered", []string{"GY-2026-000001"}, 1},
		{"?agency=UBND-XA-LONGHAU", []string{"GY-2026-000001"}, 0},
	} {
		var fb struct {
			Feedback []Feedback
			Open     int
		}
		f.call("GET", "/api/v1/feedback"+c.query, viewerToken, nil, &fb)
		var refs []string
		for _, x := range fb.Feedback {
			refs = append(refs, x.Ref)
		}
		if !slices.Equal(refs, c.want) || fb.Open != c.open {
			t.Errorf("feedback%s = %v (%d open), want %v (%d open)", c.query, refs, fb.Open, c.want, c.open)
		}
	}
	// The steering figures count it: two received, one answered.
	var fig struct {
		Feedback *struct{ Received, Answered int }
	}
	f.call("GET", "/api/v1/figures", viewerToken, nil, &fig)
	if fig.Feedback == nil || fig.Feedback.Received != 2 || fig.Feedback.Answered != 1 {
		t.Errorf("figures' feedback = %+v, want 2 received, 1 answered", fig.Feedback)
	}
	for _, text := range []string{"", "   ", strings.Repeat("a", 2001)} {
		if code := f.call("POST", "/api/v1/feedback/GY-2026-000002/answer", operatorToken, map[string]string{"text": text}, nil); code != http.StatusBadRequest {
			t.Errorf("answer %d characters = %d, want 400", len(text), code)
		}
	}
	if code := f.call("POST", "/api/v1/feedback/GY-2026-999999/answer", operatorToken, map[string]string{"text": "x"}, nil); code != http.StatusNotFound {
		t.Errorf("answer to an unknown reference = %d, want 404", code)
	}
}

func TestStatusShowsSourcesAndSinks(t *testing.T) {
	f := newFixture(t)
	f.seed()
	if err := f.d.Store.SetSourceError(t.Context(), "motcua-longhau", "connection refused", now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Sources []sourceStatus
		Sinks   []sinkStatus
	}
	if code := f.call("GET", "/api/v1/status", viewerToken, nil, &st); code != http.StatusOK {
		t.Fatalf("status = %d", code)
	}
	if len(st.Sources) != 2 || len(st.Sinks) != 1 {
		t.Fatalf("status = %+v", st)
	}
	cg, lh := st.Sources[0], st.Sources[1]
	if !cg.OK || cg.AgeSeconds != 3600 || lh.OK || lh.LastError != "connection refused" {
		t.Errorf("sources = %+v", st.Sources)
	}
	// The hook sink: 6 events committed, 2 of them dead (holding their records).
	if s := st.Sinks[0]; s.Name != "hook" || s.Outbox != 4 || s.DeadLetters != 2 || s.HeldRecords != 2 || s.OK {
		t.Errorf("sink = %+v", s)
	}
}

func TestEventStreamSendsNewEventsAndResumes(t *testing.T) {
	f := newFixture(t)
	f.seed()
	open := func(header string) (*bufio.Scanner, func()) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/api/v1/events/stream?agency=UBND-XA-LONGHAU", nil)
		req.Header.Set("Authorization", "Bearer "+viewerToken)
		if header != "" {
			req.Header.Set("Last-Event-ID", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("stream = %d %s", resp.StatusCode, ct)
		}
		return bufio.NewScanner(resp.Body), func() { resp.Body.Close() }
	}
	next := func(sc *bufio.Scanner) (id string, ev eventJSON) {
		t.Helper()
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
					t.Fatal(err)
				}
				return id, ev
			}
		}
		t.Fatalf("the stream ended: %v", sc.Err())
		return
	}
	sc, closeStream := open("")
	// Only events committed after it opened, of its agency.
	f.commit("motcua", now, dossier("motcua", "CG-9", "UBND-XA-PHUOCLAI", 1, 2, "Võ Văn Em", ""))
	f.commit("motcua-longhau", now, dossier("motcua-longhau", "LH-9", "UBND-XA-LONGHAU", 1, 2, "Đỗ Thị Gấm", ""))
	id, ev := next(sc)
	if ev.Key != "LH-9" || ev.After["citizen"] != "Đ* T** G**" {
		t.Fatalf("first streamed event = %s %v", ev.Key, ev.After)
	}
	closeStream()
	f.commit("motcua-longhau", now, dossier("motcua-longhau", "LH-10", "UBND-XA-LONGHAU", 1, 2, "x", ""))
	sc, closeStream = open(id) // a browser reconnecting sends the last id it saw
	defer closeStream()
	if _, ev := next(sc); ev.Key != "LH-10" {
		t.Fatalf("after reconnecting: %s, want LH-10 (committed while disconnected)", ev.Key)
	}
}

func TestCookieSessionsNeedTheCSRFValueToChangeAnything(t *testing.T) {
	f := newFixture(t)
	f.seed()
	do := func(method, path string, header map[string]string) (int, map[string]any) {
		req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(`{"sink":"hook"}`))
		req.AddCookie(&http.Cookie{Name: access.CookieName, Value: operatorToken})
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, sess := do("GET", "/api/v1/session", nil)
	csrf, _ := sess["csrf_token"].(string)
	if code != http.StatusOK || sess["role"] != "operator" || csrf == "" {
		t.Fatalf("session over the cookie = %d %v", code, sess)
	}
	for _, c := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no CSRF value", nil, http.StatusForbidden},
		{"a wrong CSRF value", map[string]string{access.CSRFHeader: "00"}, http.StatusForbidden},
		{"another site's page", map[string]string{access.CSRFHeader: csrf, "Origin": "https://evil.example"}, http.StatusForbidden},
		{"the page itself", map[string]string{access.CSRFHeader: csrf, "Origin": f.srv.URL}, http.StatusOK},
	} {
		if code, _ := do("POST", "/api/v1/dead-letters/dismiss", c.header); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
	// A bearer token carries no ambient authority: no CSRF value needed.
	var sessB map[string]any
	f.call("GET", "/api/v1/session", operatorToken, nil, &sessB)
	if _, ok := sessB["csrf_token"]; ok {
		t.Error("a bearer session was given a CSRF value")
	}
}

func TestAnswersWithoutAZaloSinkAreRefusedNotLost(t *testing.T) {
	f := newFixture(t)
	f.feedback(Feedback{Agency: "UBND-XA-LONGHAU", Text: "Đèn đường hỏng", CreatedAt: now})
	mux := http.NewServeMux()
	New(f.d, Options{}).Register(mux) // no answerer: the config has no zalo sink with citizens
	f.srv.Config.Handler = mux
	if code := f.call("POST", "/api/v1/feedback/GY-2026-000001/answer", operatorToken, map[string]string{"text": "Đã sửa."}, nil); code != http.StatusConflict {
		t.Errorf("answer without a zalo sink = %d, want 409", code)
	}
	var fb struct{ Feedback []Feedback }
	f.call("GET", "/api/v1/feedback", viewerToken, nil, &fb)
	if len(fb.Feedback) != 1 || fb.Feedback[0].Answer != "" {
		t.Errorf("the refused answer was stored: %+v", fb.Feedback)
	}
}
