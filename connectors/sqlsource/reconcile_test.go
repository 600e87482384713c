package sqlsource

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/testmysql"
	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// reconcileTable is an agency table of n dossiers for the reconcile test:
// db, the source reading it, and the SQL that deletes the rows of some ids.
type reconcileTable struct {
	db     *sql.DB
	src    *Source
	delete func(ids []int) string
}

const reconcileRows, reconcilePage = 10_000, 500

func reconcileTables(t *testing.T) map[string]func(t *testing.T) reconcileTable {
	return map[string]func(t *testing.T) reconcileTable{
		"sqlite": func(t *testing.T) reconcileTable {
			dir, db := sqliteTable(t,
				`CREATE TABLE items (id INTEGER PRIMARY KEY, ma TEXT NOT NULL UNIQUE, updated_at DATETIME NOT NULL, payload TEXT NOT NULL)`,
				`WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < `+fmt.Sprint(reconcileRows)+`)
				 INSERT INTO items SELECT n, printf('HS-%05d', n), '2026-11-01 08:00:00', 'hồ sơ ' || n FROM seq`)
			src := sqliteSource(t, dir, func(o *Options) { o.Cursor.Key = "ma" })
			return reconcileTable{db: db, src: src, delete: deleteIn}
		},
		"postgres": func(t *testing.T) reconcileTable {
			dsn, schema := testpg.Schema(t)
			db := testpg.Open(t, dsn)
			mustExec(t, db, `CREATE TABLE items (id bigint PRIMARY KEY, ma text NOT NULL UNIQUE, updated_at timestamp NOT NULL, payload text NOT NULL)`)
			mustExec(t, db, `INSERT INTO items SELECT n, 'HS-' || lpad(n::text, 5, '0'), '2026-11-01 08:00:00', 'hồ sơ ' || n
				FROM generate_series(1, `+fmt.Sprint(reconcileRows)+`) n`)
			o := NewOptions()
			o.Driver, o.DSN, o.Table = "postgres", dsn, schema+".items"
			o.Cursor = CursorOptions{Column: "updated_at", Key: "ma"}
			return reconcileTable{db: db, src: openSource(t, pipeline.Env{}, o), delete: deleteIn}
		},
		"mysql": func(t *testing.T) reconcileTable {
			dsn, _ := testmysql.Database(t)
			db := testmysql.Open(t, dsn)
			mustExec(t, db, "CREATE TABLE items (id bigint PRIMARY KEY, ma varchar(20) NOT NULL UNIQUE, updated_at datetime NOT NULL, payload text NOT NULL)")
			// MariaDB caps recursive CTEs at 1000 iterations: count with digits.
			mustExec(t, db, "CREATE TABLE d (n int)")
			mustExec(t, db, "INSERT INTO d VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)")
			mustExec(t, db, `INSERT INTO items SELECT n, CONCAT('HS-', LPAD(n, 5, '0')), '2026-11-01 08:00:00', CONCAT('hồ sơ ', n)
				FROM (SELECT 1 + a.n + 10 * b.n + 100 * c.n + 1000 * e.n AS n FROM d a, d b, d c, d e) seq WHERE n <= `+fmt.Sprint(reconcileRows))
			o := NewOptions()
			o.Driver, o.DSN, o.Table = "mysql", dsn, "items"
			o.Cursor = CursorOptions{Column: "updated_at", Key: "ma"}
			return reconcileTable{db: db, src: openSource(t, pipeline.Env{}, o), delete: deleteIn}
		},
	}
}

// deleteIn is the DELETE of the rows with the given ids.
func deleteIn(ids []int) string {
	q := "DELETE FROM items WHERE id IN ("
	for i, id := range ids {
		if i > 0 {
			q += ", "
		}
		q += fmt.Sprint(id)
	}
	return q + ")"
}

// pagedLister watches the source's key pages and the store's pages of unseen
// keys: neither side of the comparison may be read whole.
type pagedLister struct {
	*Source
	mu       sync.Mutex
	pages    int
	maxPage  int
	maxLimit int
}

func (p *pagedLister) ReadKeys(ctx context.Context, cols []string, pos pipeline.Position, limit int, out pipeline.Emitter) (pipeline.Position, bool, error) {
	n := &countingEmitter{Emitter: out}
	next, done, err := p.Source.ReadKeys(ctx, cols, pos, limit, n)
	p.mu.Lock()
	p.pages++
	p.maxPage, p.maxLimit = max(p.maxPage, n.n), max(p.maxLimit, limit)
	p.mu.Unlock()
	return next, done, err
}

type countingEmitter struct {
	pipeline.Emitter
	n int
}

func (c *countingEmitter) Emit(r pipeline.Row) error { c.n++; return c.Emitter.Emit(r) }

type pagedStore struct {
	store.Store
	mu      sync.Mutex
	maxSeen int // most keys marked seen at once
	maxPage int // most live keys walked at once
}

