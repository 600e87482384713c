package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Fact is one record's facts for the steering figures, extracted by the engine
// from the record (its mapping's figures: block) and kept by Commit in the same
// transaction as the snapshot. Nothing in it depends on the clock: overdue and
// due-soon are judged when figures are read. Each time that is set comes with
// its day in the province's zone (ReceivedDay for ReceivedAt, …): the per-day
// aggregates are kept by those days.
type Fact struct {
	Entity string
	Key    string
	Kind   string // dossier, outage
	Agency string
	State  string // open, finished, other
	// Supplement: the record's status asks the citizen for a supplement now. The
	// store keeps the first time it saw that (supplement_at).
	Supplement  bool
	ReceivedAt  time.Time // zero: unknown
	ReceivedDay string    // YYYY-MM-DD in the province's zone; "" when unknown
	DueAt       time.Time
	DueDay      string    // YYYY-MM-DD in the province's zone; "" when no due date
	FinishedAt  time.Time // kept only while State is "finished"
	FinishedDay string
	// SeenDay is the commit's date in the province's zone: the day a supplement
	// request first seen in this commit is counted on.
	SeenDay   string
	OnTime    *bool // finished with both dates: no later than due
	Online    *bool
	Digitised *bool
	Deleted   bool // the record is gone: its facts and timers are removed
}

// TimerArm sets when a record's timer rule fires. A different At from the stored
// one re-arms the timer (it fires again); the same At leaves it as it is. A zero
// At removes the timer (the record has no value to count from).
type TimerArm struct {
	Entity, Key, Rule string
	At                time.Time
}

// TimerKey names one armed timer at its threshold, as DueTimers returned it.
type TimerKey struct {
	Entity, Key, Rule string
	At                time.Time
}

// DueTimer is a timer whose threshold has passed and that has not fired.
type DueTimer struct {
	TimerKey
	Record SnapshotEntry // the record as stored now (Deleted: gone)
}

// FactQuery selects the facts one figures query counts.
type FactQuery struct {
	Kind string
	// From and To bound the period of the flows (received, finished, supplement
	// requested): [From, To). A zero From has no lower bound, a zero To no upper.
	From, To time.Time
	// Now and DueUntil judge the open records: overdue is due before Now, due soon
	// is due in [Now, DueUntil).
	Now, DueUntil time.Time
	// Zone is the province's zone, whose days the aggregates are kept in (the
	// same zone the engine computes Fact's *_day fields in); nil means UTC.
	Zone *time.Location
}

// FactCount is one agency's counts.
type FactCount struct {
	Agency string
	// In the period.
	Received       int // received_at in the period
	Online         int // of those, submitted online
	OnlineKnown    int // of those, with the channel known
	Digitised      int
	DigitisedKnown int
	Finished       int // finished (state finished) with finished_at in the period
	OnTime         int // of those, no later than due
	Late           int // of those, after due
	Supplement     int // first asked for a supplement in the period
	// Now.
	Open               int // being processed
	OverdueNow         int // open and due before Now
	DueSoon            int // open and due in [Now, DueUntil)
	AwaitingSupplement int // open and waiting for the citizen's supplement
}

// DayCount counts one agency's records received and finished on one day.
type DayCount struct {
	Day      string // YYYY-MM-DD in the province's zone
	Agency   string
	Received int
	Finished int
}

// NoticeCount counts one sink's citizen notices per agency and route.
type NoticeCount struct {
	Sink     string
	Agency   string
	Route    string // oa, zns, undeliverable, stale; deferred (waiting in the outbox); failed (dead letters)
	Notices  int    // distinct events
	Messages int    // messages sent (parts)
	DryRun   int    // of Messages, dry-run ones
}

// SinkBacklog is one sink's outbox as /readyz and /metrics show it.
type SinkBacklog struct {
	Sink        string
	Depth       int       // outbox rows waiting
	OldestAt    time.Time // detection time of the oldest waiting event; zero when none
	DeadLetters int       // replayable dead letters (holding or open)
}

