package zalo

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
)

const officialsMapping = `entity: dossier
key: [code]
agency_field: unit
fields:
  code:   { required: true }
  unit:   { required: true }
  status: { type: int, required: true }
  due:    { type: time }
rules:
  - name: deadline.due_soon
    at: due - 2d
    when: 'after.status in [2, 4, 5, 6]'
    notify: { officials: true, template: due_soon }
templates:
  due_soon: "Hồ sơ {{.code}} sắp đến hạn trả kết quả ({{date .due}})."
`

// officialsAgencies: a district with one official; commune A with two (one a
// follower, one reached by phone only); commune B with its own; commune C with
// none (its alerts go to the district).
var officialsAgencies = []figures.Agency{
	{Code: "HUYEN", Name: "Huyện Cần Giuộc", Officials: []figures.Official{{Name: "Chánh VP huyện", UserID: "u-huyen"}}},
	{Code: "XA-A", Name: "UBND xã Phước Lại", Parent: "HUYEN", Officials: []figures.Official{
		{Name: "PCT xã A", UserID: "u-xa-a"},
		{Name: "Công chức một cửa xã A", Phone: "0912 345 678"},
	}},
	{Code: "XA-B", Name: "UBND xã Long Hậu", Parent: "HUYEN", Officials: []figures.Official{{Name: "PCT xã B", UserID: "u-xa-b"}}},
	{Code: "XA-C", Name: "UBND xã Mỹ Lộc", Parent: "HUYEN"},
}

// rowSource hands out its rows on every read (the hash diff drops what did not change).
type rowSource struct {
	mu   sync.Mutex
	rows []pipeline.Row
}

func (s *rowSource) put(r pipeline.Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, r)
}

func (s *rowSource) ReadBatch(_ context.Context, _ pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	s.mu.Lock()
	rows := slices.Clone(s.rows)
	s.mu.Unlock()
	for _, r := range rows {
		if err := out.Emit(r); err != nil {
			return nil, false, err
		}
	}
	return pipeline.Position("read"), true, nil
}

func (s *rowSource) Close() error { return nil }

// officialsRig is a source's job firing deadline timers, routed to a zalo sink
// (against the fake Zalo) that knows the agencies' officials.
type officialsRig struct {
	*harness
	src  *rowSource
	job  *engine.Job
	disp *engine.Dispatcher
}

