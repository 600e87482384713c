package engine

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

const deadlineMapping = `entity: dossier
key: [code]
agency_field: unit
fields:
  code:     { required: true }
  unit:     { }
  status:   { type: int, required: true }
  received: { type: time }
  due:      { type: time }
  finished: { type: time }
  online:   { type: bool }
figures:
  kind: dossier
  status: status
  open: [2, 4, 5, 6]
  finished: [9, 10]
  supplement: [5]
  received_at: received
  due_at: due
  finished_at: finished
  online: online
rules:
  - name: deadline.due_soon
    at: due - 2d
    when: 'after.status in [2, 4, 5, 6]'
  - name: deadline.overdue
    at: due
    when: 'after.status in [2, 4, 5, 6]'
`

// t0 is 27 November 2026, 09:00 in Vietnam.
var t0 = time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)

func iso(t time.Time) string { return t.UTC().Format(time.RFC3339) }

type deadlineFixture struct {
	*jobFixture
}

func newDeadlineFixture(t *testing.T, st store.Store) *deadlineFixture {
	t.Helper()
	m, err := mapping.Compile("deadlines.yaml", []byte(deadlineMapping), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: t0}
	m.SetClock(clock.Now)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &jobFixture{src: newMemSource(10), store: st, clock: clock, sink: &recSink{}}
	f.job = &Job{
		Name: "motcua", Source: f.src, Map: m, Agency: "UBND", Store: st, Zone: time.FixedZone("ICT", 7*3600),
		Router: NewRouter([]Route{{Events: []string{"deadline.*"}, To: []string{"dashboard"}}}),
		Clock:  clock.Now, Logger: log, Metrics: NewMetrics(),
	}
	return &deadlineFixture{f}
}

// fire evaluates the due timers, delivers what they committed to the dashboard
// sink, and returns the rule events delivered by this call, as rule@key#id.
func (f *deadlineFixture) fire(t *testing.T) []string {
	t.Helper()
	before := f.ruleEvents(t)
	if _, err := f.job.FireTimers(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f.ruleEvents(t)[len(before):]
}

// ruleEvents delivers what is due to the dashboard sink and lists every rule
// event it has received, as rule@key#id.
func (f *deadlineFixture) ruleEvents(t *testing.T) []string {
	t.Helper()
	f.disp = &Dispatcher{
		Store: f.store, Sinks: map[string]pipeline.Sink{"dashboard": f.sink}, Clock: f.clock.Now, Logger: f.job.Logger, Metrics: f.job.Metrics,
		Default: DeliveryConfig{MaxAge: cfgDur(time.Hour), BackoffMin: cfgDur(time.Second), BackoffMax: cfgDur(time.Minute), Batch: 10, Concurrency: 1},
	}
	if _, err := f.disp.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.sink.mu.Lock()
	defer f.sink.mu.Unlock()
	var out []string
	for _, ev := range f.sink.got {
		out = append(out, ev.Rule+"@"+ev.Key+"#"+ev.ID)
	}
	return out
}

func rulesOf(evs []string) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e[:len(e)-33] // drop "#" and the 32-character id
	}
	return out
}

