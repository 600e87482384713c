package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// feedSource is a fake full-set source (a feed): every read from a nil position
// yields the current set, in pages of batch rows. fail makes the next read fail
// part-way, as a timeout or a page in an unknown shape does.
type feedSource struct {
	mu    sync.Mutex
	rows  map[string]pipeline.Row
	batch int
	fail  error
	// starts records the position of every read that began a poll (nil each time).
	starts []pipeline.Position
	reads  int
}

func (s *feedSource) FullSet() {}

func (s *feedSource) set(rows ...pipeline.Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = map[string]pipeline.Row{}
	for _, r := range rows {
		s.rows[fmt.Sprint(r["code"])] = r
	}
}

func (s *feedSource) ReadBatch(_ context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	page := 0
	if pos == nil {
		s.starts = append(s.starts, pos)
	} else {
		fmt.Sscan(string(pos), &page)
	}
	keys := make([]string, 0, len(s.rows))
	for k := range s.rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	from := page * s.batch
	for i := from; i < min(from+s.batch, len(keys)); i++ {
		row := pipeline.Row{}
		for k, v := range s.rows[keys[i]] {
			row[k] = v
		}
		if err := out.Emit(row); err != nil {
			return nil, false, err
		}
	}
	if s.fail != nil && page == 0 {
		err := s.fail
		s.fail = nil
		return nil, false, err // the first page arrived, then the read failed
	}
	done := from+s.batch >= len(keys)
	return pipeline.Position(fmt.Sprint(page + 1)), done, nil
}

func (s *feedSource) Close() error { return nil }

const outageMapping = `entity: outage
key: [code]
fields:
  code: { required: true }
  area: { required: true }
  end:  { type: time }
rules:
  - name: outage.cancelled
    when: 'type == "deleted" && before.area != ""'
    notify: { audience: area, template: cancelled }
templates:
  cancelled: 'Lịch ngừng cấp điện tại {{.area}} đã hủy.'
`

type feedFixture struct {
	src   *feedSource
	store store.Store
	job   *Job
	clock *fakeClock
	sink  *recSink
	disp  *Dispatcher
	seen  int // events of sink.got already looked at
}

func newFeedFixture(t *testing.T, del DeletesConfig) *feedFixture {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &fakeClock{t: time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)}
	m, err := mapping.Compile("outage.yaml", []byte(outageMapping), mapping.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := NewMetrics()
	f := &feedFixture{src: &feedSource{batch: 2}, store: st, clock: clock, sink: &recSink{}}
	f.job = &Job{
		Name: "evn", Source: f.src, Map: m, Agency: "EVN", Store: st, Deletes: del,
		Router: NewRouter([]Route{{Events: []string{"*"}, To: []string{"audit"}}}),
		Clock:  clock.Now, Logger: log, Metrics: metrics,
	}
	f.disp = &Dispatcher{
		Store: st, Sinks: map[string]pipeline.Sink{"audit": f.sink}, Clock: clock.Now, Logger: log, Metrics: metrics,
		Default: DeliveryConfig{MaxAttempts: 3, BackoffMin: cfgDur(time.Second), BackoffMax: cfgDur(time.Minute), Batch: 10, Concurrency: 1},
	}
	return f
}

// poll runs the job once (an error is returned, not fatal), delivers what it
// committed and returns the new events as "type key" or "rule key" lines.
func (f *feedFixture) poll(t *testing.T) ([]string, error) {
	t.Helper()
	f.clock.Add(time.Minute)
	_, err := f.job.Run(context.Background())
	if _, derr := f.disp.Drain(context.Background()); derr != nil {
		t.Fatal(derr)
	}
	f.sink.mu.Lock()
	defer f.sink.mu.Unlock()
	var out []string
	for _, ev := range f.sink.got[f.seen:] {
		what := ev.Type
		if ev.Rule != "" {
			what = ev.Rule
		}
		out = append(out, what+" "+ev.Key)
	}
	f.seen = len(f.sink.got)
	sort.Strings(out)
	return out, err
}

func (f *feedFixture) mustPoll(t *testing.T) []string {
	t.Helper()
	evs, err := f.poll(t)
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return evs
}

func outage(code, area string, end time.Time) pipeline.Row {
	return pipeline.Row{"code": code, "area": area, "end": end.Format(time.RFC3339)}
}