// FactStore is what the steering figures, deadline timers and health reports read
// and write beyond Store. Both backends implement it; get it with
// st.(store.FactStore).
type FactStore interface {
	// FactCounts counts the facts of q.Kind per agency (see FactCount).
	FactCounts(ctx context.Context, q FactQuery) ([]FactCount, error)
	// DayCounts counts, per day and agency, records of the kind received and
	// finished on days in [from, to) (YYYY-MM-DD).
	DayCounts(ctx context.Context, kind, from, to string) ([]DayCount, error)
	// NoticeCounts counts the given sinks' notices sent or not sent in [from, to)
	// per agency and route (zero bounds are open), plus what waits in their outbox
	// (route "deferred") and their replayable dead letters (route "failed") now.
	NoticeCounts(ctx context.Context, sinks []string, from, to time.Time) ([]NoticeCount, error)
	// Backlogs reports every sink's outbox depth, oldest waiting event and
	// replayable dead letters.
	Backlogs(ctx context.Context) ([]SinkBacklog, error)
	// QuarantineCounts counts quarantine entries per source.
	QuarantineCounts(ctx context.Context) (map[string]int, error)

	// DueTimers returns up to limit timers of the source whose threshold is at or
	// before now and which have not fired, oldest first, with their records.
	DueTimers(ctx context.Context, source string, now time.Time, limit int) ([]DueTimer, error)
	// FireTimers commits the events of due timers and marks them fired, in one
	// transaction: b carries the events (Batch.Events) and the timers
	// (Batch.TimersFired); a timer re-armed meanwhile (its threshold moved) is not
	// marked. The source's cursor is not touched.
	FireTimers(ctx context.Context, b Batch) error

	// FactsVersion returns what the source's facts and timers were last rebuilt
	// for (SetFactsVersion), "" if never.
	FactsVersion(ctx context.Context, source string) (string, error)
	// RebuildFacts replaces the source's facts and timers of the entity, a page at
	// a time: the first call (reset) removes the old ones.
	RebuildFacts(ctx context.Context, source, entity string, reset bool, facts []Fact, timers []TimerArm, at time.Time) error
	SetFactsVersion(ctx context.Context, source, version string) error
	// SnapshotPage returns up to limit snapshot entries of the source and entity
	// with keys after the given one, in key order (deleted ones included).
	SnapshotPage(ctx context.Context, source, entity, after string, limit int) ([]SnapshotEntry, error)
}

var _ FactStore = (*sqlStore)(nil)

// agencyOfEvent reads an event's agency from its payload.
func (d dialect) agencyOfEvent(alias string) string {
	if d == postgresDialect {
		return `coalesce(` + alias + `.payload->>'agency', '')`
	}
	return `coalesce(json_extract(` + alias + `.payload, '$.agency'), '')`
}

