package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
)

// richSource is a memSource that also knows its columns, can re-read rows and
// marks its horizon, like the SQL source.
type richSource struct {
	*memSource
	columns []string
	// sweepBlind makes ReadUntil see nothing, as if every row it should read had
	// moved again before it got there.
	sweepBlind bool
}

// ReadUntil reads after pos up to the mark, whatever the lag bound.
func (s *richSource) ReadUntil(ctx context.Context, pos, mark pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	if s.sweepBlind {
		return pos, true, nil
	}
	var m int64
	if err := json.Unmarshal(mark, &m); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	upper := s.upper
	s.upper = m
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.upper = upper; s.mu.Unlock() }()
	return s.ReadBatch(ctx, pos, out)
}

// ReadBatch emits every column, NULL where a row has no value, as a table does.
func (s *richSource) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	return s.memSource.ReadBatch(ctx, pos, fullRows{out, s.columns})
}

type fullRows struct {
	pipeline.Emitter
	columns []string
}

func (f fullRows) Emit(r pipeline.Row) error {
	full := pipeline.Row{}
	for _, c := range f.columns {
		if v, ok := r[c]; ok {
			full[c] = v
		} else {
			full[c] = nil
		}
	}
	return f.Emitter.Emit(full)
}

func (s *richSource) Columns(context.Context) ([]string, error) {
	return append([]string(nil), s.columns...), nil
}

func (s *richSource) Refetch(_ context.Context, rows []pipeline.Row, out pipeline.Emitter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		key := fmt.Sprint(r["code"])
		cur, ok := s.rows[key]
		if !ok {
			continue
		}
		row := pipeline.Row{"seq": s.seq[key]}
		for k, v := range cur {
			row[k] = v
		}
		if err := (fullRows{out, s.columns}).Emit(row); err != nil {
			return err
		}
	}
	return nil
}

func (s *richSource) Mark(context.Context) (pipeline.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.next)
}

func (s *richSource) Before(mark pipeline.Position, row pipeline.Row) bool {
	var m int64
	if json.Unmarshal(mark, &m) != nil {
		return false
	}
	seq, ok := row["seq"].(int64)
	return ok && seq <= m
}

// set changes a row in place without moving its cursor (what reprocessing must
// still see).
func (s *memSource) set(key string, row pipeline.Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	row["code"] = key
	s.rows[key] = row
}

func (s *memSource) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rows, key)
	delete(s.seq, key)
}

func richFixture(t *testing.T, batch int, yaml string) (*jobFixture, *richSource) {
	t.Helper()
	f := newJobFixture(t, batch)
	rs := &richSource{memSource: f.src, columns: []string{"code", "status", "name", "due", "seq"}}
	f.job.Source = rs
	if yaml != "" {
		f.job.Map = compile(t, yaml)
	}
	return f, rs
}

