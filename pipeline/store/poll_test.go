package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The outbox poll must cost what is due, not what is pending: a sink down for a
// day keeps every record's head retrying into the future while rows pile up behind
// them, and each poll must stay as cheap as with an empty outbox.

// oldPendingQuery is Pending before migration 0005: every due row was a candidate
// and a NOT EXISTS rejected those behind an earlier row of their record, one by
// one. Kept here to measure against.
const oldPendingQuery = `SELECT o.seq, o.sink, o.record, o.attempts, o.next_at, o.last_error, o.replayed_at, e.payload
		FROM outbox o JOIN events e ON e.seq = o.seq
		WHERE o.sink = ? AND o.next_at <= ?
		  AND NOT EXISTS (SELECT 1 FROM outbox h WHERE h.sink = o.sink AND h.record = o.record AND h.seq < o.seq)
		  AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.sink = o.sink AND d.record = o.record AND d.seq < o.seq
		                  AND d.state = 'holding')
		ORDER BY o.seq`

// backlog is a sink's outbox after an outage: records × each rows of sink "a",
// committed at `at`; each record's first row is its head, retried until
// `retryAt`, except the first `due` records', which are due at `at`.
type backlog struct {
	records, each, due int
	at, retryAt        time.Time
}

func (b backlog) total() int { return b.records * b.each }

