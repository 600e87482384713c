package main

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// The end-to-end tests drive the real daemon against the real PostgreSQL, as the
// agency's database and as the state store, each test in a fresh schema.

const e2eMapping = `entity: dossier
key: [code]
fields:
  code:    { from: ma_ho_so, required: true }
  citizen: { from: chu_ho_so, required: true, mask: name }
  status:  { from: trang_thai, type: int, required: true, in: [1,2,3,4,5,6,7,8,9,10] }
`

type e2e struct {
	t      *testing.T
	dir    string
	dsn    string
	db     *sql.DB
	config string
	events string // the log sink's file
}

// newE2E creates the agency table in a fresh schema and writes a config that syncs
// it into the same schema's state store and a log file.
func newE2E(t *testing.T, batch int, lookback string) *e2e {
	t.Helper()
	dsn, _ := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	if _, err := db.Exec(`CREATE TABLE hoso (
		ma_ho_so text PRIMARY KEY,
		chu_ho_so text,
		trang_thai int,
		ngay_cap_nhat timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, dsn: dsn, db: db, config: filepath.Join(dir, "egov.yaml"), events: filepath.Join(dir, "events.jsonl")}
	write(t, filepath.Join(dir, "dossier.yaml"), e2eMapping)
	write(t, e.config, fmt.Sprintf(`store: { driver: postgres, dsn: %q }
sources:
  - name: motcua
    type: sql
    driver: postgres
    dsn: %q
    table: hoso
    cursor: { column: ngay_cap_nhat, key: ma_ho_so }
    batch_size: %d
    lag: 0s
    lookback: %s
    schedule: "@every 1s"
    agency: UBND-TEST
    mapping: dossier.yaml
sinks:
  - { name: events, type: log, path: events.jsonl }
routes:
  - { events: ["*"], to: [events] }
`, dsn, dsn, batch, lookback))
	return e
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *e2e) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// runOnce builds a daemon from the config and syncs once, like `run --once`.
func (e *e2e) runOnce() map[string]engine.RunStats {
	e.t.Helper()
	cfg, err := engine.LoadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	d, err := engine.New(ctx, cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		e.t.Fatal(err)
	}
	defer d.Close()
	st, err := d.RunOnce(ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// storedEvents returns every event in the state store, in commit order. A first
// sync's created events keep their fields in the snapshot row (lazy_seq) until the
// record changes; those a sink never failed on are the snapshot rows themselves
// (snapshot feeds: no events row). They are read from there, as the store does.
func (e *e2e) storedEvents() []pipeline.Event {
	e.t.Helper()
	type seqEvent struct {
		seq int64
		ev  pipeline.Event
	}
	var all []seqEvent
	// Snapshot rows keep values without names: [shape, v1, ...] in the order of
	// the shape's names (snapshot_shapes).
	shapes := map[int64][]string{}
	sr, err := e.db.Query(`SELECT id, names FROM snapshot_shapes`)
	if err != nil {
		e.t.Fatal(err)
	}
	for sr.Next() {
		var id int64
		var names []byte
		var list []string
		if err := sr.Scan(&id, &names); err != nil {
			e.t.Fatal(err)
		}
		if err := json.Unmarshal(names, &list); err != nil {
			e.t.Fatal(err)
		}
		shapes[id] = list
	}
	sr.Close()
	decode := func(fields []byte, into *map[string]any) {
		e.t.Helper()
		var vals []any
		if err := json.Unmarshal(fields, &vals); err != nil {
			if err := json.Unmarshal(fields, into); err != nil {
				e.t.Fatal(err)
			}
			return
		}
		names := shapes[int64(vals[0].(float64))]
		*into = map[string]any{}
		for i, n := range names {
			(*into)[n] = vals[i+1]
		}
	}
	rows, err := e.db.Query(`SELECT e.seq, e.payload, s.fields FROM events e
		LEFT JOIN snapshot s ON s.lazy_seq = e.seq ORDER BY e.seq`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var payload, fields []byte
		if err := rows.Scan(&seq, &payload, &fields); err != nil {
			e.t.Fatal(err)
		}
		var ev pipeline.Event
		if err := json.Unmarshal(payload, &ev); err != nil {
			e.t.Fatal(err)
		}
		if fields != nil {
			decode(fields, &ev.After)
		}
		all = append(all, seqEvent{seq, ev})
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	feed, err := e.db.Query(`SELECT s.lazy_seq, b.source, b.entity, s.key, s.hash, s.version, s.fields, b.agency, b.epoch, b.detected_at
		FROM snapshot s JOIN snapshot_events b ON s.lazy_seq BETWEEN b.lo AND b.hi
		WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = s.lazy_seq)`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer feed.Close()
	for feed.Next() {
		var seq int64
		var ev pipeline.Event
		var stored any
		var fields []byte
		if err := feed.Scan(&seq, &ev.Source, &ev.Entity, &ev.Key, &stored, &ev.Version, &fields, &ev.Agency, &ev.Epoch, &ev.DetectedAt); err != nil {
			e.t.Fatal(err)
		}
		// SQLite keeps a record's hex hash as its bytes (migration 0014).
		hash, ok := stored.(string)
		if b, isBlob := stored.([]byte); isBlob {
			hash, ok = hex.EncodeToString(b), true
		}
		if !ok {
			e.t.Fatalf("hash of feed row %d is a %T", seq, stored)
		}
		ev.Type, ev.Snapshot = pipeline.EventCreated, true
		ev.ID = pipeline.EventID(ev.Source, ev.Entity, ev.Key, ev.Version, ev.Type, hash)
		decode(fields, &ev.After)
		all = append(all, seqEvent{seq, ev})
	}
	if err := feed.Err(); err != nil {
		e.t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b seqEvent) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]pipeline.Event, len(all))
	for i, se := range all {
		out[i] = se.ev
	}
	return out
}

// logged returns the events the log sink wrote, in file order.
func (e *e2e) logged() []pipeline.Event {
	e.t.Helper()
	f, err := os.Open(e.events)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var out []pipeline.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev pipeline.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			// A SIGKILL can cut the last line short; the event is redelivered whole.
			continue
		}
		out = append(out, ev)
	}
	return out
}

func countBy(evs []pipeline.Event, f func(pipeline.Event) string) map[string]int {
	m := map[string]int{}
	for _, ev := range evs {
		m[f(ev)]++
	}
	return m
}

func TestSyncInitialThenIncremental(t *testing.T) {
	e := newE2E(t, 100, "0s")
	for i := 1; i <= 250; i++ {
		e.exec(`INSERT INTO hoso VALUES ($1, $2, 2, now() - interval '1 hour' + $3 * interval '1 second')`,
			fmt.Sprintf("HS-%04d", i), "Nguyễn Văn "+fmt.Sprint(i), i)
	}
	st := e.runOnce()["motcua"]
	if st.Rows != 250 || st.Events != 250 || st.Batches != 3 || !st.Snapshot {
		t.Fatalf("initial sync = %+v, want 250 rows, 250 events in 3 batches, as snapshot", st)
	}
	evs := e.storedEvents()
	for _, ev := range evs {
		if ev.Type != pipeline.EventCreated || !ev.Snapshot || ev.Version != 1 {
			t.Fatalf("initial event %+v: want created, snapshot, version 1", ev)
		}
	}

	// Inserts and updates after the snapshot are picked up, and only they.
	e.exec(`INSERT INTO hoso VALUES ('HS-9001', 'Trần Thị Mai', 1, now())`)
	e.exec(`UPDATE hoso SET trang_thai = 9, ngay_cap_nhat = now() WHERE ma_ho_so IN ('HS-0007', 'HS-0100')`)
	e.exec(`UPDATE hoso SET ngay_cap_nhat = now() WHERE ma_ho_so = 'HS-0008'`) // touched, not changed
	st = e.runOnce()["motcua"]
	if st.Events != 3 || st.Snapshot {
		t.Fatalf("incremental sync = %+v, want 3 events, not snapshot", st)
	}
	evs = e.storedEvents()[250:]
	got := map[string]pipeline.Event{}
	for _, ev := range evs {
		got[ev.Key] = ev
	}
	if ev := got["HS-9001"]; ev.Type != pipeline.EventCreated || ev.After["citizen"] != "Trần Thị Mai" {
		t.Errorf("insert: %+v", ev)
	}
	for _, k := range []string{"HS-0007", "HS-0100"} {
		ev := got[k]
		if ev.Type != pipeline.EventUpdated || ev.Version != 2 || strings.Join(ev.Changed, ",") != "status" ||
			fmt.Sprint(ev.Before["status"]) != "2" || fmt.Sprint(ev.After["status"]) != "9" {
			t.Errorf("update of %s: %+v", k, ev)
		}
	}
	if logged := e.logged(); len(logged) != 253 {
		t.Errorf("log sink has %d events, want 253", len(logged))
	}
}

func TestRowsSharingOneTimestampAcrossBatchesAreAllSyncedOnce(t *testing.T) {
	e := newE2E(t, 100, "0s")
	e.exec(`INSERT INTO hoso SELECT 'HS-' || lpad(g::text, 4, '0'), 'Lê Văn Tâm', 2, timestamptz '2026-11-27 08:00:00+07'
		FROM generate_series(1, 500) g`)
	st := e.runOnce()["motcua"]
	if st.Rows != 500 || st.Events != 500 {
		t.Fatalf("sync = %+v, want 500 rows and 500 events", st)
	}
	perKey := countBy(e.storedEvents(), func(ev pipeline.Event) string { return ev.Key })
	if len(perKey) != 500 {
		t.Fatalf("%d distinct keys, want 500", len(perKey))
	}
	for k, n := range perKey {
		if n != 1 {
			t.Errorf("key %s has %d events, want 1", k, n)
		}
	}
}

func TestLateRowInsideLookbackIsCaught(t *testing.T) {
	e := newE2E(t, 100, "10m")
	e.exec(`INSERT INTO hoso VALUES ('HS-0001', 'Phạm Văn Nam', 2, now() - interval '1 minute')`)
	e.runOnce()
	// A transaction that began before the cursor moved commits a row stamped with an
	// older time than the cursor, but within the lookback window.
	e.exec(`INSERT INTO hoso VALUES ('HS-0002', 'Võ Thị Hạnh', 2, now() - interval '5 minutes')`)
	st := e.runOnce()["motcua"]
	if st.Events != 1 {
		t.Fatalf("second sync = %+v, want exactly the late row's event", st)
	}
	evs := e.storedEvents()
	if last := evs[len(evs)-1]; last.Key != "HS-0002" || last.Type != pipeline.EventCreated {
		t.Fatalf("last event %+v, want HS-0002 created", last)
	}
	// Re-reading the window again finds nothing new.
	if st := e.runOnce()["motcua"]; st.Events != 0 {
		t.Fatalf("third sync created %d events from re-read rows, want 0", st.Events)
	}
}

func TestRestartResumesFromStoredCursorWithoutDuplicates(t *testing.T) {
	e := newE2E(t, 50, "2m")
	e.exec(`INSERT INTO hoso SELECT 'HS-' || lpad(g::text, 4, '0'), 'Đỗ Minh Khánh', 2, now() - interval '30 seconds'
		FROM generate_series(1, 120) g`)
	e.runOnce() // a fresh daemon each time: the cursor and snapshot come from the store
	e.exec(`INSERT INTO hoso SELECT 'HS-' || lpad(g::text, 4, '0'), 'Bùi Thu Trang', 1, now() FROM generate_series(121, 130) g`)
	e.exec(`UPDATE hoso SET trang_thai = 4, ngay_cap_nhat = now() WHERE ma_ho_so <= 'HS-0005'`)
	st := e.runOnce()["motcua"]
	if st.Events != 15 {
		t.Fatalf("after restart: %+v, want 15 events (10 created, 5 updated)", st)
	}
	byType := countBy(e.storedEvents(), func(ev pipeline.Event) string { return ev.Type })
	if byType[pipeline.EventCreated] != 130 || byType[pipeline.EventUpdated] != 5 {
		t.Fatalf("events by type %v, want 130 created and 5 updated", byType)
	}
	ids := countBy(e.logged(), func(ev pipeline.Event) string { return ev.ID })
	if len(ids) != 135 {
		t.Fatalf("log sink saw %d distinct events, want 135", len(ids))
	}
}

func TestValidateListsEveryMistakeWithItsLine(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "m.yaml"), e2eMapping)
	cfg := filepath.Join(dir, "bad.yaml")
	write(t, cfg, `store: { driver: sqlite, path: state.db }
sources:
  - name: motcua
    type: sql
    driver: sqlite
    dsn: agency.db
    table: HoSo
    cursor: { column: NgayCapNhat, key: MaHoSo }
    schedule: "every thirty seconds"
    mapping: m.yaml
    batchsize: 10
sinks:
  - { name: events, type: carrier-pigeon }
routes:
  - { events: ["*"], to: [events] }
`)
	var out, errOut strings.Builder
	code := run([]string{"validate", "-c", cfg}, &out, &errOut)
	if code == 0 {
		t.Fatalf("validate exited 0 on a bad config; stderr:\n%s", errOut.String())
	}
	msg := errOut.String()
	for _, want := range []string{
		cfg + ":9:15: sources[0].schedule: bad cron expression",
		cfg + `:11:5: sources[0].batchsize: unknown field "batchsize" (did you mean "batch_size"?)`,
		cfg + `:13:27: sinks[0].type: unknown sink type "carrier-pigeon"`,
		"3 errors",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("validate output lacks %q:\n%s", want, msg)
		}
	}

	write(t, cfg, strings.NewReplacer(`"every thirty seconds"`, `"@every 30s"`, "batchsize", "batch_size", "carrier-pigeon", "log").Replace(mustRead(t, cfg)))
	out.Reset()
	errOut.Reset()
	if code := run([]string{"validate", "-c", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("validate of the fixed config exited %d:\n%s", code, errOut.String())
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds or the deadline passes; it is how tests wait
// for another process without sleeping a guessed time.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunOnceSyncsDeliversAndExits(t *testing.T) {
	e := newE2E(t, 100, "0s")
	e.exec(`INSERT INTO hoso SELECT 'HS-' || g, 'Lý Thanh Tâm', 2, now() - interval '1 minute' FROM generate_series(1, 30) g`)
	var out, errOut strings.Builder
	if code := run([]string{"run", "--once", "-c", e.config}, &out, &errOut); code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, errOut.String())
	}
	if want := "motcua: 30 rows in 1 batches, 30 events, 0 quarantined"; !strings.Contains(out.String(), want) {
		t.Fatalf("summary %q lacks %q", out.String(), want)
	}
	if n := len(e.logged()); n != 30 {
		t.Fatalf("log sink holds %d events after --once, want 30", n)
	}
	out.Reset()
	if code := run([]string{"state", "-c", e.config}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "motcua") {
		t.Fatalf("state exited %d:\n%s%s", code, out.String(), errOut.String())
	}
}

func TestPreviewShowsRecordsEventsAndQuarantineWithoutCommitting(t *testing.T) {
	e := newE2E(t, 100, "0s")
	e.exec(`INSERT INTO hoso VALUES ('HS-1', 'Hồ Văn Sơn', 2, now() - interval '1 minute'), ('HS-2', 'Mai Thị Hà', 42, now() - interval '1 minute')`)
	var out, errOut strings.Builder
	if code := run([]string{"preview", "-c", e.config, "--source", "motcua", "--limit", "10"}, &out, &errOut); code != 0 {
		t.Fatalf("preview exited %d: %s", code, errOut.String())
	}
	got := out.String()
	// Nothing synced yet: a run would take these rows as its first sync, so they are
	// snapshot records (nobody is told about the past), as the run's own detection
	// says; the citizen's name is masked.
	if strings.Contains(got, "Hồ Văn Sơn") {
		t.Errorf("preview shows the citizen's name unmasked:\n%s", got)
	}
	for _, want := range []string{"HS-1", "created (first sync: no notice)", "HS-2", "quarantine", "status (column trang_thai): value 42 is not one of", "2 rows read, 1 events, 1 quarantined; nothing was committed"} {
		if !strings.Contains(got, want) {
			t.Errorf("preview output lacks %q:\n%s", want, got)
		}
	}
	out.Reset()
	if code := run([]string{"preview", "-c", e.config, "--source", "motcua", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("preview --json exited %d: %s", code, errOut.String())
	}
	var rows []struct {
		RowKey     string `json:"row_key"`
		Quarantine string `json:"quarantine"`
		Events     []pipeline.Event
	}
	if err := json.Unmarshal([]byte(out.String()), &rows); err != nil || len(rows) != 2 || rows[0].Events[0].Type != "created" || !rows[0].Events[0].Snapshot || rows[1].Quarantine == "" {
		t.Fatalf("preview --json = %v (%v):\n%s", rows, err, out.String())
	}
	if n := e.count(`SELECT count(*) FROM events`); n > 0 {
		t.Fatalf("preview committed %d events", n)
	}
	if _, err := os.Stat(e.events); err == nil {
		t.Fatal("preview delivered to the log sink")
	}

	// After the first sync, a changed row is an update, compared with the stored
	// snapshot exactly as the next run will compare it.
	e.runOnce()
	e.exec(`UPDATE hoso SET trang_thai = 4, ngay_cap_nhat = now() - interval '1 minute' WHERE ma_ho_so = 'HS-1'`)
	out.Reset()
	if code := run([]string{"preview", "-c", e.config, "--source", "motcua", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("preview --json exited %d: %s", code, errOut.String())
	}
	rows = nil
	if err := json.Unmarshal([]byte(out.String()), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("preview --json after the first sync = %+v (%v):\n%s", rows, err, out.String())
	}
	for _, r := range rows { // HS-1 now comes last in cursor order
		if r.RowKey == "HS-1" && (len(r.Events) != 1 || r.Events[0].Type != "updated" || r.Events[0].Version != 2 || r.Events[0].Snapshot) {
			t.Fatalf("HS-1 after the first sync previews as %+v, want one update to version 2", r.Events)
		}
	}
}

// `state reconcile` lists a table's keys now: the records whose rows were deleted
// get deleted events, delivered by the next run, and the action is audited.
func TestStateReconcileDeletesRecordsWhoseRowsAreGone(t *testing.T) {
	e := newE2E(t, 100, "0s")
	e.exec(`INSERT INTO hoso SELECT 'HS-' || g, 'Ngô Thị Yến', 2, now() - interval '1 minute' FROM generate_series(1, 5) g`)
	e.runOnce()
	e.exec(`DELETE FROM hoso WHERE ma_ho_so IN ('HS-2', 'HS-4')`)
	if out := e.cli(0, "state", "reconcile", "-c", e.config, "motcua"); !strings.Contains(out, "motcua: 3 keys listed in 1 pages, 2 records gone") {
		t.Fatalf("state reconcile said %q", out)
	}
	e.runOnce()
	var deleted []string
	for _, ev := range e.logged() {
		if ev.Type == pipeline.EventDeleted {
			deleted = append(deleted, fmt.Sprintf("%s v%d %v", ev.Key, ev.Version, ev.Before["citizen"]))
		}
	}
	if strings.Join(deleted, ", ") != "HS-2 v2 Ngô Thị Yến, HS-4 v2 Ngô Thị Yến" {
		t.Fatalf("deleted events delivered: %v", deleted)
	}
	if out := e.cli(0, "state", "audit", "-c", e.config); !strings.Contains(out, "reconcile") || !strings.Contains(out, "source motcua: 3 keys") {
		t.Fatalf("audit log lacks the reconcile:\n%s", out)
	}
	e.cli(1, "state", "reconcile", "-c", e.config, "nosuch")
}
