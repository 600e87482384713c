package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// The API's tests run a real daemon (config, SQLite store, mappings) whose
// sources are never read: the tests commit the events they need themselves.
func init() {
	pipeline.RegisterSource("apitest", pipeline.SourceSpec{
		Config: func() any { return &tableOptions{} },
		Build: func(_ context.Context, _ pipeline.Env, cfg any) (pipeline.Source, error) {
			tablesMu.Lock()
			defer tablesMu.Unlock()
			rows, ok := tables[cfg.(*tableOptions).Table]
			if !ok {
				return nil, errors.New("no rows for this source: the test commits its events directly")
			}
			return &tableSource{rows: rows}, nil
		},
	})
	pipeline.RegisterSink("apitest", pipeline.SinkSpec{
		Build: func(context.Context, pipeline.Env, any) (pipeline.Sink, error) { return nopSink{}, nil },
	})
}

type tableOptions struct {
	Table string `yaml:"table"`
}

// tables holds the rows of the apitest sources, by table name (one per test).
var (
	tablesMu sync.Mutex
	tables   = map[string][]pipeline.Row{}
)

// tableSource reads its rows in one batch; the position is the number read.
type tableSource struct{ rows []pipeline.Row }

func (s *tableSource) ReadBatch(_ context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	if string(pos) == "all" {
		return pos, true, nil
	}
	for _, r := range s.rows {
		if err := out.Emit(r); err != nil {
			return nil, false, err
		}
	}
	return pipeline.Position("all"), true, nil
}

func (s *tableSource) Close() error { return nil }

type nopSink struct{}

func (nopSink) Deliver(context.Context, *pipeline.Event) error { return nil }
func (nopSink) Close() error                                   { return nil }

// Tokens of the fixture, one per kind of holder.
const (
	viewerToken   = "viewer-token-000001"
	operatorToken = "operator-token-0001"
	adminToken    = "admin-token-0000001"
	districtToken = "district-token-0001" // operator of UBND-XA-LONGHAU only
	canDuocToken  = "canduoc-token-00001" // viewer of the district Cần Đước and its communes
)

// now is the fixture's clock: 10:00 on 27 November 2026, province time.
var now = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

