package pgtable

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The queries of the package doc, run as a BI tool would.
func TestDocumentedDashboardQueriesWork(t *testing.T) {
	f := newFixture(t)
	past, future := time.Now().Add(-48*time.Hour).UTC(), time.Now().Add(48*time.Hour).UTC()
	for i, d := range []struct {
		agency string
		status int64
		due    time.Time
	}{
		{"UBND-CG", 2, past},   // overdue
		{"UBND-CG", 4, past},   // overdue
		{"UBND-CG", 9, past},   // has its result: not overdue
		{"UBND-CG", 2, future}, // not due yet
		{"UBND-BL", 5, past},   // overdue
	} {
		ev := event("dossier", fmt.Sprintf("HS-%d", i), 1)
		ev.Agency = d.agency
		ev.After = map[string]any{"status": d.status, "due_at": d.due}
		f.deliver(t, ev)
	}
	gone := event("dossier", "HS-Z", 1)
	gone.After = map[string]any{"status": int64(2), "due_at": past}
	f.deliver(t, gone, deleted("dossier", "HS-Z", 2)) // deleted: not counted

	rows, err := f.db.Query(strings.ReplaceAll(`SELECT agency, count(*) AS overdue
	FROM egov_sync.current_dossier
	WHERE NOT deleted
	  AND (fields->>'status')::int IN (2, 4, 5, 6)
	  AND (fields->>'due_at')::timestamptz < now()
	GROUP BY agency
	ORDER BY overdue DESC`, "egov_sync.", quote(f.schema)+"."))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var agency string
		var n int
		if err := rows.Scan(&agency, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%d", agency, n))
	}
	if strings.Join(got, " ") != "UBND-CG=2 UBND-BL=1" {
		t.Fatalf("overdue by agency = %v, want [UBND-CG=2 UBND-BL=1]", got)
	}

	var received int
	err = f.db.QueryRow(strings.ReplaceAll(`SELECT count(*) FROM (
	SELECT agency, date_trunc('day', detected_at AT TIME ZONE 'Asia/Ho_Chi_Minh') AS day, count(*)
	FROM egov_sync.events
	WHERE entity = 'dossier' AND type = 'created' AND NOT snapshot
	GROUP BY 1, 2) per_day`, "egov_sync.", quote(f.schema)+".")).Scan(&received)
	if err != nil || received != 2 { // two agencies, one day
		t.Fatalf("received per agency and day: %d groups, %v; want 2", received, err)
	}
}
