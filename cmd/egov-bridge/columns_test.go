package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

// A mapped column the source does not return stops the source, visibly, until it
// is fixed; nothing is committed meanwhile.
func TestMissingColumnStopsTheSourceUntilItIsFixed(t *testing.T) {
	e := newE2E(t, 100, "0s")
	e.exec(`INSERT INTO hoso VALUES ('HS-1', 'Vũ Minh Quân', 2, now() - interval '1 minute')`)
	// The agency renamed the column the mapping reads.
	e.exec(`ALTER TABLE hoso RENAME COLUMN chu_ho_so TO ten_chu_ho_so`)

	cfg, err := engine.LoadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Listen = "127.0.0.1:0"
	d, err := engine.New(context.Background(), cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + d.HTTPAddr() + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, 20*time.Second, "the HTTP server", func() bool { return d.HTTPAddr() != "" })
	waitFor(t, 20*time.Second, "/readyz to report the stopped source", func() bool { code, _ := get("/readyz"); return code == http.StatusServiceUnavailable })
	code, body := get("/readyz")
	for _, want := range []string{"dossier.yaml:", `field "citizen" reads column "chu_ho_so"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz %d %q does not name %s", code, body, want)
		}
	}
	if _, m := get("/metrics"); !strings.Contains(m, `egov_source_stopped{source="motcua"} 1`) {
		t.Error("/metrics does not show the stopped source")
	}
	var out, errOut strings.Builder
	if run([]string{"state", "-c", e.config}, &out, &errOut); !strings.Contains(out.String(), "FAILED") ||
		!strings.Contains(out.String(), `reads column "chu_ho_so"`) {
		t.Errorf("state does not show the failure:\n%s%s", out.String(), errOut.String())
	}
	if evs := e.storedEvents(); len(evs) != 0 {
		t.Fatalf("a stopped source committed %d events", len(evs))
	}

	// The agency puts the column back: the next run syncs, and the daemon is ready.
	e.exec(`ALTER TABLE hoso RENAME COLUMN ten_chu_ho_so TO chu_ho_so`)
	waitFor(t, 20*time.Second, "/readyz after the fix", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })
	waitFor(t, 20*time.Second, "the event after the fix", func() bool { return len(e.storedEvents()) == 1 })
	if _, m := get("/metrics"); !strings.Contains(m, `egov_source_stopped{source="motcua"} 0`) {
		t.Error("/metrics still shows the source stopped")
	}
}

// PostgreSQL folds unquoted names to lower case: a mapping that spells a column with
// capitals is told the exact name to write, not read as NULL or guessed.
func TestColumnThatDiffersOnlyInCaseIsReportedWithTheNameToWrite(t *testing.T) {
	e := newE2E(t, 100, "0s")
	e.exec(`INSERT INTO hoso VALUES ('HS-1', 'Vũ Minh Quân', 2, now() - interval '1 minute')`)
	write(t, e.dir+"/dossier.yaml", strings.Replace(e2eMapping, "from: chu_ho_so", "from: Chu_Ho_So", 1))
	cfg, err := engine.LoadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	d, err := engine.New(context.Background(), cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.RunOnce(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), `the source has "chu_ho_so", which differs only in case`) {
		t.Fatalf("run = %v; want the exact name to write", err)
	}
}
