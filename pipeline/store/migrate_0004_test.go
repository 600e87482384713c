package store

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
)

// Dead letters made before migration 0004 did not hold their records. Upgrading
// must give each its record and mark superseded those whose record already had a
// newer event delivered to the same sink, so `replay` cannot send them after it.
func TestMigration0004MarksOldDeadLettersSuperseded(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *sqlStore
	}{
		{"sqlite", func(t *testing.T) *sqlStore {
			s, err := openSQLite(t.Context(), Config{Path: filepath.Join(t.TempDir(), "old.db")})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"postgres", func(t *testing.T) *sqlStore {
			dsn, _ := testpg.Schema(t)
			s, err := openPostgres(t.Context(), Config{DSN: dsn, MaxOpenConns: 2})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			defer s.db.Close()
			ctx := t.Context()
			applyBefore(t, s, 4)
			at := s.d.timeArg(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := s.db.ExecContext(ctx, s.q(q), args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			for i, ev := range [][3]string{{"e1", "1", "1"}, {"e2", "1", "2"}, {"e3", "2", "1"}} {
				exec(`INSERT INTO events (seq, id, source, entity, key, type, payload, created_at) VALUES (?, ?, 'src', 'd', ?, 'updated', '{}', ?)`,
					i+1, ev[0], ev[1], at)
			}
			exec(`INSERT INTO deliveries (sink, event_id, seq, attempts, delivered_at) VALUES ('a', 'e2', 2, 1, ?)`, at)
			for _, dl := range []struct {
				sink string
				seq  int
			}{{"a", 1}, {"b", 1}, {"a", 3}} {
				exec(`INSERT INTO dead_letters (sink, seq, event_id, attempts, reason, at) VALUES (?, ?, 'e', 1, 'r', ?)`, dl.sink, dl.seq, at)
			}

			if err := migrate(ctx, s.db, s.d); err != nil {
				t.Fatal(err)
			}
			var got []struct {
				Sink   string `db:"sink"`
				Seq    int    `db:"seq"`
				Record string `db:"record"`
				State  string `db:"state"`
			}
			if err := s.db.SelectContext(ctx, &got, `SELECT sink, seq, record, state FROM dead_letters ORDER BY id`); err != nil {
				t.Fatal(err)
			}
			want := []string{"a 1 src/d/1 superseded", "b 1 src/d/1 open", "a 3 src/d/2 open"}
			if len(got) != len(want) {
				t.Fatalf("%d dead letters after the migration, want %d", len(got), len(want))
			}
			for i, g := range got {
				if line := g.Sink + " " + strconv.Itoa(g.Seq) + " " + g.Record + " " + g.State; line != want[i] {
					t.Errorf("dead letter %d = %q, want %q", i, line, want[i])
				}
			}
		})
	}
}

// applyBefore applies the dialect's migrations older than version, as a store of
// that age would have, recording them as migrate does.
func applyBefore(t *testing.T, s *sqlStore, version int) {
	t.Helper()
	ms, err := s.d.migrations()
	if err != nil {
		t.Fatal(err)
	}
	create := createMigrationsTable
	if s.d == postgresDialect {
		create = createMigrationsTablePG
	}
	if _, err := s.db.ExecContext(t.Context(), create); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version >= version {
			continue
		}
		err := inTx(t.Context(), s.db, func(tx *sqlx.Tx) error {
			if _, err := tx.ExecContext(t.Context(), m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(t.Context(), s.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, s.d.timeArg(time.Now()))
			return err
		})
		if err != nil {
			t.Fatalf("apply %04d_%s: %v", m.version, m.name, err)
		}
	}
}
