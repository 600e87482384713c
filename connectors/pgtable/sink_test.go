package pgtable

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

func TestStaleRedeliveryDoesNotRollStateBack(t *testing.T) {
	f := newFixture(t)
	v1, v2 := event("dossier", "HS-1", 1), event("dossier", "HS-1", 2)
	f.deliver(t, v1, v2, v1) // v1 again: a redelivery after a crash

	r, ok := f.state(t, "dossier", "HS-1")
	if !ok {
		t.Fatal("no state row for HS-1")
	}
	if r.Version != 2 || status(r) != "2" || r.Deleted || !r.UpdatedAt.Equal(v2.DetectedAt) ||
		r.Source != "motcua" || r.Agency != "UBND-CG" {
		t.Fatalf("state = %+v, want version 2 with v2's fields", r)
	}
	if n := f.count(t, "events"); n != 2 {
		t.Fatalf("events table holds %d rows, want 2", n)
	}
}

func TestOutOfOrderArrivalEndsAtTheNewestVersion(t *testing.T) {
	f := newFixture(t)
	f.deliver(t, event("dossier", "HS-1", 3), event("dossier", "HS-1", 1), event("dossier", "HS-1", 2))
	if r, _ := f.state(t, "dossier", "HS-1"); r.Version != 3 || status(r) != "3" {
		t.Fatalf("state = %+v, want version 3", r)
	}
}

// A state store rebuilt from nothing restarts versions at 1 under a later epoch:
// its events are news, not stale, and a store restored from an older backup (an
// earlier epoch) cannot roll the row back.
func TestARebuiltStoreIsNotFrozenOutByTheVersionGuard(t *testing.T) {
	f := newFixture(t)
	old := event("dossier", "HS-1", 5)
	old.Epoch = 1_700_000_000_000_000
	f.deliver(t, old)
	rebuilt := event("dossier", "HS-1", 1)
	rebuilt.Epoch = old.Epoch + 1
	rebuilt.After["status"] = int64(9)
	f.deliver(t, rebuilt)
	if r, _ := f.state(t, "dossier", "HS-1"); r.Version != 1 || status(r) != "9" {
		t.Fatalf("state = %+v; want the rebuilt store's version 1 with status 9", r)
	}
	f.deliver(t, old) // redelivered from the old epoch
	if r, _ := f.state(t, "dossier", "HS-1"); r.Version != 1 || status(r) != "9" {
		t.Fatalf("an older epoch rolled the row back: %+v", r)
	}
}

func TestDeletedEventMarksTheRowDeletedAndKeepsItsLastFields(t *testing.T) {
	f := newFixture(t)
	f.deliver(t, event("dossier", "HS-1", 1), event("dossier", "HS-1", 2), deleted("dossier", "HS-1", 3))
	r, _ := f.state(t, "dossier", "HS-1")
	if !r.Deleted || r.Version != 3 || status(r) != "2" {
		t.Fatalf("state = %+v, want deleted at version 3 with the fields of version 2", r)
	}

	f.deliver(t, event("dossier", "HS-1", 2)) // stale: must not undelete
	if r, _ := f.state(t, "dossier", "HS-1"); !r.Deleted || r.Version != 3 {
		t.Fatalf("a stale update undeleted the row: %+v", r)
	}

	back := event("dossier", "HS-1", 4) // the record reappears
	back.Type = pipeline.EventCreated
	f.deliver(t, back)
	if r, _ := f.state(t, "dossier", "HS-1"); r.Deleted || r.Version != 4 || status(r) != "4" {
		t.Fatalf("state = %+v, want live at version 4", r)
	}
}

func TestDeletionOfAnUnseenRecordIsStored(t *testing.T) {
	f := newFixture(t)
	f.deliver(t, deleted("dossier", "HS-9", 5))
	if r, ok := f.state(t, "dossier", "HS-9"); !ok || !r.Deleted || r.Version != 5 || status(r) != "4" {
		t.Fatalf("state = %+v (found %v), want deleted at version 5 with its last fields", r, ok)
	}
}