func newOfficialsRig(t *testing.T) *officialsRig {
	t.Helper()
	h := newHarness(t, nil)
	o := testOptions(h.fake)
	o.Rules = map[string]RuleOptions{"deadline.due_soon": {ZNSTemplateID: "tpl-due-soon", TemplateData: map[string]string{"ma_ho_so": "code"}}}
	env := pipeline.Env{Name: "zalo", Clock: h.clock.now, Zone: hcm, State: h.st, Logger: slog.New(slog.NewTextHandler(h.logs, nil)),
		Officials: figures.NewDirectory(officialsAgencies).Officials}
	s, err := New(env, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h.sink = s
	h.fake.follow("u-huyen", "u-xa-a", "u-xa-b")

	m, err := mapping.Compile("officials.yaml", []byte(officialsMapping), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.SetClock(h.clock.now)
	log := slog.New(slog.DiscardHandler)
	metrics := engine.NewMetrics()
	r := &officialsRig{harness: h, src: &rowSource{}}
	r.job = &engine.Job{Name: "motcua", Source: r.src, Map: m, Agency: "HUYEN", Store: h.st, Zone: hcm,
		Router: engine.NewRouter([]engine.Route{{Events: []string{"deadline.*"}, To: []string{"zalo"}}}),
		Clock:  h.clock.now, Logger: log, Metrics: metrics}
	r.disp = &engine.Dispatcher{Store: h.st, Sinks: map[string]pipeline.Sink{"zalo": s}, Clock: h.clock.now, Logger: log, Metrics: metrics,
		Default: engine.DeliveryConfig{MaxAge: config.Duration(time.Hour), BackoffMin: config.Duration(time.Second),
			BackoffMax: config.Duration(time.Minute), Batch: 10, Concurrency: 1}}
	r.sync() // the first sync: nothing yet
	return r
}

func (r *officialsRig) sync() {
	r.t.Helper()
	if _, err := r.job.Run(r.t.Context()); err != nil {
		r.t.Fatal(err)
	}
}

// fire evaluates the due timers, delivers what they queued, and returns how many
// rule events fired.
func (r *officialsRig) fire() int {
	r.t.Helper()
	st, err := r.job.FireTimers(r.t.Context())
	if err != nil {
		r.t.Fatal(err)
	}
	r.drain()
	return st.Fired
}

// drain delivers what is due; it returns how many events wait for a retry.
func (r *officialsRig) drain() int {
	r.t.Helper()
	waiting, err := r.disp.Drain(r.t.Context())
	if err != nil && !errors.Is(err, engine.ErrUndelivered) {
		r.t.Fatal(err)
	}
	return waiting
}

// recipients lists who the fake Zalo got messages for: user ids (OA) and
// phones (ZNS), sorted.
func (r *officialsRig) recipients() []string {
	msgs, _, _ := r.fake.snapshot()
	var out []string
	for _, m := range msgs {
		switch {
		case m.UserID != "":
			out = append(out, "oa:"+m.UserID)
		case m.Phone != "":
			out = append(out, "zns:"+m.Phone)
		}
	}
	sort.Strings(out)
	return out
}

func dossierRow(code, unit string, due time.Time) pipeline.Row {
	return pipeline.Row{"code": code, "unit": unit, "status": "4", "due": due.UTC().Format(time.RFC3339)}
}

func TestDueSoonReachesEachOfficialOfTheDossiersAgencyOnce(t *testing.T) {
	r := newOfficialsRig(t)
	r.src.put(dossierRow("HS-A", "XA-A", day.Add(49*time.Hour)))
	r.src.put(dossierRow("HS-B", "XA-B", day.Add(200*time.Hour))) // not due for a week
	r.sync()
	if n := r.fire(); n != 0 || len(r.recipients()) != 0 {
		t.Fatalf("due in 49h fired %d events, sent %v; want nothing yet", n, r.recipients())
	}

	r.clock.add(90 * time.Minute) // HS-A is now due within two days
	if n := r.fire(); n != 1 {
		t.Fatalf("fired %d events, want 1 (due soon of HS-A)", n)
	}
	// One message per official of XA-A: the follower by OA, the other by ZNS to
	// her phone; nothing to XA-B's official nor to the district's.
	want := []string{"oa:u-xa-a", "zns:84912345678"}
	if got := r.recipients(); !slices.Equal(got, want) {
		t.Fatalf("Zalo got messages for %v, want %v", got, want)
	}
	msgs, _, _ := r.fake.snapshot()
	for _, m := range msgs {
		if m.Path == pathText && m.Text != "Hồ sơ HS-A sắp đến hạn trả kết quả (12/03/2026)." {
			t.Errorf("OA text = %q", m.Text)
		}
		if m.Path == pathZNS && (m.TemplateID != "tpl-due-soon" || m.Data["ma_ho_so"] != "HS-A") {
			t.Errorf("ZNS = %s %v", m.TemplateID, m.Data)
		}
	}

	// Later passes and an unchanged sync send nothing again.
	r.clock.add(time.Hour)
	r.sync()
	if n := r.fire(); n != 0 {
		t.Errorf("fired %d events again; a threshold fires once", n)
	}
	if got := r.recipients(); !slices.Equal(got, want) {
		t.Errorf("after another pass Zalo got messages for %v, want still %v", got, want)
	}
	// The officials' contacts do not reach the log.
	for _, secret := range []string{"u-xa-a", "84912345678", "0912 345 678"} {
		if logs := r.logs.String(); strings.Contains(logs, secret) {
			t.Errorf("the log shows an official's contact %q:\n%s", secret, logs)
		}
	}
}

func TestACommuneWithoutOfficialsAlertsItsDistrictsOfficial(t *testing.T) {
	r := newOfficialsRig(t)
	r.src.put(dossierRow("HS-C", "XA-C", day.Add(49*time.Hour)))
	r.sync()
	r.clock.add(2 * time.Hour)
	if n := r.fire(); n != 1 {
		t.Fatalf("fired %d events, want 1", n)
	}
	if got, want := r.recipients(), []string{"oa:u-huyen"}; !slices.Equal(got, want) {
		t.Errorf("Zalo got messages for %v, want %v (XA-C has no officials: its district's hears it)", got, want)
	}
}

func TestAnOfficialsAlertWaitsForTheEndOfQuietHours(t *testing.T) {
	r := newOfficialsRig(t)
	night := time.Date(2026, 3, 10, 23, 0, 0, 0, hcm)
	r.src.put(dossierRow("HS-A", "XA-A", night.Add(48*time.Hour+30*time.Minute)))
	r.sync()
	r.clock.set(night.Add(time.Hour))
	if n := r.fire(); n != 1 {
		t.Fatalf("fired %d events, want 1", n)
	}
	if got := r.recipients(); len(got) != 0 {
		t.Fatalf("at midnight Zalo got messages for %v; an official's alert waits for 06:00", got)
	}
	r.clock.set(time.Date(2026, 3, 11, 6, 1, 0, 0, hcm))
	if waiting := r.drain(); waiting != 0 {
		t.Errorf("after 06:00 %d events still wait", waiting)
	}
	if got, want := r.recipients(), []string{"oa:u-xa-a", "zns:84912345678"}; !slices.Equal(got, want) {
		t.Errorf("after 06:00 Zalo got messages for %v, want %v", got, want)
	}
}

func TestAnOfficialsNoticeRedeliveredIsNotSentTwiceAndNobodyIsRecorded(t *testing.T) {
	r := newOfficialsRig(t)
	ev := newNotice("HS-B", "deadline.due_soon", "", "Hồ sơ HS-B sắp đến hạn.")
	ev.Agency, ev.Message.Officials = "XA-B", true
	for range 2 {
		if err := r.deliver(ev); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := r.recipients(), []string{"oa:u-xa-b"}; !slices.Equal(got, want) {
		t.Errorf("delivered twice, Zalo got messages for %v, want %v", got, want)
	}

	lost := newNotice("HS-X", "deadline.due_soon", "", "Hồ sơ HS-X sắp đến hạn.")
	lost.Agency, lost.Message.Officials = "NOT-DECLARED", true
	if err := r.deliver(lost); err != nil {
		t.Fatal(err)
	}
	sends := r.sends(lost)
	if len(sends) != 1 || sends[0].Route != "undeliverable" || !strings.HasPrefix(sends[0].Reason, "no_officials: ") {
		t.Errorf("a notice for an agency without officials recorded %+v, want undeliverable no_officials", sends)
	}
}

func TestAnOfficialWhoSentHUYTINIsLeftAloneLikeACitizen(t *testing.T) {
	h := newCitizenHarness(t)
	h.sink.officials = figures.NewDirectory(officialsAgencies).Officials
	h.fake.follow("u-xa-a")
	if err := h.sink.cit.st.StopZaloFollower(t.Context(), "oa-1", "u-xa-a", true, day); err != nil {
		t.Fatal(err)
	}
	ev := newNotice("HS-A", "deadline.due_soon", "", "Hồ sơ HS-A sắp đến hạn.")
	ev.Agency, ev.Message.Officials = "XA-A", true
	if err := h.deliver(ev); err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := h.fake.snapshot()
	for _, m := range msgs {
		if m.UserID == "u-xa-a" {
			t.Errorf("an official who sent HUY TIN got %q", m.Text)
		}
	}
	// The other official of XA-A, reached by phone, has no ZNS template here:
	// recorded as undeliverable, not sent.
	if len(msgs) != 0 {
		t.Errorf("Zalo got %d messages, want none", len(msgs))
	}
}