// fill writes the backlog with a few set-based statements (committing 100,000
// events through Commit would take a while), the rows as Commit lays them out:
// record r's versions are seqs r+1, r+1+records, ...
func (b backlog) fill(t testing.TB, s *sqlStore) {
	t.Helper()
	series := `SELECT g AS n FROM generate_series(1, ?) g`
	if s.d == sqliteDialect {
		series = `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?) SELECT n FROM c`
	}
	arg := func(typ string) string { // PostgreSQL types a bare parameter in a SELECT as text
		if s.d == postgresDialect {
			return "CAST(? AS " + typ + ")"
		}
		return "?"
	}
	key := `'K' || CAST(((n - 1) % ` + fmt.Sprint(b.records) + `) AS TEXT)`
	payload, _ := json.Marshal(map[string]any{"id": "x", "type": "updated", "source": "src", "entity": "d",
		"after": map[string]any{"status": 4, "citizen": "Nguyễn Văn Đức"}, "detected_at": b.at})
	ctx := t.Context()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO events (seq, id, source, entity, key, type, payload, created_at)
			SELECT n, 'e' || CAST(n AS TEXT), 'src', 'd', ` + key + `, 'updated', ` + arg("jsonb") + `, ` + arg("timestamptz") + ` FROM (` + series + `) s`,
			[]any{s.d.jsonArg(payload), s.d.timeArg(b.at), b.total()}},
		{`INSERT INTO outbox (sink, seq, next_at, record, head, attempts)
			SELECT 'a', n,
			       CASE WHEN n > ? AND n <= ? THEN ` + arg("timestamptz") + ` ELSE ` + arg("timestamptz") + ` END,
			       'src/d/' || ` + key + `, n <= ?, CASE WHEN n > ? AND n <= ? THEN 9 ELSE 0 END
			FROM (` + series + `) s`,
			[]any{b.due, b.records, s.d.timeArg(b.retryAt), s.d.timeArg(b.at), b.records, b.due, b.records, b.total()}},
	} {
		if _, err := s.db.ExecContext(ctx, s.q(q.sql), q.args...); err != nil {
			t.Fatalf("fill backlog: %v", err)
		}
	}
	for _, table := range []string{"events", "outbox"} { // planner statistics, as autovacuum keeps them
		if _, err := s.db.ExecContext(ctx, `ANALYZE `+table); err != nil {
			t.Fatal(err)
		}
	}
}

// open returns a migrated store with the backlog.
func (b backlog) open(t testing.TB, backend int) *sqlStore {
	t.Helper()
	s := internalStores[backend].open(t)
	if err := migrate(t.Context(), s.db, s.d); err != nil {
		t.Fatal(err)
	}
	b.fill(t, s)
	return s
}

// rowsExamined runs query under EXPLAIN ANALYZE on PostgreSQL and adds up the rows
// every scan produced or filtered out, across loops: what the poll touched.
func rowsExamined(t testing.TB, s *sqlStore, query string, args ...any) int {
	t.Helper()
	var raw string
	if err := s.db.GetContext(t.Context(), &raw, s.q(`EXPLAIN (ANALYZE, FORMAT JSON) `+query), args...); err != nil {
		t.Fatal(err)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal([]byte(raw), &plans); err != nil {
		t.Fatal(err)
	}
	return plans[0].Plan.examined()
}

type planNode struct {
	Type     string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Rows     float64    `json:"Actual Rows"`
	Loops    float64    `json:"Actual Loops"`
	Removed  float64    `json:"Rows Removed by Filter"`
	Recheck  float64    `json:"Rows Removed by Index Recheck"`
	Plans    []planNode `json:"Plans"`
}

func (p planNode) examined() int {
	n := 0
	if p.Relation != "" {
		n = int((p.Rows + p.Removed + p.Recheck) * p.Loops)
	}
	for _, c := range p.Plans {
		n += c.examined()
	}
	return n
}

var downDay = backlog{records: 1000, each: 100, due: 0,
	at: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), retryAt: time.Date(2026, 11, 28, 0, 5, 0, 0, time.UTC)}

// With 100,000 rows pending behind 1,000 heads that all wait for their retry, a
// poll examines no row on PostgreSQL (the old query examined the whole backlog),
// and on either backend it reads the partial index of heads.
//
// The test keeps to 20,000 rows to stay fast; BenchmarkPollDownSink measures
// 100,000.
func TestPollExaminesOnlyDueHeads(t *testing.T) {
	b := downDay
	b.records = 200
	now := b.retryAt.Add(-time.Minute) // a day into the outage
	t.Run("postgres", func(t *testing.T) {
		s := b.open(t, 1)
		if n := rowsExamined(t, s, pendingQuery, "a", s.d.timeArg(now), 500); n != 0 {
			t.Errorf("a poll with nothing due examined %d rows, want 0", n)
		}
		t.Logf("the query before migration 0005 examined %d rows", rowsExamined(t, s, oldPendingQuery+limitClause(500), "a", s.d.timeArg(now)))
		// Every head due when the sink is back: the poll examines what it returns,
		// each row once in the index of heads and once joined to its event.
		if _, err := s.db.ExecContext(t.Context(), `UPDATE outbox SET next_at = $1 WHERE head`, b.at); err != nil {
			t.Fatal(err)
		}
		if n := rowsExamined(t, s, pendingQuery, "a", s.d.timeArg(now), 50); n > 2*50 {
			t.Errorf("a poll of 50 due heads examined %d rows, want at most %d", n, 2*50)
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		s := b.open(t, 0)
		rows, err := s.db.QueryxContext(t.Context(), `EXPLAIN QUERY PLAN `+pendingQuery, "a", s.d.timeArg(now), 500)
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
		if !strings.Contains(strings.Join(details, "\n"), "USING INDEX outbox_heads (sink=? AND next_at<?)") {
			t.Errorf("the poll does not search the index of heads:\n%s", strings.Join(details, "\n"))
		}
		p, err := s.Pending(t.Context(), "a", now, 500)
		if err != nil || len(p) != 0 {
			t.Errorf("Pending during the outage = %d rows, %v; want none", len(p), err)
		}
	})
}

// BenchmarkPollDownSink measures one poll of a sink whose 1,000 records have
// 100,000 rows waiting: "down" while every head waits for its retry, "back" when
// the heads are due (a poll takes 500). "old" is the query before migration 0005
// on the same rows, with the index it used.
func BenchmarkPollDownSink(b *testing.B) {
	for bi, backend := range []string{"sqlite", "postgres"} {
		for _, state := range []string{"down", "back"} {
			bl := downDay
			now := bl.retryAt.Add(-time.Minute)
			if state == "back" {
				bl.due, now = bl.records, bl.retryAt
			}
			b.Run(backend+"/"+state, func(b *testing.B) {
				s := bl.open(b, bi)
				n := 0
				for b.Loop() {
					p, err := s.Pending(b.Context(), "a", now, 500)
					if err != nil {
						b.Fatal(err)
					}
					n = len(p)
				}
				b.ReportMetric(float64(n), "rows/poll")
				if s.d == postgresDialect {
					b.ReportMetric(float64(rowsExamined(b, s, pendingQuery, "a", s.d.timeArg(now), 500)), "examined/poll")
				}
			})
			b.Run(backend+"/"+state+"/old", func(b *testing.B) {
				s := bl.open(b, bi)
				if _, err := s.db.ExecContext(b.Context(), `CREATE INDEX outbox_due ON outbox (sink, next_at, seq)`); err != nil {
					b.Fatal(err)
				}
				n := 0
				for b.Loop() {
					rows, err := s.readPending(b.Context(), s.q(oldPendingQuery+limitClause(500)), []any{"a", s.d.timeArg(now)})
					if err != nil {
						b.Fatal(err)
					}
					n = len(rows)
				}
				b.ReportMetric(float64(n), "rows/poll")
				if s.d == postgresDialect {
					b.ReportMetric(float64(rowsExamined(b, s, oldPendingQuery+limitClause(500), "a", s.d.timeArg(now))), "examined/poll")
				}
			})
		}
	}
}