func TestEachEntityGetsItsOwnStateTable(t *testing.T) {
	f := newFixture(t)
	f.deliver(t, event("dossier", "HS-1", 1), event("outage", "CG-0412", 1), event("outage", "CG-0413", 1))
	if n := f.count(t, "current_dossier"); n != 1 {
		t.Errorf("current_dossier holds %d rows, want 1", n)
	}
	if n := f.count(t, "current_outage"); n != 2 {
		t.Errorf("current_outage holds %d rows, want 2", n)
	}
	if n := f.count(t, "events"); n != 3 {
		t.Errorf("events holds %d rows, want 3", n)
	}
}

func TestStateTablePrefixIsConfigurable(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.StateTablePrefix = "state_"; o.EventsTable = "feed" })
	f.deliver(t, event("dossier", "HS-1", 1))
	if !f.tableExists(t, "state_dossier") || !f.tableExists(t, "feed") || f.tableExists(t, "current_dossier") {
		t.Fatal("tables not named from the options")
	}
}

func TestSameKeyFromTwoSourcesKeepsTwoRows(t *testing.T) {
	f := newFixture(t)
	a, b := event("dossier", "HS-1", 5), event("dossier", "HS-1", 1)
	b.Source, b.ID = "motcua-benluc", pipeline.EventID("motcua-benluc", "dossier", "HS-1", 1, b.Type, "")
	f.deliver(t, a, b)
	if n := f.count(t, "current_dossier"); n != 2 {
		t.Fatalf("current_dossier holds %d rows, want one per source", n)
	}
}

func TestRuleEventDoesNotRewriteState(t *testing.T) {
	f := newFixture(t)
	change := event("dossier", "HS-1", 2)
	rule := event("dossier", "HS-1", 2)
	rule.Type, rule.Rule = "dossier.result_ready", "dossier.result_ready"
	rule.After = map[string]any{"code": "HS-1", "status": "rule-copy"}
	rule.Message = &pipeline.Message{Template: "result_ready", Text: "Hồ sơ HS-1 đã có kết quả", Phone: "84901234567"}
	rule.ID = pipeline.EventID(rule.Source, rule.Entity, rule.Key, rule.Version, rule.Type, "")
	f.deliver(t, change, rule)

	if r, _ := f.state(t, "dossier", "HS-1"); status(r) != "2" {
		t.Fatalf("the rule event rewrote state: %+v", r)
	}
	got := f.received(t)
	if len(got) != 2 || got[1].Rule != "dossier.result_ready" || got[1].Message == nil || got[1].Message.Text != rule.Message.Text {
		t.Fatalf("events = %+v", got)
	}
}

func TestEventWithoutFieldsLeavesStateAlone(t *testing.T) {
	f := newFixture(t)
	ev := event("dossier", "HS-1", 1)
	ev.After = nil
	f.deliver(t, ev)
	if f.tableExists(t, "current_dossier") {
		t.Fatal("a state table was created for an event without fields")
	}
	if n := f.count(t, "events"); n != 1 {
		t.Fatalf("events holds %d rows, want 1", n)
	}
}

func TestNULAndInvalidUTF8AreStoredAsReplacementCharacters(t *testing.T) {
	f := newFixture(t)
	ev := event("dossier", "HS\x00-1", 1)
	ev.After = map[string]any{
		"citizen":    "Nguyễn\x00Văn An",
		"bad\x00key": "ok",
		"bytes":      "Đ\xffức",
		"literal":    `C:\u0000\path`, // the six characters \u0000, not a NUL
	}
	ev.Agency = "UBND\x00CG"
	f.deliver(t, ev)

	got := f.received(t)
	if len(got) != 1 {
		t.Fatalf("events = %d, want 1", len(got))
	}
	g := got[0]
	want := map[string]any{"citizen": "Nguyễn\uFFFDVăn An", "bad\uFFFDkey": "ok", "bytes": "Đ\uFFFDức", "literal": `C:\u0000\path`}
	for k, v := range want {
		if g.After[k] != v {
			t.Errorf("after[%q] = %q, want %q", k, g.After[k], v)
		}
	}
	if g.Key != "HS\uFFFD-1" || g.Agency != "UBND\uFFFDCG" {
		t.Errorf("key %q agency %q", g.Key, g.Agency)
	}
	if _, ok := f.state(t, "dossier", "HS\uFFFD-1"); !ok {
		t.Error("no state row under the cleaned key")
	}
}

