package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// A citizen's question reads the index rows of the value asked and their records,
// not the entity's snapshot: with 3,000 dossiers stored, a look-up examines a
// handful of rows on PostgreSQL and searches the value index on SQLite.
func TestLookupReadsTheIndexNotTheSnapshot(t *testing.T) {
	for i, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			s := internalStores[i].open(t)
			if err := migrate(t.Context(), s.db, s.d); err != nil {
				t.Fatal(err)
			}
			s.IndexLookup("dossier", "field:code", func(f map[string]any) []string {
				v, _ := f["code"].(string)
				return []string{transform.Fold(v)}
			})
			at := time.Date(2026, 3, 10, 3, 0, 0, 0, time.UTC)
			const n = 3000
			b := Batch{Source: "motcua", At: at}
			for k := range n {
				code := fmt.Sprintf("HS-%05d", k)
				b.Snapshot = append(b.Snapshot, SnapshotEntry{Entity: "dossier", Key: code, Hash: code, Version: 1,
					Fields: map[string]any{"code": code, "citizen": "Nguyễn Văn Đức"}})
			}
			if err := s.Commit(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			for _, table := range []string{"snapshot", "lookup_index"} {
				if _, err := s.db.ExecContext(t.Context(), `ANALYZE `+table); err != nil {
					t.Fatal(err)
				}
			}
			hits, err := s.LookupRecords(t.Context(), "dossier", "field:code", "hs-01234", 20)
			if err != nil || len(hits) != 1 || hits[0].Key != "HS-01234" {
				t.Fatalf("look-up = %+v, %v", hits, err)
			}
			args := []any{"dossier", "field:code", "hs-01234", false, "", "", "", 20}
			if s.d == postgresDialect {
				if got := rowsExamined(t, s, lookupQuery, args...); got > 4 {
					t.Errorf("a look-up examined %d rows, want at most 4 (one index row, one record)", got)
				}
				return
			}
			rows, err := s.db.QueryxContext(t.Context(), `EXPLAIN QUERY PLAN `+lookupQuery, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var details []string
			for rows.Next() {
				var p struct {
					ID, Parent, NotUsed int
					Detail              string
				}
				if err := rows.Scan(&p.ID, &p.Parent, &p.NotUsed, &p.Detail); err != nil {
					t.Fatal(err)
				}
				details = append(details, p.Detail)
			}
			plan := strings.Join(details, "\n")
			if !strings.Contains(plan, "SEARCH i USING PRIMARY KEY (entity=? AND name=? AND value=?") || strings.Contains(plan, "SCAN s") {
				t.Errorf("the look-up does not go through the value index:\n%s", plan)
			}
		})
	}
}
