package pgtable

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

func TestBuildCreatesTheSchemaAndEventsTableWithTheirIndexes(t *testing.T) {
	_, base := testpg.Schema(t)
	schema := base + "_bi" // not there yet
	f := newFixture(t, func(o *Options) { o.Schema = schema })
	t.Cleanup(func() { f.db.Exec(`DROP SCHEMA IF EXISTS ` + quote(schema) + ` CASCADE`) })

	if !f.tableExists(t, "events") {
		t.Fatal("events table not created at build")
	}
	var idx []string
	rows, err := f.db.Query(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'events' ORDER BY indexname`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			t.Fatal(err)
		}
		idx = append(idx, def[strings.Index(def, " USING btree "):])
	}
	want := []string{" USING btree (agency, detected_at)", " USING btree (detected_at)", " USING btree (entity, key, version)",
		" USING btree (event_id)", " USING btree (seq)"}
	if strings.Join(idx, "|") != strings.Join(want, "|") {
		t.Fatalf("indexes = %q, want %q", idx, want)
	}
}

func TestReplicasStartingTogetherAllSucceed(t *testing.T) {
	dsn, base := testpg.Schema(t)
	schema := base + "_race"
	t.Cleanup(func() { testpg.Open(t, dsn).Exec(`DROP SCHEMA IF EXISTS ` + quote(schema) + ` CASCADE`) })

	const replicas = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*replicas)
	for i := 0; i < replicas; i++ {
		wg.Go(func() {
			o := NewOptions()
			o.DSN, o.Schema = dsn, schema
			s, err := New(context.Background(), pipeline.Env{Name: "bi"}, o)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			// and all create the same entity's table at once
			errs <- s.Deliver(context.Background(), event("dossier", "HS-1", 1))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestUnreachableServerDefersSetupAndDeliveryIsTransient(t *testing.T) {
	var logs bytes.Buffer
	o := NewOptions()
	o.DSN = "postgres://egov:s3cr3t-pw@127.0.0.1:1/bi?sslmode=disable&connect_timeout=2"
	s, err := New(context.Background(), pipeline.Env{Name: "bi", Logger: slog.New(slog.NewTextHandler(&logs, nil))}, o)
	if err != nil {
		t.Fatalf("build failed on an unreachable server: %v", err)
	}
	defer s.Close()
	err = s.Deliver(context.Background(), event("dossier", "HS-1", 1))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	for _, text := range []string{err.Error(), logs.String()} {
		if strings.Contains(text, "s3cr3t") {
			t.Fatalf("password leaked: %s", text)
		}
	}
	if !strings.Contains(logs.String(), "unreachable") {
		t.Fatalf("no warning logged: %s", logs.String())
	}
}

func TestServerThatRefusesFailsTheBuildWithoutLeakingThePassword(t *testing.T) {
	base := testpg.BaseDSN(t)
	dsn := strings.Replace(base, "/test?", "/no_such_db_egov?", 1)
	dsn = strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:s3cr3t-pw@", 1)
	if dsn == base || !strings.Contains(dsn, "s3cr3t-pw") {
		t.Skip("EGOV_TEST_PG_DSN has an unexpected shape")
	}
	o := NewOptions()
	o.DSN = dsn
	_, err := New(context.Background(), pipeline.Env{Name: "bi"}, o)
	if err == nil || !strings.Contains(err.Error(), `pgtable sink "bi"`) || !strings.Contains(err.Error(), "3D000") {
		t.Fatalf("err = %v, want the server's refusal (3D000) naming the sink", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("password leaked: %v", err)
	}
}

func TestMalformedDSNFailsTheBuildWithoutLeakingIt(t *testing.T) {
	o := NewOptions()
	o.DSN = "postgres://egov:s3cr3t-pw@db:notaport/bi"
	_, err := New(context.Background(), pipeline.Env{Name: "bi"}, o)
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "dsn") {
		t.Fatalf("err = %v, want a permanent dsn error", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("password leaked: %v", err)
	}
}

func TestRegisteredAsPgtable(t *testing.T) {
	spec, ok := pipeline.LookupSink("pgtable")
	if !ok {
		t.Fatal("pgtable is not registered")
	}
	if _, ok := spec.Config().(*Options); !ok {
		t.Fatalf("Config() = %T, want *Options", spec.Config())
	}
}