func compile(t *testing.T, yaml string) *mapping.Mapping {
	t.Helper()
	m, err := mapping.Compile("test.yaml", []byte(yaml), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// outboxEvents delivers the outbox to the audit sink and returns every event it
// received so far, rule events included.
func outboxEvents(t *testing.T, f *jobFixture) []pipeline.Event {
	t.Helper()
	if _, err := f.disp.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.sink.mu.Lock()
	defer f.sink.mu.Unlock()
	out := make([]pipeline.Event, len(f.sink.got))
	for i, ev := range f.sink.got {
		out[i] = *ev
	}
	return out
}

func TestMissingColumnStopsTheSourceAndCommitsNothing(t *testing.T) {
	f, rs := richFixture(t, 10, "")
	f.src.put("A", pipeline.Row{"status": "2", "name": "An"})
	rs.columns = []string{"code", "status", "name", "seq"} // "due" was renamed at the agency
	_, err := f.job.Run(context.Background())
	if !errors.Is(err, ErrMissingColumns) {
		t.Fatalf("run = %v; want ErrMissingColumns", err)
	}
	for _, want := range []string{`test.yaml:`, `field "due" reads column "due"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	cur, _ := f.store.Cursor(context.Background(), "motcua")
	if cur.Position != nil || len(outboxEvents(t, f)) != 0 {
		t.Fatalf("a stopped source committed: position %s, %d events", cur.Position, len(outboxEvents(t, f)))
	}
	if !strings.Contains(cur.LastError, `column "due"`) || f.job.Stopped() == nil {
		t.Fatalf("the error is not kept: state %q, stopped %v", cur.LastError, f.job.Stopped())
	}
	if v := testutil.ToFloat64(f.job.Metrics.sourceStopped.WithLabelValues("motcua")); v != 1 {
		t.Fatalf("egov_source_stopped = %v, want 1", v)
	}

	// A column that differs only in case is reported with the exact name to write.
	rs.columns = []string{"code", "status", "name", "DUE", "seq"}
	_, err = f.job.Run(context.Background())
	if !errors.Is(err, ErrMissingColumns) || !strings.Contains(err.Error(), `the source has "DUE", which differs only in case`) {
		t.Fatalf("run = %v; want a case hint", err)
	}

	rs.columns = []string{"code", "status", "name", "due", "seq"}
	if _, err := f.job.Run(context.Background()); err != nil {
		t.Fatalf("run after the fix: %v", err)
	}
	cur, _ = f.store.Cursor(context.Background(), "motcua")
	if cur.LastError != "" || f.job.Stopped() != nil || len(outboxEvents(t, f)) != 1 {
		t.Fatalf("after the fix: state %q, stopped %v, %d events", cur.LastError, f.job.Stopped(), len(outboxEvents(t, f)))
	}
	if v := testutil.ToFloat64(f.job.Metrics.sourceStopped.WithLabelValues("motcua")); v != 0 {
		t.Fatalf("egov_source_stopped = %v after the fix, want 0", v)
	}
}

const ruleMapping = `entity: dossier
key: [code]
fields:
  code:   { required: true }
  status: { type: int, required: true, in: [1,2,3,4,5,6,7,8,9,10] }
  name:   { }
  due:    { type: time }
rules:
  - name: dossier.received
    when: 'type == "created"'
`

func ruleEvents(evs []pipeline.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Rule != "" {
			out = append(out, e.Key)
		}
	}
	return out
}

func TestRowsRepairedAfterTheFirstSyncAreSnapshotRecords(t *testing.T) {
	for _, refetch := range []bool{false, true} {
		t.Run(fmt.Sprintf("refetch=%v", refetch), func(t *testing.T) {
			f, rs := richFixture(t, 10, ruleMapping)
			if !refetch {
				f.job.Source = f.src // no Refetcher: the stored copies are used
			}
			f.src.put("OLD", pipeline.Row{"status": "11"}) // rejected during the first sync
			f.run(t)
			f.src.put("NEW", pipeline.Row{"status": "12"}) // rejected after it
			f.run(t)
			if q, _ := f.store.Quarantined(context.Background(), "motcua", 0); len(q) != 2 || !q[0].Snapshot || q[1].Snapshot {
				t.Fatalf("quarantine = %+v; want OLD marked as of the first sync", q)
			}
			f.job.Map = compile(t, strings.Replace(ruleMapping, "in: [1,2,3,4,5,6,7,8,9,10]", "in: [1,2,3,4,5,6,7,8,9,10,11,12]", 1))
			res, err := f.job.Reprocess(context.Background())
			if err != nil || res.Fixed != 2 || res.FromSource != refetch {
				t.Fatalf("reprocess = %+v, %v", res, err)
			}
			evs := outboxEvents(t, f)
			if got := ruleEvents(evs); fmt.Sprint(got) != "[NEW]" {
				t.Fatalf("citizen rules fired for %v; want only NEW (OLD existed before the first sync ended)", got)
			}
			for _, e := range evs {
				if e.Rule == "" && e.Snapshot != (e.Key == "OLD") {
					t.Errorf("%s: snapshot = %v", e.Key, e.Snapshot)
				}
			}
			_ = rs
		})
	}
}

func TestQuarantineClearsWhenTheRowLaterMapsCleanly(t *testing.T) {
	f := newJobFixture(t, 10)
	f.src.put("A", pipeline.Row{"status": "bảy"})
	f.src.put("B", pipeline.Row{"status": "tám"})
	f.run(t)
	f.src.put("A", pipeline.Row{"status": "7"}) // the agency corrected it
	f.run(t)
	q, _ := f.store.Quarantined(context.Background(), "motcua", 0)
	if len(q) != 1 || q[0].RowKey != "B" {
		t.Fatalf("quarantine = %+v; want only B left", q)
	}
}

func TestReprocessReadsTheCurrentRowFromTheSource(t *testing.T) {
	f, _ := richFixture(t, 10, "")
	f.src.put("A", pipeline.Row{"status": "11", "name": "cũ"})
	f.src.put("GONE", pipeline.Row{"status": "11"})
	f.src.put("BAD", pipeline.Row{"status": "11"})
	f.run(t)
	// The agency edits A in place (no cursor move), deletes GONE; BAD stays bad.
	f.src.set("A", pipeline.Row{"status": "2", "name": "mới"})
	f.src.remove("GONE")
	f.src.set("BAD", pipeline.Row{"status": "mười một"})
	res, err := f.job.Reprocess(context.Background())
	if err != nil || !res.FromSource || res.Fixed != 1 || res.Gone != 1 || res.StillBad != 1 {
		t.Fatalf("reprocess = %+v, %v; want A fixed, GONE gone, BAD still bad", res, err)
	}
	snap, _ := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"A"})
	if snap["A"].Fields["name"] != "mới" {
		t.Fatalf("A = %v; want the agency's current row", snap["A"].Fields)
	}
	q, _ := f.store.Quarantined(context.Background(), "motcua", 0)
	if len(q) != 1 || q[0].RowKey != "BAD" || !strings.Contains(q[0].Reason, "mười một") || q[0].Raw["status"] != "mười một" {
		t.Fatalf("quarantine = %+v; want BAD with its current row and reason", q)
	}
}

func TestRecordsTouchedDuringTheFirstSyncDoNotNotify(t *testing.T) {
	for _, blind := range []bool{false, true} {
		// blind: the rows that moved past the reader are not caught when the first
		// sync ends, but later, by the mark.
		t.Run(fmt.Sprintf("sweep_blind=%v", blind), func(t *testing.T) {
			f, rs := richFixture(t, 2, ruleMapping)
			rs.sweepBlind = blind
			for _, k := range []string{"A", "B", "C", "D"} {
				f.src.put(k, pipeline.Row{"status": "2"})
			}
			// A is touched while the first sync runs and moves past the reader's bound.
			f.src.put("A", pipeline.Row{"status": "3"})
			f.src.upper = 4
			f.run(t)
			f.src.upper = 0
			f.src.put("E", pipeline.Row{"status": "1"}) // a dossier received after the sync
			f.run(t)
			evs := outboxEvents(t, f)
			if got := ruleEvents(evs); fmt.Sprint(got) != "[E]" {
				t.Fatalf("citizen rules fired for %v; want only E", got)
			}
			for _, e := range evs {
				if e.Key == "A" && (!e.Snapshot || e.Type != pipeline.EventCreated) {
					t.Fatalf("A's event = %+v; want a snapshot created event", e)
				}
			}
		})
	}
}

func TestRuleThatFailsIsKeptAsAFailedNoticeAndOthersStillRun(t *testing.T) {
	broken := ruleMapping + `  - name: dossier.named
    when: 'int(after.name) > 0'
  - name: dossier.any
    when: 'type == "updated"'
`
	f, _ := richFixture(t, 10, broken)
	f.src.put("A", pipeline.Row{"status": "1", "name": "1"})
	f.run(t) // the snapshot: rules are silent
	f.src.put("A", pipeline.Row{"status": "2", "name": "An"})
	f.run(t)
	q, _ := f.store.Quarantined(context.Background(), "motcua", 0)
	if len(q) != 1 || q[0].Rule != "dossier.named" || q[0].Event == nil || q[0].Event.Version != 2 {
		t.Fatalf("quarantine = %+v; want one failed notice of dossier.named on version 2", q)
	}
	if got := fmt.Sprint(ruleNames(outboxEvents(t, f))); got != "[dossier.any]" {
		t.Fatalf("rules fired: %s; want the rule after the failing one to run", got)
	}
	// The operator fixes the rule and retries the notice.
	f.job.Map = compile(t, strings.Replace(broken, "int(after.name) > 0", "len(after.name) > 0", 1))
	res, err := f.job.Reprocess(context.Background())
	if err != nil || res.Notices != 1 {
		t.Fatalf("reprocess = %+v, %v; want the notice sent", res, err)
	}
	if got := fmt.Sprint(ruleNames(outboxEvents(t, f))); got != "[dossier.any dossier.named]" {
		t.Fatalf("rules after the retry: %s", got)
	}
	if q, _ := f.store.Quarantined(context.Background(), "motcua", 0); len(q) != 0 {
		t.Fatalf("quarantine after the retry = %+v; want it empty", q)
	}
}

func ruleNames(evs []pipeline.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Rule != "" {
			out = append(out, e.Rule)
		}
	}
	return out
}

// A rule's max_age holds back a notice about an old change; the record still
// changes, and the skip is counted.
func TestOldChangesUpdateTheRecordButNotifyNoOneAndAreCounted(t *testing.T) {
	yaml := `entity: dossier
key: [code]
fields:
  code:   { required: true }
  status: { type: int, required: true }
  name:   { }
  due:    { type: time, layout: yyyyMMddHHmmss, zone: UTC }
rules:
  - name: dossier.result_ready
    when: 'changed("status") && after.status == 9'
    max_age: 72h
    age_field: due
`
	f, _ := richFixture(t, 10, yaml)
	f.job.Map.SetClock(f.clock.Now) // 2026-11-27 02:00 UTC
	f.src.put("OLD", pipeline.Row{"status": "2", "due": "20261101000000"})
	f.src.put("NEW", pipeline.Row{"status": "2", "due": "20261126000000"})
	f.run(t)
	f.src.put("OLD", pipeline.Row{"status": "9", "due": "20261101000000"})
	f.src.put("NEW", pipeline.Row{"status": "9", "due": "20261126000000"})
	f.run(t)
	evs := outboxEvents(t, f)
	if got := fmt.Sprint(ruleEvents(evs)); got != "[NEW]" {
		t.Fatalf("notices for %s; want NEW only", got)
	}
	snap, _ := f.store.Snapshot(context.Background(), "motcua", "dossier", []string{"OLD"})
	if fmt.Sprint(snap["OLD"].Fields["status"]) != "9" {
		t.Fatalf("OLD = %v; want the record updated all the same", snap["OLD"].Fields)
	}
	if v := testutil.ToFloat64(f.job.Metrics.noticesSkipped.WithLabelValues("motcua", "dossier.result_ready", "too_old")); v != 1 {
		t.Fatalf("egov_notices_skipped_total = %v, want 1", v)
	}
}

// Reprocessing copes with rows the source can no longer find by their quarantined
// key, and keeps rows that have no key at all (they cannot be looked up).
func TestReprocessKeepsKeylessRowsAndSurvivesAChangedKey(t *testing.T) {
	f, _ := richFixture(t, 10, "")
	f.src.put("X", pipeline.Row{"status": "11"})
	f.src.put("", pipeline.Row{"status": "2"}) // no key: rejected as required
	f.run(t)
	if q, _ := f.store.Quarantined(context.Background(), "motcua", 0); len(q) != 2 {
		t.Fatalf("quarantine = %+v; want X and the keyless row", q)
	}
	// The agency changed X's code; the row is still bad.
	f.src.mu.Lock()
	f.src.rows["X"] = pipeline.Row{"code": "Y", "status": "mười một"}
	f.src.mu.Unlock()
	res, err := f.job.Reprocess(context.Background())
	if err != nil || res.StillBad != 2 || res.Gone != 1 {
		t.Fatalf("reprocess = %+v, %v; want both still bad and X's old key gone", res, err)
	}
	q, _ := f.store.Quarantined(context.Background(), "motcua", 0)
	keys := map[string]bool{}
	for _, e := range q {
		keys[e.RowKey] = true
	}
	if len(q) != 2 || !keys[""] || !keys["Y"] {
		t.Fatalf("quarantine after reprocess = %+v; want the keyless row kept and the row under its new key", q)
	}
}