// A schedule missing from the feed is cancelled only after it has been missing
// from after_misses consecutive successful polls; failed polls count nothing, a
// record that comes back starts again, an ended one is never cancelled.
func TestFullSetDeletesAfterConsecutiveMisses(t *testing.T) {
	later := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	a, b, c := outage("A", "Tân An", later), outage("B", "Cần Giuộc", later), outage("C", "Bến Lức", later)
	failed := errors.New("unknown page shape: neither div.entry nor the four-column table")
	type step struct {
		rows []pipeline.Row // the feed's set at this poll
		fail bool           // the poll fails after its first page
		want []string       // the events it yields
	}
	tests := []struct {
		name  string
		del   DeletesConfig
		steps []step
	}{
		{"deleted on the second consecutive miss, by default", DeletesConfig{}, []step{
			{rows: []pipeline.Row{a, b, c}, want: []string{"created A", "created B", "created C"}},
			{rows: []pipeline.Row{a, c}},
			{rows: []pipeline.Row{a, c}, want: []string{"deleted B", "outage.cancelled B"}},
			{rows: []pipeline.Row{a, c}},
		}},
		{"a failed poll neither counts nor resets", DeletesConfig{}, []step{
			{rows: []pipeline.Row{a, b, c}, want: []string{"created A", "created B", "created C"}},
			{rows: []pipeline.Row{a, c}},
			{rows: []pipeline.Row{}, fail: true},
			{rows: []pipeline.Row{a, c}, want: []string{"deleted B", "outage.cancelled B"}},
		}},
		{"an empty answer is a set too, but a failed one is not", DeletesConfig{}, []step{
			{rows: []pipeline.Row{a, b}, want: []string{"created A", "created B"}},
			{rows: []pipeline.Row{a, b, c}, fail: true, want: []string{"created A", "created B"}[:0]},
			{rows: []pipeline.Row{}},
			{rows: []pipeline.Row{}, want: []string{"deleted A", "deleted B", "outage.cancelled A", "outage.cancelled B"}},
		}},
		{"a record that comes back starts counting again", DeletesConfig{}, []step{
			{rows: []pipeline.Row{a, b}, want: []string{"created A", "created B"}},
			{rows: []pipeline.Row{a}},
			{rows: []pipeline.Row{a, b}},
			{rows: []pipeline.Row{a}},
			{rows: []pipeline.Row{a}, want: []string{"deleted B", "outage.cancelled B"}},
		}},
		{"after_misses is per source", DeletesConfig{AfterMisses: 3}, []step{
			{rows: []pipeline.Row{a, b}, want: []string{"created A", "created B"}},
			{rows: []pipeline.Row{a}},
			{rows: []pipeline.Row{a}},
			{rows: []pipeline.Row{a}, want: []string{"deleted B", "outage.cancelled B"}},
		}},
		{"a deleted record that reappears is created again", DeletesConfig{AfterMisses: 1}, []step{
			{rows: []pipeline.Row{a, b}, want: []string{"created A", "created B"}},
			{rows: []pipeline.Row{a}, want: []string{"deleted B", "outage.cancelled B"}},
			{rows: []pipeline.Row{a, b}, want: []string{"created B"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeedFixture(t, tc.del)
			for i, s := range tc.steps {
				f.src.set(s.rows...)
				if s.fail {
					f.src.fail = failed
				}
				got, err := f.poll(t)
				if s.fail != (err != nil) {
					t.Fatalf("poll %d: err = %v, want failure %v", i+1, err, s.fail)
				}
				if !slices.Equal(got, s.want) {
					t.Fatalf("poll %d: events %q, want %q", i+1, got, s.want)
				}
			}
			if len(f.src.starts) != len(tc.steps) {
				t.Fatalf("%d polls began at the start, want every one of %d", len(f.src.starts), len(tc.steps))
			}
			cur, err := f.store.Cursor(context.Background(), "evn")
			if err != nil || cur.Position != nil || !cur.InitialDone {
				t.Fatalf("cursor = %+v (%v): a full-set source keeps no position", cur, err)
			}
		})
	}
}

// The deleted event carries the record as last known, and the rule that fires on
// it renders its notice from those values.
func TestFullSetDeletedEventCarriesTheRecordAsLastKnown(t *testing.T) {
	f := newFeedFixture(t, DeletesConfig{AfterMisses: 1})
	end := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	f.src.set(outage("A", "Cần Đước", end), outage("B", "Tân Trụ", end))
	f.mustPoll(t)
	f.src.set(outage("B", "Tân Trụ", end))
	f.mustPoll(t)
	f.sink.mu.Lock()
	got := f.sink.got[len(f.sink.got)-2:]
	f.sink.mu.Unlock()
	del, rule := got[0], got[1]
	if del.Rule != "" {
		del, rule = rule, del
	}
	if del.Type != pipeline.EventDeleted || del.Key != "A" || del.Version != 2 || del.After != nil || del.Agency != "EVN" || del.Snapshot {
		t.Fatalf("deleted event = %+v", del)
	}
	if del.Before["area"] != "Cần Đước" || fmt.Sprint(del.Before["end"]) != end.Format(time.RFC3339) {
		t.Fatalf("deleted event's before = %v, want the record as last known", del.Before)
	}
	if rule.Rule != "outage.cancelled" || rule.Message == nil || rule.Message.Text != "Lịch ngừng cấp điện tại Cần Đước đã hủy." ||
		rule.Message.Audience != "Cần Đước" {
		t.Fatalf("rule event = %+v (message %+v)", rule, rule.Message)
	}
	snap, err := f.store.Snapshot(context.Background(), "evn", "outage", []string{"A"})
	if err != nil || !snap["A"].Deleted || snap["A"].Version != 2 {
		t.Fatalf("snapshot of A = %+v (%v), want deleted at version 2", snap["A"], err)
	}
}

// A schedule that ended and left the feed is over, not cancelled.
func TestFullSetNeverDeletesARecordPastItsEndTime(t *testing.T) {
	f := newFeedFixture(t, DeletesConfig{UnlessPast: "end"})
	now := f.clock.Now()
	past, soon := now.Add(2*time.Minute), now.Add(24*time.Hour)
	f.src.set(outage("A", "Tân An", past), outage("B", "Thủ Thừa", soon), outage("C", "Đức Hòa", soon))
	f.mustPoll(t) // created at now+1m: A ends a minute later
	f.src.set(outage("C", "Đức Hòa", soon))
	f.clock.Add(5 * time.Minute) // A has ended
	if got := f.mustPoll(t); len(got) != 0 {
		t.Fatalf("first miss: events %q, want none", got)
	}
	if got := f.mustPoll(t); !slices.Equal(got, []string{"deleted B", "outage.cancelled B"}) {
		t.Fatalf("second miss: events %q, want only B (A ended before it left the feed)", got)
	}
	for range 3 {
		if got := f.mustPoll(t); len(got) != 0 {
			t.Fatalf("later polls: events %q, want none", got)
		}
	}
}

// A row whose key cannot be read could be any record: the poll counts nothing
// missing and says why, so a feed whose dates changed shape never cancels every
// schedule.
func TestFullSetCountsNothingWhenARowCannotBeIdentified(t *testing.T) {
	f := newFeedFixture(t, DeletesConfig{AfterMisses: 1})
	end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	f.src.set(outage("A", "Tân An", end), outage("B", "Thủ Thừa", end))
	f.mustPoll(t)
	f.src.set(outage("A", "Tân An", end), pipeline.Row{"code": nil, "area": "Thủ Thừa"})
	got, err := f.poll(t)
	if !errors.Is(err, ErrUnidentified) || len(got) != 0 {
		t.Fatalf("poll with an unidentified row: events %q, err %v; want none and ErrUnidentified", got, err)
	}
	cur, _ := f.store.Cursor(context.Background(), "evn")
	if !strings.Contains(cur.LastError, "key cannot be read") {
		t.Fatalf("source error = %q, want it to say why nothing was counted", cur.LastError)
	}
	// A quarantined row whose key maps still counts as present.
	f.src.set(outage("A", "Tân An", end), pipeline.Row{"code": "B", "area": "", "end": "not a time"})
	if got := f.mustPoll(t); len(got) != 0 {
		t.Fatalf("poll with B quarantined: events %q, want none", got)
	}
}

// A soft-delete column turns a row into a deleted event for its record, on an
// ordinary (cursor) source.
func TestSoftDeleteColumnDeletesTheRecord(t *testing.T) {
	tests := []struct {
		name    string
		when    []string
		deleted any // the column's value on the deleted row
		kept    any // its value on the others
	}{
		{"any true value", nil, "1", "0"},
		{"a deleted_at time", nil, time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC), nil},
		{"listed values", []string{"Đã xóa", "x"}, "đã xóa", "Hoạt động"},
		{"a boolean", nil, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newJobFixture(t, 10)
			f.job.Deletes = DeletesConfig{Column: "DaXoa", When: tc.when}
			f.src.put("A", pipeline.Row{"status": "2", "DaXoa": tc.kept})
			f.src.put("B", pipeline.Row{"status": "2", "DaXoa": tc.kept})
			f.src.put("N", pipeline.Row{"status": "2", "DaXoa": tc.deleted}) // deleted before it was ever read
			if st := f.run(t); st.Events != 2 {
				t.Fatalf("first run: %d events, want 2 (N was deleted before it was ever seen)", st.Events)
			}
			f.src.put("B", pipeline.Row{"status": "2", "DaXoa": tc.deleted})
			if st := f.run(t); st.Events != 1 || st.Deleted != 1 {
				t.Fatalf("second run: %d events, want B's deletion", st.Events)
			}
			f.src.put("B", pipeline.Row{"status": "3", "DaXoa": tc.deleted}) // touched while deleted
			if st := f.run(t); st.Events != 0 {
				t.Fatalf("third run: %d events, want none", st.Events)
			}
			snap, err := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"A", "B", "N"})
			if err != nil || !snap["B"].Deleted || snap["A"].Deleted || len(snap) != 2 {
				t.Fatalf("snapshot = %+v (%v), want A live, B deleted, N absent", snap, err)
			}
		})
	}
}