// NoticeCounts counts notices per sink, agency and route; see FactStore.
func (s *sqlStore) NoticeCounts(ctx context.Context, sinks []string, from, to time.Time) ([]NoticeCount, error) {
	if len(sinks) == 0 {
		return nil, nil
	}
	var out []NoticeCount
	in := "(" + placeholders(len(sinks)) + ")"
	sinkArgs := make([]any, len(sinks))
	for i, v := range sinks {
		sinkArgs[i] = v
	}
	args := append([]any{true}, sinkArgs...)
	cond := ``
	if !from.IsZero() {
		cond += ` AND at >= ?`
		args = append(args, s.d.timeArg(from))
	}
	if !to.IsZero() {
		cond += ` AND at < ?`
		args = append(args, s.d.timeArg(to))
	}
	err := queryEach(ctx, s.db, s.q(`SELECT sink, agency, route, COUNT(DISTINCT event_id), COUNT(*),
		COUNT(CASE WHEN dry_run = ? THEN 1 END) FROM zalo_sends WHERE sink IN `+in+cond+` GROUP BY sink, agency, route`), args,
		func(r *sqlx.Rows) error {
			var c NoticeCount
			if err := r.Scan(&c.Sink, &c.Agency, &c.Route, &c.Notices, &c.Messages, &c.DryRun); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("store: count notices: %w", err)
	}
	for _, part := range []struct{ route, query string }{
		{"deferred", `SELECT o.sink, ` + s.d.agencyOfEvent("e") + `, COUNT(*) FROM outbox o JOIN events e ON e.seq = o.seq
			WHERE o.sink IN ` + in + ` GROUP BY o.sink, ` + s.d.agencyOfEvent("e")},
		{"failed", `SELECT d.sink, ` + s.d.agencyOfEvent("e") + `, COUNT(*) FROM dead_letters d JOIN events e ON e.seq = d.seq
			WHERE d.sink IN ` + in + ` AND d.state IN ('holding', 'open') GROUP BY d.sink, ` + s.d.agencyOfEvent("e")},
	} {
		err := queryEach(ctx, s.db, s.q(part.query), sinkArgs, func(r *sqlx.Rows) error {
			c := NoticeCount{Route: part.route}
			if err := r.Scan(&c.Sink, &c.Agency, &c.Notices); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: count %s notices: %w", part.route, err)
		}
	}
	return out, nil
}

// Backlogs reads each sink's outbox depth and oldest row (the lowest seq: events
// are numbered in commit order) and its replayable dead letters.
func (s *sqlStore) Backlogs(ctx context.Context) ([]SinkBacklog, error) {
	by := map[string]*SinkBacklog{}
	get := func(sink string) *SinkBacklog {
		b := by[sink]
		if b == nil {
			b = &SinkBacklog{Sink: sink}
			by[sink] = b
		}
		return b
	}
	oldest := map[string]int64{}
	err := queryEach(ctx, s.db, `SELECT sink, COUNT(*), MIN(seq) FROM outbox GROUP BY sink`, nil, func(r *sqlx.Rows) error {
		var sink string
		var n int
		var seq int64
		if err := r.Scan(&sink, &n, &seq); err != nil {
			return err
		}
		get(sink).Depth = n
		oldest[sink] = seq
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: outbox depth: %w", err)
	}
	for sink, seq := range oldest {
		var at dbTime
		err := s.db.GetContext(ctx, &at, s.q(`SELECT created_at FROM events WHERE seq = ?`), seq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("store: oldest outbox row: %w", err)
		}
		get(sink).OldestAt = at.Time
	}
	err = queryEach(ctx, s.db, `SELECT sink, COUNT(*) FROM dead_letters WHERE state IN ('holding', 'open') GROUP BY sink`, nil,
		func(r *sqlx.Rows) error {
			var sink string
			var n int
			if err := r.Scan(&sink, &n); err != nil {
				return err
			}
			get(sink).DeadLetters = n
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	out := make([]SinkBacklog, 0, len(by))
	for _, b := range by {
		out = append(out, *b)
	}
	sortBy(out, func(b SinkBacklog) string { return b.Sink })
	return out, nil
}

// DueTimers reads the source's due timers with their records.
func (s *sqlStore) DueTimers(ctx context.Context, source string, now time.Time, limit int) ([]DueTimer, error) {
	var rows []struct {
		Entity  string        `db:"entity"`
		Key     string        `db:"key"`
		Rule    string        `db:"rule"`
		FireAt  dbTime        `db:"fire_at"`
		Hash    dbHash        `db:"hash"`
		Version sql.NullInt64 `db:"version"`
		Fields  []byte        `db:"fields"`
		Deleted sql.NullBool  `db:"deleted"`
	}
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT t.entity, t.key, t.rule, t.fire_at, n.hash, n.version, n.fields, n.deleted
		FROM timers t LEFT JOIN snapshot n ON n.source = t.source AND n.entity = t.entity AND n.key = t.key
		WHERE t.source = ? AND t.fired_at IS NULL AND t.fire_at <= ? ORDER BY t.fire_at`+limitClause(limit)),
		source, s.d.timeArg(now))
	if err != nil {
		return nil, fmt.Errorf("store: due timers of %s: %w", source, err)
	}
	out := make([]DueTimer, len(rows))
	for i, r := range rows {
		t := DueTimer{TimerKey: TimerKey{Entity: r.Entity, Key: r.Key, Rule: r.Rule, At: r.FireAt.Time}}
		t.Record = SnapshotEntry{Entity: r.Entity, Key: r.Key, Hash: string(r.Hash), Version: r.Version.Int64,
			Deleted: !r.Version.Valid || r.Deleted.Bool}
		if len(r.Fields) > 0 {
			fields, err := s.decodeStored(ctx, s.db, r.Fields)
			t.Record.Fields = fields
			if err != nil {
				return nil, fmt.Errorf("store: due timers of %s: decode %s %q: %w", source, r.Entity, r.Key, err)
			}
		}
		out[i] = t
	}
	return out, nil
}

// FireTimers commits timer events and marks their timers fired.
func (s *sqlStore) FireTimers(ctx context.Context, b Batch) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.checkFence(ctx, tx, b.Fence); err != nil {
			return err
		}
		events, _, err := s.eventRows(b, snapshotRows{}) // no snapshot rows: no feed events
		if err != nil {
			return err
		}
		if _, err := s.insertEvents(ctx, tx, b, events); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		for _, k := range b.TimersFired {
			// Only the threshold evaluated: a commit that moved it meanwhile re-armed it.
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE timers SET fired_at = ?
				WHERE source = ? AND entity = ? AND key = ? AND rule = ? AND fire_at = ?`),
				s.d.timeArg(b.At), b.Source, k.Entity, k.Key, k.Rule, s.d.timeArg(k.At)); err != nil {
				return fmt.Errorf("mark timer fired: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: fire timers of %s: %w", b.Source, err)
	}
	return nil
}

func factsVersionKey(source string) string { return "facts/" + source }

// FactsVersion reads what the source's facts were built for.
func (s *sqlStore) FactsVersion(ctx context.Context, source string) (string, error) {
	var v string
	err := s.db.GetContext(ctx, &v, s.q(`SELECT value FROM store_meta WHERE key = ?`), factsVersionKey(source))
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: facts version of %s: %w", source, err)
	}
	return v, nil
}

// SetFactsVersion records what the source's facts were built for.
func (s *sqlStore) SetFactsVersion(ctx context.Context, source, version string) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO store_meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`), factsVersionKey(source), version)
	if err != nil {
		return fmt.Errorf("store: set facts version of %s: %w", source, err)
	}
	return nil
}

// RebuildFacts writes a page of rebuilt facts and timers.
func (s *sqlStore) RebuildFacts(ctx context.Context, source, entity string, reset bool, facts []Fact, timers []TimerArm, at time.Time) error {
	var w factWrite
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.needKeyIndex(ctx, tx); err != nil {
			return err
		}
		if reset {
			for _, q := range []string{
				`UPDATE snapshot SET fact_group = NULL, fact_state = NULL, fact_flags = NULL,
					fact_received_at = NULL, fact_due_at = NULL, fact_finished_at = NULL, fact_supplement_at = NULL,
					fact_received_day = NULL, fact_due_day = NULL, fact_finished_day = NULL, fact_supplement_day = NULL
					WHERE source = ? AND entity = ? AND fact_group IS NOT NULL`,
				`DELETE FROM timers WHERE source = ? AND entity = ?`,
				// A source has one mapping, so one entity: its aggregates go too.
				`DELETE FROM fact_days WHERE source = ? AND ? <> ''`,
				`DELETE FROM fact_open WHERE source = ? AND ? <> ''`,
			} {
				if _, err := tx.ExecContext(ctx, s.q(q), source, entity); err != nil {
					return err
				}
			}
		}
		var err error
		if w, err = s.prepareFacts(ctx, tx, source, facts, snapshotRows{}, at); err != nil {
			return err
		}
		return s.writeFacts(ctx, tx, source, w, timers)
	})
	if err != nil {
		return fmt.Errorf("store: rebuild facts of %s: %w", source, err)
	}
	s.rememberGroups(w.added)
	return nil
}

// SnapshotPage pages through a source's snapshot in key order.
func (s *sqlStore) SnapshotPage(ctx context.Context, source, entity, after string, limit int) ([]SnapshotEntry, error) {
	var rows []struct {
		Key     string `db:"key"`
		Hash    dbHash `db:"hash"`
		Version int64  `db:"version"`
		Fields  []byte `db:"fields"`
		Deleted bool   `db:"deleted"`
	}
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT key, hash, version, fields, deleted FROM snapshot
		WHERE source = ? AND entity = ? AND key > ? ORDER BY key`+limitClause(limit)), source, entity, after)
	if err != nil {
		return nil, fmt.Errorf("store: read snapshot of %s: %w", source, err)
	}
	out := make([]SnapshotEntry, len(rows))
	for i, r := range rows {
		out[i] = SnapshotEntry{Entity: entity, Key: r.Key, Hash: string(r.Hash), Version: r.Version, Deleted: r.Deleted}
		fields, err := s.decodeStored(ctx, s.db, r.Fields)
		out[i].Fields = fields
		if err != nil {
			return nil, fmt.Errorf("store: read snapshot of %s: decode %q: %w", source, r.Key, err)
		}
	}
	return out, nil
}