type fixture struct {
	clock atomic.Int64 // unix nanoseconds; starts at now
	t     *testing.T
	d     *engine.Daemon
	srv   *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith gives source motcua the rows (nil: none, its events are
// committed by the test).
func newFixtureWith(t *testing.T, rows []pipeline.Row) *fixture {
	t.Helper()
	table := t.Name()
	if rows != nil {
		tablesMu.Lock()
		tables[table] = rows
		tablesMu.Unlock()
		t.Cleanup(func() { tablesMu.Lock(); delete(tables, table); tablesMu.Unlock() })
	}
	m, err := filepath.Abs("../../mappings/dossier-dvcqg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgText := `store: { driver: sqlite, path: state.db }
http:
  tokens:
    - { name: lanh-dao, token: ` + viewerToken + `, role: viewer }
    - { name: van-hanh, token: ` + operatorToken + `, role: operator }
    - { name: quan-tri, token: ` + adminToken + `, role: admin }
    - { name: xa-longhau, token: ` + districtToken + `, role: operator, agencies: [UBND-XA-LONGHAU] }
    - { name: huyen-canduoc, token: ` + canDuocToken + `, role: viewer, agencies: [HUYEN-CANDUOC] }
agencies:
  - { code: HUYEN-CANGIUOC, name: Huyện Cần Giuộc }
  - { code: UBND-HUYEN-CANGIUOC, name: UBND huyện Cần Giuộc, parent: HUYEN-CANGIUOC }
  - { code: UBND-XA-PHUOCLAI, name: UBND xã Phước Lại, parent: HUYEN-CANGIUOC }
  - { code: UBND-XA-LONGHAU, name: UBND xã Long Hậu, parent: HUYEN-CANGIUOC }
  - { code: HUYEN-CANDUOC, name: Huyện Cần Đước }
  - { code: UBND-XA-TANLAN, name: UBND xã Tân Lân, parent: HUYEN-CANDUOC }
sources:
  - { name: motcua, type: apitest, table: "` + table + `", mapping: ` + m + `, agency: UBND-HUYEN-CANGIUOC }
  - { name: motcua-longhau, type: apitest, mapping: ` + m + `, agency: UBND-XA-LONGHAU }
sinks:
  - { name: hook, type: apitest }
routes:
  - { to: [hook] }
`
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t}
	f.clock.Store(now.UnixNano())
	d, err := engine.New(t.Context(), cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clock: func() time.Time { return time.Unix(0, f.clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f.d = d
	mux := http.NewServeMux()
	New(d, Options{Answerer: storeAnswerer{d.Store.(citizens)}, StreamPoll: 20 * time.Millisecond, Heartbeat: time.Hour}).Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// dossier builds a dossier event as change detection would.
func dossier(source, code, agency string, version int64, status int, citizen, phone string) *pipeline.Event {
	typ := pipeline.EventUpdated
	if version == 1 {
		typ = pipeline.EventCreated
	}
	after := map[string]any{"code": code, "unit": agency, "status": status, "citizen": citizen, "phone": phone}
	return &pipeline.Event{ID: pipeline.EventID(source, "dossier", code, version, typ, ""), Type: typ, Source: source, Entity: "dossier",
		Key: code, Agency: agency, Version: version, After: after, DetectedAt: now}
}

// commit stores events of one source, routed to the hook sink, at the time given.
func (f *fixture) commit(source string, at time.Time, evs ...*pipeline.Event) {
	f.t.Helper()
	b := store.Batch{Source: source, At: at}
	for _, ev := range evs {
		b.Events = append(b.Events, store.OutboxEvent{Event: ev, Sinks: []string{"hook"}})
	}
	if err := f.d.Store.Commit(f.t.Context(), b); err != nil {
		f.t.Fatal(err)
	}
}

// seed stores the fixture's data set: three dossiers of Cần Giuộc's communes and
// district (source motcua) and two of Long Hậu (source motcua-longhau), a rule
// event with a message, and one dead letter per source.
func (f *fixture) seed() {
	f.t.Helper()
	f.commit("motcua", now.Add(-2*time.Hour),
		dossier("motcua", "CG-1", "UBND-XA-PHUOCLAI", 1, 2, "Nguyễn Văn An", "84912345678"),
		dossier("motcua", "CG-2", "UBND-HUYEN-CANGIUOC", 1, 4, "Trần Thị Bình", "84987654321"))
	f.commit("motcua-longhau", now.Add(-90*time.Minute),
		dossier("motcua-longhau", "LH-1", "UBND-XA-LONGHAU", 1, 2, "Lê Văn Cường", "84911222333"))
	done := dossier("motcua", "CG-1", "UBND-XA-PHUOCLAI", 2, 9, "Nguyễn Văn An", "84912345678")
	rule := *done
	rule.ID, rule.Type, rule.Rule = pipeline.RuleEventID(done.ID, "dossier.result_ready"), "rule", "dossier.result_ready"
	rule.Message = &pipeline.Message{Template: "result_ready", Text: "Hồ sơ CG-1 của Ông/Bà Nguyễn Văn An đã có kết quả.", Phone: "84912345678"}
	f.commit("motcua", now.Add(-time.Hour), done, &rule)
	f.commit("motcua-longhau", now.Add(-30*time.Minute),
		dossier("motcua-longhau", "LH-2", "UBND-XA-LONGHAU", 1, 5, "Phạm Thị Dung", "84933444555"))
	// Dead letters: CG-2's created event and LH-1's.
	f.deadLetter("CG-2")
	f.deadLetter("LH-1")
}

// deadLetter moves the outbox row of the record's first event to dead letters.
func (f *fixture) deadLetter(key string) {
	f.t.Helper()
	ctx := f.t.Context()
	pending, err := f.d.Store.Pending(ctx, "hook", now, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, p := range pending {
		if p.Event.Key == key {
			if err := f.d.Store.Dead(ctx, "hook", p.Seq, 3, "HTTP 422 from the receiver: phone 84912345678 refused", now, store.OnDeadHold); err != nil {
				f.t.Fatal(err)
			}
			return
		}
	}
	f.t.Fatalf("no pending event of %s", key)
}

// call makes a request with a bearer token ("" none) and decodes a JSON answer.
func (f *fixture) call(method, path, token string, body any, out any) int {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

type eventsPage struct {
	Events []eventJSON `json:"events"`
	Next   string      `json:"next"`
}

func keysOf(evs []eventJSON) []string {
	var out []string
	for _, e := range evs {
		k := e.Key + ":" + e.Type
		if e.Rule != "" {
			k = e.Key + ":" + e.Rule
		}
		out = append(out, k)
	}
	return out
}

// citizens is the store's side of citizens' feedback (migration 0009).
type citizens interface {
	AddFeedback(ctx context.Context, f store.Feedback, year int, source string, emit store.EmitFunc) (store.Feedback, bool, error)
	AnswerFeedback(ctx context.Context, ref, answer, by string, at time.Time, source string, emit store.EmitFunc) (store.Feedback, error)
}

// feedback stores citizens' feedback as the Zalo webhook does; references are
// numbered in the order given (GY-2026-000001, …).
func (f *fixture) feedback(items ...Feedback) {
	f.t.Helper()
	st := f.d.Store.(citizens)
	for i, it := range items {
		_, _, err := st.AddFeedback(f.t.Context(), store.Feedback{Origin: fmt.Sprintf("msg-%d", i), OAID: "oa", UserID: it.UserID,
			ReplyTo: fmt.Sprintf("msg-%d", i), Agency: it.Agency, Text: it.Text, CreatedAt: it.CreatedAt}, 2026, "zalo",
			func(store.Feedback) []store.OutboxEvent { return nil })
		if err != nil {
			f.t.Fatal(err)
		}
	}
}

// storeAnswerer answers as the zalo sink does: the answer and the reply to the
// citizen (an event for the hook sink here) in one transaction.
type storeAnswerer struct{ st citizens }

func (a storeAnswerer) AnswerFeedback(ctx context.Context, ref, answer, by string) (store.Feedback, error) {
	return a.st.AnswerFeedback(ctx, ref, answer, by, now, "zalo", func(f store.Feedback) []store.OutboxEvent {
		ev := &pipeline.Event{ID: "answer-" + f.Ref, Type: "rule", Rule: "feedback.answer", Source: "zalo", Entity: "reply", Key: f.Ref,
			Agency: f.Agency, Version: 1, Message: &pipeline.Message{Text: f.Answer, UserID: f.UserID}, DetectedAt: now}
		return []store.OutboxEvent{{Event: ev, Sinks: []string{"hook"}}}
	})
}
