package pgtable

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// fixture is a sink on a fresh schema of the test server, plus a plain connection
// to read what it wrote. Both are closed, and the schema dropped, when the test ends.
type fixture struct {
	sink   *Sink
	db     *sql.DB
	schema string
}

func newFixture(t testing.TB, tune ...func(*Options)) fixture {
	t.Helper()
	dsn, schema := testpg.Schema(t)
	o := NewOptions()
	o.DSN, o.Schema = dsn, schema
	for _, f := range tune {
		f(o)
	}
	s, err := New(context.Background(), pipeline.Env{Name: "bi"}, o)
	if err != nil {
		t.Fatalf("build sink: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return fixture{sink: s, db: testpg.Open(t, dsn), schema: o.Schema}
}

func (f fixture) deliver(t testing.TB, evs ...*pipeline.Event) {
	t.Helper()
	for _, ev := range evs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f.sink.Deliver(ctx, ev)
		cancel()
		if err != nil {
			t.Fatalf("deliver %s (%s v%d): %v", ev.Type, ev.Key, ev.Version, err)
		}
	}
}

// received is what a consumer of the events table reads, in arrival order. It is
// the suite's Received and the shape of a dashboard's event-feed query.
func (f fixture) received(t testing.TB) []pipeline.Event {
	t.Helper()
	rows, err := f.db.Query(`SELECT event_id, type, coalesce(rule, ''), source, entity, key, coalesce(agency, ''),
		version, snapshot, changed, before, after, message, detected_at
	FROM ` + quote(f.schema) + `.events ORDER BY seq`)
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	defer rows.Close()
	var out []pipeline.Event
	for rows.Next() {
		var ev pipeline.Event
		var changed pq.StringArray
		var before, after, message []byte
		if err := rows.Scan(&ev.ID, &ev.Type, &ev.Rule, &ev.Source, &ev.Entity, &ev.Key, &ev.Agency,
			&ev.Version, &ev.Snapshot, &changed, &before, &after, &message, &ev.DetectedAt); err != nil {
			t.Fatalf("scan event: %v", err)
		}
		ev.Changed = changed
		ev.Before = decodeJSON[map[string]any](t, before)
		ev.After = decodeJSON[map[string]any](t, after)
		if message != nil {
			m := decodeJSON[pipeline.Message](t, message)
			ev.Message = &m
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read events: %v", err)
	}
	return out
}

// stateRow is one row of a current-state table.
type stateRow struct {
	Source, Agency string
	Version        int64
	Fields         map[string]any
	UpdatedAt      time.Time
	Deleted        bool
}

// state reads the state row of (entity, key); ok is false when there is none.
func (f fixture) state(t testing.TB, entity, key string) (r stateRow, ok bool) {
	t.Helper()
	var fields []byte
	err := f.db.QueryRow(`SELECT source, coalesce(agency, ''), version, fields, updated_at, deleted
	FROM `+quote(f.schema)+`.`+quote("current_"+entity)+` WHERE key = $1`, key).
		Scan(&r.Source, &r.Agency, &r.Version, &fields, &r.UpdatedAt, &r.Deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false
	}
	if err != nil {
		t.Fatalf("read state of %s %s: %v", entity, key, err)
	}
	r.Fields = decodeJSON[map[string]any](t, fields)
	return r, true
}

// tableExists reports whether the fixture's schema has the table.
func (f fixture) tableExists(t testing.TB, table string) bool {
	t.Helper()
	var ok bool
	if err := f.db.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, quote(f.schema)+"."+quote(table)).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func (f fixture) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(`SELECT count(*) FROM ` + quote(f.schema) + `.` + quote(table)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// decodeJSON decodes b, keeping numbers exact; nil decodes to the zero value.
func decodeJSON[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if b == nil {
		return v
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// event builds a dossier-like event of entity for key at version, with status =
// version so a test can tell which version a state row holds.
func event(entity, key string, version int64) *pipeline.Event {
	typ := pipeline.EventUpdated
	if version == 1 {
		typ = pipeline.EventCreated
	}
	ev := &pipeline.Event{
		Type: typ, Source: "motcua", Entity: entity, Key: key, Agency: "UBND-CG", Version: version,
		After:      map[string]any{"code": key, "status": version},
		DetectedAt: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).Add(time.Duration(version) * time.Minute),
	}
	if version > 1 {
		ev.Before = map[string]any{"code": key, "status": version - 1}
		ev.Changed = []string{"status"}
	}
	ev.ID = pipeline.EventID(ev.Source, entity, key, version, typ, "")
	return ev
}

// deleted builds the deletion of key at version, carrying the record as it was.
func deleted(entity, key string, version int64) *pipeline.Event {
	ev := &pipeline.Event{
		Type: pipeline.EventDeleted, Source: "motcua", Entity: entity, Key: key, Agency: "UBND-CG", Version: version,
		Before:     map[string]any{"code": key, "status": version - 1},
		DetectedAt: time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC),
	}
	ev.ID = pipeline.EventID(ev.Source, entity, key, version, ev.Type, "")
	return ev
}

func status(r stateRow) string {
	if n, ok := r.Fields["status"].(json.Number); ok {
		return n.String()
	}
	return "<none>"
}