// The soft-delete column must be one the source returns.
func TestSoftDeleteColumnMissingStopsTheSource(t *testing.T) {
	f := newFeedFixture(t, DeletesConfig{Column: "DaXoa"})
	f.job.Source = describedFeed{f.src}
	f.src.set(outage("A", "Tân An", f.clock.Now()))
	_, err := f.poll(t)
	if !errors.Is(err, ErrMissingColumns) || !strings.Contains(err.Error(), `"DaXoa"`) {
		t.Fatalf("err = %v, want ErrMissingColumns naming DaXoa", err)
	}
}

type describedFeed struct{ *feedSource }

func (describedFeed) Columns(context.Context) ([]string, error) {
	return []string{"code", "area", "end"}, nil
}

func TestDeletesBlockIsValidatedAgainstTheMapping(t *testing.T) {
	tests := []struct {
		name, block string
		want        []string // substrings of the errors; none: valid
	}{
		{"valid", `{ after_misses: 3, unless_past: end, reconcile: "0 2 * * *", page_size: 500, column: DaXoa, when: ["1"] }`, nil},
		{"bad values", `{ after_misses: -1, unless_past: area, reconcile: "nightly", page_size: 0 }`,
			[]string{"deletes.after_misses: must be at least 1", `deletes.unless_past: field "area" is of type string`, `deletes.reconcile: bad cron expression "nightly"`}},
		{"unknown field and when without column", `{ unless_past: finish, when: ["1"], after_miss: 2 }`,
			[]string{`deletes.unless_past: the mapping has no field "finish"`, "deletes.when: needs column", `unknown field "after_miss"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"m.yaml": outageMapping})
			file := filepath.Join(dir, "c.yaml")
			cfg, err := Load(file, []byte("sources:\n  - { name: evn, type: memory, table: t, mapping: m.yaml, deletes: "+tc.block+" }\n"), nil)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if d := cfg.Sources[0].Deletes; d.AfterMisses != 3 || d.UnlessPast != "end" || d.PageSize != 500 || d.Column != "DaXoa" {
					t.Fatalf("deletes = %+v", d)
				}
				return
			}
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors %q\nlack %q", err, w)
				}
			}
		})
	}
	// Defaults.
	dir := writeFiles(t, map[string]string{"m.yaml": outageMapping})
	cfg, err := Load(filepath.Join(dir, "c.yaml"), []byte("sources:\n  - { name: evn, type: memory, table: t, mapping: m.yaml }\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Sources[0].Deletes; d.AfterMisses != 2 || d.PageSize != 1000 || d.Reconcile != "" {
		t.Fatalf("default deletes = %+v", d)
	}
}

// listedSource is a memSource that can list its keys, in key order and pages.
type listedSource struct {
	*memSource
	fail  error
	extra []pipeline.Row // rows listed besides the table's (unidentifiable ones)
}

func (s *listedSource) ReadKeys(_ context.Context, cols []string, pos pipeline.Position, limit int, out pipeline.Emitter) (pipeline.Position, bool, error) {
	if s.fail != nil {
		return nil, false, s.fail
	}
	s.mu.Lock()
	keys := make([]string, 0, len(s.rows))
	for k := range s.rows {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	sort.Strings(keys)
	from := 0
	if pos != nil {
		fmt.Sscan(string(pos), &from)
	}
	for i := from; i < min(from+limit, len(keys)); i++ {
		row := pipeline.Row{}
		for _, c := range cols {
			row[c] = keys[i]
		}
		if err := out.Emit(row); err != nil {
			return nil, false, err
		}
	}
	done := from+limit >= len(keys)
	if done {
		for _, r := range s.extra {
			if err := out.Emit(r); err != nil {
				return nil, false, err
			}
		}
	}
	return pipeline.Position(fmt.Sprint(from + limit)), done, nil
}

func TestReconcileDeletesRecordsWhoseRowsAreGone(t *testing.T) {
	f := newJobFixture(t, 10)
	src := &listedSource{memSource: f.src}
	f.job.Source = src
	f.job.Deletes = DeletesConfig{PageSize: 2}
	for _, k := range []string{"A", "B", "C", "D", "E"} {
		f.src.put(k, pipeline.Row{"status": "2"})
	}
	f.run(t)
	f.src.mu.Lock()
	delete(f.src.rows, "B")
	delete(f.src.rows, "E")
	f.src.mu.Unlock()

	// A listing that fails, or holds a row that cannot be identified, deletes nothing.
	src.fail = errors.New("connection reset")
	if _, err := f.job.Reconcile(context.Background()); err == nil {
		t.Fatal("a failed listing reconciled")
	}
	src.fail, src.extra = nil, []pipeline.Row{{"code": nil}}
	if rs, err := f.job.Reconcile(context.Background()); !errors.Is(err, ErrUnidentified) || rs.Deleted != 0 {
		t.Fatalf("listing with an unidentified row: %+v, %v; want nothing deleted and ErrUnidentified", rs, err)
	}
	src.extra = nil
	rs, err := f.job.Reconcile(context.Background())
	if err != nil || rs.Deleted != 2 || rs.Keys != 3 || rs.Pages != 2 {
		t.Fatalf("reconcile = %+v, %v; want 3 keys in 2 pages and 2 deleted", rs, err)
	}
	snap, _ := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"A", "B", "E"})
	if !snap["B"].Deleted || !snap["E"].Deleted || snap["A"].Deleted {
		t.Fatalf("snapshot = %+v, want B and E deleted", snap)
	}
	if rs, err := f.job.Reconcile(context.Background()); err != nil || rs.Deleted != 0 {
		t.Fatalf("second reconcile = %+v, %v; want nothing more", rs, err)
	}
	// A source that cannot list its keys says so.
	f.job.Source = f.src
	if _, err := f.job.Reconcile(context.Background()); !errors.Is(err, ErrCannotList) {
		t.Fatalf("reconcile of a source without a listing: %v, want ErrCannotList", err)
	}
}

// syncBuffer is a log destination safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The daemon runs each source's reconcile on its own schedule (this memory source
// cannot list its keys, which the scheduled run reports).
func TestDaemonSchedulesReconcile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.yaml": testMapping,
		"c.yaml": `store: { driver: sqlite, path: state.db }
sources:
  - { name: motcua, type: memory, table: HoSo, mapping: m.yaml, schedule: "@every 1h", deletes: { reconcile: "@every 1s" } }
`})
	cfg, err := LoadFile(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Jobs[0].Deletes.Reconcile != "@every 1s" {
		t.Fatalf("job deletes = %+v", d.Jobs[0].Deletes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitUntil(t, func() bool { return strings.Contains(logs.String(), "cannot list its keys") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `msg="reconcile failed" source=motcua`) {
		t.Fatalf("logs lack the scheduled reconcile:\n%s", logs.String())
	}
}