func storeBackends(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := store.Open(t.Context(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "state.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, _ := testpg.Schema(t)
		st, err := store.Open(t.Context(), store.Config{Driver: store.DriverPostgres, DSN: dsn, MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}

func TestDeadlineRuleFiresDueSoonOnceAndAgainWhenTheDueDateMoves(t *testing.T) {
	storeBackends(t, func(t *testing.T, st store.Store) {
		f := newDeadlineFixture(t, st)
		f.run(t) // the first sync: nothing yet
		due := t0.Add(49 * time.Hour)
		f.src.put("A", pipeline.Row{"unit": "XA-A", "status": "4", "received": iso(t0), "due": iso(due)})
		f.run(t)

		if got := f.fire(t); len(got) != 0 {
			t.Fatalf("at t0 (due in 49h) fired %v, want nothing", got)
		}
		f.clock.Add(90 * time.Minute) // now due in 47h30m: within two days
		first := f.fire(t)
		if want := []string{"deadline.due_soon@A"}; !slices.Equal(rulesOf(first), want) {
			t.Fatalf("within two days of the due date fired %v, want %v", first, want)
		}
		f.clock.Add(time.Hour)
		if got := f.fire(t); len(got) != 0 {
			t.Fatalf("fired again %v; a threshold fires once", got)
		}
		f.run(t) // a sync with nothing changed re-arms nothing
		if got := f.fire(t); len(got) != 0 {
			t.Fatalf("after an unchanged sync fired %v, want nothing", got)
		}

		// The agency moves the due date three days later: the timers are re-armed
		// for the new date, and "due soon" fires again when it comes near.
		moved := due.Add(72 * time.Hour)
		f.src.put("A", pipeline.Row{"unit": "XA-A", "status": "4", "received": iso(t0), "due": iso(moved)})
		f.run(t)
		f.clock.Add(moved.Add(-48*time.Hour + time.Minute).Sub(f.clock.Now()))
		second := f.fire(t)
		if want := []string{"deadline.due_soon@A"}; !slices.Equal(rulesOf(second), want) {
			t.Fatalf("after the due date moved fired %v, want %v (the old due date's overdue must not fire)", second, want)
		}
		if second[0] == first[0] {
			t.Errorf("the re-armed timer's event has the first one's id %s", first[0])
		}
		f.clock.Add(48 * time.Hour)
		if got := rulesOf(f.fire(t)); !slices.Equal(got, []string{"deadline.overdue@A"}) {
			t.Errorf("past the new due date fired %v, want deadline.overdue@A", got)
		}
	})
}

func TestDeadlineRuleFiresNothingForAFinishedDossier(t *testing.T) {
	storeBackends(t, func(t *testing.T, st store.Store) {
		f := newDeadlineFixture(t, st)
		f.run(t)
		due := t0.Add(49 * time.Hour)
		f.src.put("B", pipeline.Row{"unit": "XA-A", "status": "9", "received": iso(t0), "due": iso(due), "finished": iso(t0)})
		f.src.put("C", pipeline.Row{"unit": "XA-A", "status": "2", "received": iso(t0), "due": iso(due)})
		f.run(t)
		f.clock.Add(50 * time.Hour) // past both thresholds
		got := rulesOf(f.fire(t))
		slices.Sort(got)
		if want := []string{"deadline.due_soon@C", "deadline.overdue@C"}; !slices.Equal(got, want) {
			t.Errorf("fired %v, want %v: the finished dossier B fires nothing", got, want)
		}
		if again := f.fire(t); len(again) != 0 {
			t.Errorf("second pass fired %v", again)
		}
	})
}

func TestDeadlinesPassedBeforeTheFirstSyncAreHistory(t *testing.T) {
	storeBackends(t, func(t *testing.T, st store.Store) {
		f := newDeadlineFixture(t, st)
		// Overdue for a week when the daemon is installed: the leadership sees it
		// in the figures, but no "became overdue" event is made up for it.
		f.src.put("D", pipeline.Row{"unit": "XA-A", "status": "4", "received": iso(t0.Add(-30 * 24 * time.Hour)), "due": iso(t0.Add(-7 * 24 * time.Hour))})
		f.run(t)
		if got := f.fire(t); len(got) != 0 {
			t.Errorf("fired %v for thresholds passed before the first sync", got)
		}
		// A later change that leaves the due date where it was is not news either:
		// the passed threshold stays history (it was never stored as a timer).
		f.src.put("D", pipeline.Row{"unit": "XA-A", "status": "5", "received": iso(t0.Add(-30 * 24 * time.Hour)), "due": iso(t0.Add(-7 * 24 * time.Hour))})
		f.run(t)
		if got := f.fire(t); len(got) != 0 {
			t.Errorf("fired %v after a change that did not move the due date", got)
		}
		// Moved to a new date three days ahead: armed again, due soon once it is two
		// days away.
		f.src.put("D", pipeline.Row{"unit": "XA-A", "status": "5", "received": iso(t0.Add(-30 * 24 * time.Hour)), "due": iso(t0.Add(3 * 24 * time.Hour))})
		f.run(t)
		if got := f.fire(t); len(got) != 0 {
			t.Errorf("fired %v three days before the due date", got)
		}
		f.clock.Add(25 * time.Hour)
		if got := rulesOf(f.fire(t)); !slices.Equal(got, []string{"deadline.due_soon@D"}) {
			t.Errorf("fired %v when the moved due date came within two days, want one due soon", got)
		}
	})
}

// The facts a sync keeps are what the figures count: a real job over a real
// mapping, then a query at the injected clock.
func TestSyncedRecordsFeedTheFigures(t *testing.T) {
	storeBackends(t, func(t *testing.T, st store.Store) {
		f := newDeadlineFixture(t, st)
		vn := time.FixedZone("ICT", 7*3600)
		f.src.put("A", pipeline.Row{"unit": "XA-A", "status": "4", "received": "2026-11-26T23:30:00+07:00", "due": iso(t0.Add(-time.Hour)), "online": "true"})
		f.src.put("B", pipeline.Row{"unit": "XA-A", "status": "5", "received": iso(t0), "due": iso(t0.Add(24 * time.Hour))})
		f.src.put("C", pipeline.Row{"unit": "XA-B", "status": "10", "received": iso(t0), "due": iso(t0.Add(24 * time.Hour)), "finished": iso(t0.Add(time.Hour))})
		f.run(t)
		svc := &figures.Service{Store: st.(store.FactStore), Clock: f.clock.Now, Zone: vn,
			Agencies: figures.NewDirectory([]figures.Agency{{Code: "XA-A", Name: "A"}, {Code: "XA-B", Name: "B"}})}
		got, err := svc.Figures(t.Context(), figures.Query{From: t0.Add(-24 * time.Hour), To: t0.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		tot := got.Total.Counts
		if tot.Received != 3 || tot.InProgress != 2 || tot.OverdueNow != 1 || tot.DueSoon != 1 || tot.Finished != 1 ||
			tot.FinishedOnTime != 1 || tot.AwaitingSupplement != 1 || tot.SupplementRequests != 1 || tot.Online != 1 || tot.OnlineKnown != 1 {
			t.Errorf("total = %+v", tot)
		}
		// A finishes: the figures follow the record.
		f.src.put("A", pipeline.Row{"unit": "XA-A", "status": "9", "received": "2026-11-26T23:30:00+07:00", "due": iso(t0.Add(-time.Hour)), "finished": iso(t0), "online": "true"})
		f.run(t)
		got, err = svc.Figures(t.Context(), figures.Query{From: t0.Add(-24 * time.Hour), To: t0.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if tot := got.Total.Counts; tot.OverdueNow != 0 || tot.Finished != 2 || tot.FinishedLate != 1 || tot.InProgress != 1 {
			t.Errorf("after A finished late: %+v", tot)
		}
		days, err := svc.Daily(t.Context(), figures.Query{From: t0.Add(-48 * time.Hour), To: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		// A was received at 23:30 on 26 November in Vietnam, B and C on the 27th.
		recv := map[string]int{}
		for _, d := range days {
			recv[d.Day] = d.Received
		}
		if recv["2026-11-26"] != 1 || recv["2026-11-27"] != 2 {
			t.Errorf("received per day = %v, want 26 Nov: 1, 27 Nov: 2", recv)
		}
	})
}