func TestInvalidEntityNameIsPermanent(t *testing.T) {
	f := newFixture(t)
	for _, entity := range []string{"Dossier", "ho-so", "", `x"; DROP TABLE events; --`, "hồ_sơ", strings.Repeat("e", 60)} {
		err := f.sink.Deliver(context.Background(), event(entity, "K", 1))
		if !pipeline.IsPermanent(err) {
			t.Errorf("entity %q: err = %v, want permanent", entity, err)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", entity)) || !strings.Contains(err.Error(), `pgtable sink "bi"`) {
			t.Errorf("entity %q: error does not name the entity and the sink: %v", entity, err)
		}
	}
	if n := f.count(t, "events"); n != 0 {
		t.Fatalf("refused events were stored: %d rows", n)
	}
}

func TestEntityThatWouldNameTheEventsTableIsPermanent(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.EventsTable = "current_events" })
	if err := f.sink.Deliver(context.Background(), event("events", "K", 1)); !pipeline.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
}

func TestEventWithoutIDIsPermanent(t *testing.T) {
	f := newFixture(t)
	ev := event("dossier", "HS-1", 1)
	ev.ID = ""
	if err := f.sink.Deliver(context.Background(), ev); !pipeline.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	if err := f.sink.Deliver(context.Background(), nil); !pipeline.IsPermanent(err) {
		t.Fatalf("nil event: err = %v, want permanent", err)
	}
}

func TestValueJSONCannotHoldIsPermanent(t *testing.T) {
	f := newFixture(t)
	ev := event("dossier", "HS-1", 1)
	ev.After["ratio"] = math.NaN()
	if err := f.sink.Deliver(context.Background(), ev); !pipeline.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
}

func TestDataTheServerRejectsIsPermanentWithItsCode(t *testing.T) {
	f := newFixture(t)
	// A key too large for its btree index entry: 54000 program_limit_exceeded.
	// Random text, because TOAST would compress a repetitive one below the limit.
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for b.Len() < 12000 {
		b.WriteByte(byte('a' + rng.IntN(26)))
	}
	err := f.sink.Deliver(context.Background(), event("dossier", b.String(), 1))
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "(54000)") {
		t.Fatalf("err = %v, want permanent with SQLSTATE 54000", err)
	}
	if len(err.Error()) > 1000 {
		t.Fatalf("the error quotes the whole key (%d bytes)", len(err.Error()))
	}
}

func TestDroppedTableIsCreatedAgainOnTheNextAttempt(t *testing.T) {
	f := newFixture(t)
	f.deliver(t, event("dossier", "HS-1", 1))
	if _, err := f.db.Exec(`DROP TABLE ` + quote(f.schema) + `.current_dossier`); err != nil {
		t.Fatal(err)
	}
	err := f.sink.Deliver(context.Background(), event("dossier", "HS-1", 2))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("first delivery after the drop: err = %v, want transient", err)
	}
	f.deliver(t, event("dossier", "HS-1", 2)) // the dispatcher's retry
	if r, _ := f.state(t, "dossier", "HS-1"); r.Version != 2 {
		t.Fatalf("state = %+v, want version 2", r)
	}
}

// The race the version guard exists for: many writers, one key, any order.
func TestConcurrentDeliveriesEndAtEachKeysGreatestVersion(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxOpenConns = 8 })
	const keys, versions, workers = 20, 10, 8
	var evs []*pipeline.Event
	for k := 0; k < keys; k++ {
		for v := int64(1); v <= versions; v++ {
			ev := event("dossier", fmt.Sprintf("HS-%02d", k), v)
			evs = append(evs, ev, ev) // every event twice: redelivery races delivery
		}
	}
	rand.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })

	work := make(chan *pipeline.Event)
	errs := make(chan error, len(evs))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for ev := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := f.sink.Deliver(ctx, ev); err != nil {
					errs <- err
				}
				cancel()
			}
		})
	}
	for _, ev := range evs {
		work <- ev
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("HS-%02d", k)
		if r, _ := f.state(t, "dossier", key); r.Version != versions || status(r) != fmt.Sprint(versions) {
			t.Errorf("%s: state = %+v, want version %d", key, r, versions)
		}
	}
	if n := f.count(t, "events"); n != keys*versions {
		t.Fatalf("events holds %d rows, want %d", n, keys*versions)
	}
}