func sortBy[T any](s []T, key func(T) string) {
	slices.SortFunc(s, func(a, b T) int { return strings.Compare(key(a), key(b)) })
}

// QuarantineCounts counts quarantine entries per source.
func (s *sqlStore) QuarantineCounts(ctx context.Context) (map[string]int, error) {
	return s.countBy(ctx, "quarantine", "source")
}

// HeldLocks lists the store-wide locks this process holds now, sorted.
func (s *sqlStore) HeldLocks() []string {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	out := make([]string, 0, len(s.locks.held))
	for name := range s.locks.held {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// FeedbackCounts counts citizens' feedback (the GOPY inbox) per agency received in
// [from, to) (zero bounds are open), and how much of it is answered: the steering
// figures' feedback source (figures.FeedbackSource).
func (s *sqlStore) FeedbackCounts(ctx context.Context, from, to time.Time) (received, answered map[string]int, err error) {
	q, args := `SELECT agency, COUNT(*), COUNT(answered_at) FROM feedback WHERE 1 = 1`, []any{}
	if !from.IsZero() {
		q += ` AND created_at >= ?`
		args = append(args, s.d.timeArg(from))
	}
	if !to.IsZero() {
		q += ` AND created_at < ?`
		args = append(args, s.d.timeArg(to))
	}
	received, answered = map[string]int{}, map[string]int{}
	err = queryEach(ctx, s.db, s.q(q+` GROUP BY agency`), args, func(r *sqlx.Rows) error {
		var agency string
		var n, a int
		if err := r.Scan(&agency, &n, &a); err != nil {
			return err
		}
		received[agency], answered[agency] = n, a
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: count feedback: %w", err)
	}
	return received, answered, nil
}

// RatingCounts counts citizens' 1–5 ratings (DG) given in [from, to) per agency
// and score: the steering figures' rating source (figures.RatingSource).
func (s *sqlStore) RatingCounts(ctx context.Context, from, to time.Time) (map[string][5]int, error) {
	rows, err := s.RatingsByAgency(ctx, RatingFilter{Since: from, Until: to})
	if err != nil {
		return nil, err
	}
	out := make(map[string][5]int, len(rows))
	for _, r := range rows {
		out[r.Agency] = r.Scores
	}
	return out, nil
}