func (s *pagedStore) MarkSeen(ctx context.Context, source, entity, pass string, keys []string) error {
	s.mu.Lock()
	s.maxSeen = max(s.maxSeen, len(keys))
	s.mu.Unlock()
	return s.Store.MarkSeen(ctx, source, entity, pass, keys)
}

func (s *pagedStore) Walk(ctx context.Context, source, entity, pass, after string, limit int) ([]store.KeyState, error) {
	page, err := s.Store.Walk(ctx, source, entity, pass, after, limit)
	s.mu.Lock()
	s.maxPage = max(s.maxPage, len(page))
	s.mu.Unlock()
	return page, err
}

const reconcileMapping = `entity: dossier
key: [code]
fields:
  code:    { from: ma, required: true, transform: [trim, upper] }
  payload: { required: true }
rules:
  - name: dossier.withdrawn
    when: 'type == "deleted"'
`

// A nightly reconcile of a 10,000-row table from which 7 rows were deleted emits
// exactly 7 deleted events, reading keys and comparing them a page at a time.
func TestReconcileDeletesExactlyTheRowsGoneInPages(t *testing.T) {
	tables := reconcileTables(t)
	for _, tc := range []struct{ table, store string }{
		{"sqlite", "sqlite"}, {"postgres", "sqlite"}, {"mysql", "sqlite"}, {"sqlite", "postgres"},
	} {
		t.Run(tc.table+" table, "+tc.store+" store", func(t *testing.T) {
			tbl := tables[tc.table](t)
			cfg := store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "state.db")}
			if tc.store == "postgres" {
				dsn, _ := testpg.Schema(t)
				cfg = store.Config{Driver: store.DriverPostgres, DSN: dsn}
			}
			st, err := store.Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			watched := &pagedStore{Store: st}
			m, err := mapping.Compile("dossier.yaml", []byte(reconcileMapping), mapping.Options{})
			if err != nil {
				t.Fatal(err)
			}
			lister := &pagedLister{Source: tbl.src}
			job := &engine.Job{
				Name: "motcua", Source: lister, Map: m, Agency: "UBND", Store: watched,
				Router:  engine.NewRouter([]engine.Route{{Events: []string{"deleted", "dossier.*"}, To: []string{"bi"}}}),
				Clock:   func() time.Time { return time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC) },
				Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
				Metrics: engine.NewMetrics(), Deletes: engine.DeletesConfig{PageSize: reconcilePage},
			}
			if rs, err := job.Run(t.Context()); err != nil || rs.Events != reconcileRows {
				t.Fatalf("first sync: %+v, %v; want %d created events", rs, err, reconcileRows)
			}
			gone := []int{1, 2, 777, 5000, 5001, 9999, 10000}
			mustExec(t, tbl.db, tbl.delete(gone))

			rs, err := job.Reconcile(t.Context())
			if err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			if rs.Deleted != len(gone) || rs.Keys != reconcileRows-len(gone) {
				t.Fatalf("reconcile = %+v, want %d keys read and %d deleted", rs, reconcileRows-len(gone), len(gone))
			}
			pend, err := st.Pending(t.Context(), "bi", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 1000)
			if err != nil {
				t.Fatal(err)
			}
			var deleted, rules []string
			for _, p := range pend {
				switch {
				case p.Event.Type == pipeline.EventDeleted:
					deleted = append(deleted, p.Event.Key)
					if p.Event.Before["payload"] == nil || p.Event.After != nil {
						t.Errorf("deleted event %s carries before %v after %v", p.Event.Key, p.Event.Before, p.Event.After)
					}
				case p.Event.Rule == "dossier.withdrawn":
					rules = append(rules, p.Event.Key)
				}
			}
			var want []string
			for _, id := range gone {
				want = append(want, fmt.Sprintf("HS-%05d", id))
			}
			sort.Strings(deleted)
			if !slices.Equal(deleted, want) {
				t.Fatalf("deleted events for %v, want exactly %v", deleted, want)
			}
			// Rule events wait behind their record's deleted event; the outbox
			// holds one per record.
			if len(pend) != len(gone) || len(rules) != 0 {
				t.Fatalf("outbox heads = %d (%d rule events), want one deleted event per gone row", len(pend), len(rules))
			}
			// Bounded: the source was read in pages of the page size, and the store
			// was given and asked for at most a page of keys at a time.
			if lister.maxLimit != reconcilePage || lister.maxPage > reconcilePage || lister.pages < reconcileRows/reconcilePage {
				t.Fatalf("source pages: %d pages, largest %d rows, limit %d; want pages of at most %d",
					lister.pages, lister.maxPage, lister.maxLimit, reconcilePage)
			}
			if watched.maxSeen > reconcilePage || watched.maxPage > reconcilePage {
				t.Fatalf("store pages: %d keys marked at once, %d walked at once; want at most %d",
					watched.maxSeen, watched.maxPage, reconcilePage)
			}
			// A second reconcile finds nothing more gone.
			if rs, err := job.Reconcile(t.Context()); err != nil || rs.Deleted != 0 {
				t.Fatalf("second reconcile = %+v, %v; want nothing deleted", rs, err)
			}
		})
	}
}