// Tables created by a build before events carried the store's epoch, or before
// state rows kept when they were deleted, are upgraded in place on the sink's
// first use.
func TestTablesWithoutTheEpochColumnAreUpgraded(t *testing.T) {
	dsn, schema := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	for _, stmt := range append(eventsDDL(schema, "events"), stateDDL(schema, "current_dossier")...) {
		stmt = strings.Replace(stmt, "epoch        bigint NOT NULL DEFAULT 0,", "", 1)
		stmt = strings.Replace(stmt, "epoch      bigint NOT NULL DEFAULT 0,", "", 1)
		stmt = strings.Replace(stmt, "deleted_at timestamptz,", "", 1)
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("old DDL: %v", err)
		}
	}
	o := NewOptions()
	o.DSN, o.Schema = dsn, schema
	s, err := New(context.Background(), pipeline.Env{Name: "bi"}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := event("dossier", "HS-1", 1)
	ev.Epoch = 42
	if err := s.Deliver(context.Background(), ev); err != nil {
		t.Fatalf("deliver into upgraded tables: %v", err)
	}
	var epoch int64
	if err := db.QueryRow(`SELECT epoch FROM ` + quote(schema) + `.current_dossier WHERE key = 'HS-1'`).Scan(&epoch); err != nil || epoch != 42 {
		t.Fatalf("state epoch = %d, %v; want 42", epoch, err)
	}
	gone := deleted("dossier", "HS-1", 2)
	gone.Epoch = 42
	if err := s.Deliver(context.Background(), gone); err != nil {
		t.Fatalf("deliver a deletion into upgraded tables: %v", err)
	}
	var at sql.NullTime
	if err := db.QueryRow(`SELECT deleted_at FROM ` + quote(schema) + `.current_dossier WHERE key = 'HS-1'`).Scan(&at); err != nil ||
		!at.Time.Equal(gone.DetectedAt) {
		t.Fatalf("deleted_at = %v, %v; want %v", at, err, gone.DetectedAt)
	}
}

// A deletion marks the record's state row deleted, when it was detected, and
// keeps its last known fields; a record that comes back is live again. Both the
// one-event and the batch paths.
func TestDeletionMarksTheStateRowDeletedAt(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			f := newFixture(t)
			send := func(ev *pipeline.Event) {
				t.Helper()
				if !batch {
					f.deliver(t, ev)
					return
				}
				for _, err := range f.sink.DeliverBatch(context.Background(), []*pipeline.Event{ev}) {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			deletedAt := func() sql.NullTime {
				t.Helper()
				var at sql.NullTime
				if err := f.db.QueryRow(`SELECT deleted_at FROM ` + quote(f.schema) + `.current_dossier WHERE key = 'HS-9'`).Scan(&at); err != nil {
					t.Fatal(err)
				}
				return at
			}
			send(event("dossier", "HS-9", 1))
			if at := deletedAt(); at.Valid {
				t.Fatalf("a live row has deleted_at %v", at.Time)
			}
			gone := deleted("dossier", "HS-9", 2)
			send(gone)
			r, _ := f.state(t, "dossier", "HS-9")
			if at := deletedAt(); !r.Deleted || !at.Valid || !at.Time.Equal(gone.DetectedAt) || r.Fields["code"] != "HS-9" {
				t.Fatalf("after the deletion: %+v, deleted_at %v; want deleted at %v with its last fields", r, at, gone.DetectedAt)
			}
			back := event("dossier", "HS-9", 3)
			back.Type, back.Before, back.Changed = pipeline.EventCreated, nil, nil
			send(back)
			if r, _ := f.state(t, "dossier", "HS-9"); r.Deleted || deletedAt().Valid {
				t.Fatalf("a record that came back is still deleted: %+v", r)
			}
		})
	}
}
