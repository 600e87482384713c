package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Snapshot feeds (migration 0008, decision 0014). A first sync's created event
// says nothing its snapshot row does not: the record, at version 1, under an id
// that follows from the row. So such an event is not stored as an event and
// outbox rows: the commit reserves it a seq from the events sequence, writes the
// seq into the row (lazy_seq), and records once per block of seqs what the
// block's events share (snapshot_events) and, per sink, how far the sink has
// got through the block (snapshot_feeds). A first sync of a million records
// writes a million snapshot rows and a few rows per batch besides.
//
// Pending hands a sink the rows of its blocks after its progress, in seq order,
// beside its outbox heads. Settle records a delivery by moving the progress (or,
// for one that ended out of order, in snapshot_feed_done). An event that fails
// becomes an ordinary event (lazy: its fields stay in the snapshot row) with an
// outbox row or a dead letter at the same seq, and from then on is an outbox
// event like any other. A commit that moves a record on while its feed event is
// still pending for a sink writes the event (with its fields) and an outbox row
// for that sink first, so the record's later events queue behind it: per-record
// order and at-least-once hold as for every other event. For the feed, that
// hand-over settles the event as a delivery would, so the block still completes.

// feedBlock is a block of a batch's feed events: same entity, agency, epoch,
// detection time and sinks.
type feedBlock struct {
	entity, agency string
	epoch          int64
	at             time.Time
	sinks          []string
	rows           []*pendingSnapshot
}

// blockInfo is a stored block (snapshot_events) and, when read for a sink, the
// sink's progress through it.
type blockInfo struct {
	Lo, Hi         int64
	Source, Entity string
	Agency         string
	Epoch          int64
	At             time.Time
	Done           int64 // the sink's progress (snapshot_feeds.done)
}

// feedable reports whether ev, the only event of its record in the batch and
// stored with the batch's snapshot row r, can live in that row: a snapshot's
// created event of a record new to the store, whose id the row determines.
func feedable(b Batch, ev *pipeline.Event, r *pendingSnapshot, sinks []string) bool {
	return ev.Snapshot && ev.Type == pipeline.EventCreated && ev.Version == 1 && ev.Rule == "" &&
		ev.Message == nil && ev.Before == nil && len(ev.Changed) == 0 && ev.Source == b.Source &&
		len(sinks) > 0 && !r.Deleted && r.prior == nil &&
		pipeline.IsEventID(ev.ID, b.Source, ev.Entity, ev.Key, ev.Version, pipeline.EventCreated, r.Hash)
}

// addFeed puts a feedable event into its block.
func addFeed(blocks []*feedBlock, ev *pipeline.Event, r *pendingSnapshot, sinks []string) []*feedBlock {
	sinks = slices.Clone(sinks)
	slices.Sort(sinks)
	sinks = slices.Compact(sinks)
	for _, blk := range blocks {
		if blk.entity == ev.Entity && blk.agency == ev.Agency && blk.epoch == ev.Epoch &&
			blk.at.Equal(ev.DetectedAt) && slices.Equal(blk.sinks, sinks) {
			blk.rows = append(blk.rows, r)
			return blocks
		}
	}
	return append(blocks, &feedBlock{entity: ev.Entity, agency: ev.Agency, epoch: ev.Epoch, at: ev.DetectedAt,
		sinks: sinks, rows: []*pendingSnapshot{r}})
}

// reserveSeqs takes n seqs from the events sequence and returns the first; the
// caller holds the events lock, so they are consecutive.
func (s *sqlStore) reserveSeqs(ctx context.Context, tx *sqlx.Tx, n int) (int64, error) {
	var last int64
	if s.d == postgresDialect {
		err := tx.GetContext(ctx, &last, `SELECT setval(pg_get_serial_sequence('events', 'seq'),
			nextval(pg_get_serial_sequence('events', 'seq')) + $1 - 1)`, n)
		return last - int64(n) + 1, err
	}
	err := tx.GetContext(ctx, &last, `UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'events' RETURNING seq`, n)
	if err == sql.ErrNoRows {
		// No event was ever inserted: the sequence starts here.
		_, err = tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)`, n)
		last = int64(n)
	}
	return last - int64(n) + 1, err
}

// storeFeeds reserves the blocks' seqs, gives each row its seq and records the
// blocks and each sink's (empty) progress through them.
func (s *sqlStore) storeFeeds(ctx context.Context, tx *sqlx.Tx, b Batch, blocks []*feedBlock) error {
	total := 0
	for _, blk := range blocks {
		total += len(blk.rows)
	}
	if total == 0 {
		return nil
	}
	if err := s.d.lockEvents(ctx, tx); err != nil {
		return err
	}
	next, err := s.reserveSeqs(ctx, tx, total)
	if err != nil {
		return fmt.Errorf("reserve %d seqs: %w", total, err)
	}
	var ranges, feeds [][]any
	for _, blk := range blocks {
		lo := next
		for _, r := range blk.rows {
			seq := next
			r.lazySeq = &seq
			next++
		}
		ranges = append(ranges, []any{lo, next - 1, b.Source, blk.entity, blk.agency, blk.epoch, s.d.timeArg(blk.at)})
		for _, sink := range blk.sinks {
			feeds = append(feeds, []any{sink, lo, next - 1, lo - 1})
		}
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO snapshot_events (lo, hi, source, entity, agency, epoch, detected_at) VALUES `,
		``, ranges, nil); err != nil {
		return err
	}
	return s.insertRows(ctx, tx, `INSERT INTO snapshot_feeds (sink, lo, hi, done) VALUES `, ``, feeds, nil)
}

// feedEvent is the event a feed row stands for; id is its id when known (the
// commit that stored the row checked it: see feedable), "" to derive it.
func feedEvent(blk blockInfo, key, hash string, version int64, id string) pipeline.Event {
	if id == "" {
		id = pipeline.EventID(blk.Source, blk.Entity, key, version, pipeline.EventCreated, hash)
	}
	return pipeline.Event{
		ID: id, Type: pipeline.EventCreated,
		Source: blk.Source, Entity: blk.Entity, Key: key, Agency: blk.Agency, Version: version, Epoch: blk.Epoch,
		Snapshot: true, DetectedAt: blk.At,
	}
}

const blockColumns = `b.lo, b.hi, b.source, b.entity, b.agency, b.epoch, b.detected_at`

func scanBlock(r interface{ Scan(...any) error }, blk *blockInfo, extra ...any) error {
	var at dbTime
	if err := r.Scan(append([]any{&blk.Lo, &blk.Hi, &blk.Source, &blk.Entity, &blk.Agency, &blk.Epoch, &at}, extra...)...); err != nil {
		return err
	}
	blk.At = at.Time
	return nil
}

// pendingBlocks is how many of the sink's blocks a Pending reads at once; it
// reads the next ones only while it has room for more events.
const pendingBlocks = 64

// blockRange says which of a sink's unfinished blocks a read wants.
type blockRange int

const (
	blocksUpTo  blockRange = iota // those starting at or before a seq
	blocksAfter                   // those starting after a seq
)

// sinkBlocksQuery reads the sink's unfinished blocks in seq order (arguments:
// the sink, then the seq of rng), at most limit (0: no limit). On SQLite it
// names the partial index of unfinished blocks: without statistics (the store
// runs no ANALYZE there) the planner took the primary key and read every block
// the sink ever had, finished or not, at each call, which at a million records
// (5,000 blocks) was 8 % of the drain's CPU.
func sinkBlocksQuery(d dialect, rng blockRange, limit int) string {
	where, indexed := ` AND f.lo <= ?`, ``
	if rng == blocksAfter {
		where = ` AND f.lo > ?`
	}
	if d == sqliteDialect {
		indexed = ` INDEXED BY snapshot_feeds_open`
	}
	return `SELECT ` + blockColumns + `, f.done FROM snapshot_feeds f` + indexed + ` JOIN snapshot_events b ON b.lo = f.lo
		WHERE f.sink = ? AND f.done < f.hi` + where + ` ORDER BY f.lo` + limitClause(limit)
}

// sinkBlocks reads the sink's unfinished blocks in seq order, those that rng
// of seq takes, at most limit (0: no limit).
func (s *sqlStore) sinkBlocks(ctx context.Context, q sqlx.QueryerContext, sink string, rng blockRange, seq int64, limit int) ([]blockInfo, error) {
	var out []blockInfo
	err := s.each(ctx, q, sinkBlocksQuery(s.d, rng, limit), []any{sink, seq}, func(r *sqlx.Rows) error {
		var blk blockInfo
		if err := scanBlock(r, &blk, &blk.Done); err != nil {
			return err
		}
		out = append(out, blk)
		return nil
	})
	return out, err
}

// betweenFeedReads, when set by a test (one that does not run in parallel), runs
// between pendingFeed's two reads, where a concurrent Settle can commit.
var betweenFeedReads func()

// pendingFeed returns up to limit of the sink's feed events that are due, in seq
// order, leaving out those in skip; without withMap their fields come as
// AfterJSON alone where the stored rows allow (see decodeFeedFields).
func (s *sqlStore) pendingFeed(ctx context.Context, sink string, now time.Time, limit int, skip []int64, withMap bool) ([]Pending, error) {
	// Left out: what is in flight and what was settled out of order. Both sit
	// mostly in one run of seqs right after the sink's progress, which the read
	// jumps over instead of reading it row by row.
	out := map[int64]bool{}
	for _, seq := range skip {
		out[seq] = true
	}
	// The seqs settled out of order are read before the blocks' progress: a
	// Settle committed between the two reads moves the progress past the seqs it
	// deletes from snapshot_feed_done, so in this order every settled seq is in
	// one read or the other. In the other order such a Settle hid them from both,
	// and they were delivered again.
	if err := s.each(ctx, s.reader(), feedDoneQuery, []any{sink}, func(r *sqlx.Rows) error {
		var seq int64
		if err := r.Scan(&seq); err != nil {
			return err
		}
		out[seq] = true
		return nil
	}); err != nil {
		return nil, err
	}
	if betweenFeedReads != nil {
		betweenFeedReads()
	}
	var due []Pending
	// The blocks come a page at a time, the next page only while there is room:
	// a sink far behind has thousands, and a Pending that returned fewer events
	// than it may while more are due would tell its caller nothing more is due
	// (a run --once then stopped with events undelivered).
	for after := int64(0); len(due) < limit; {
		blocks, err := s.sinkBlocks(ctx, s.reader(), sink, blocksAfter, after, pendingBlocks)
		if err != nil {
			return nil, err
		}
		if len(blocks) == 0 {
			break
		}
		if due == nil {
			due = make([]Pending, 0, min(limit, 4096)) // a Pending is large: grow it once
		}
		more, err := s.feedFromBlocks(ctx, sink, now, limit, blocks, out, &due, withMap)
		if err != nil {
			return nil, err
		}
		if !more || len(blocks) < pendingBlocks {
			break
		}
		after = blocks[len(blocks)-1].Lo
	}
	return due, nil
}

// feedFromBlocks appends to due the events of blocks (in seq order) not left
// out, up to limit; more is false when a block is not due yet, so neither are
// the ones after it.
func (s *sqlStore) feedFromBlocks(ctx context.Context, sink string, now time.Time, limit int, blocks []blockInfo, out map[int64]bool, due *[]Pending, withMap bool) (more bool, err error) {
	for i := 0; i < len(blocks) && len(*due) < limit; {
		if blocks[i].At.After(now) {
			return false, nil
		}
		// The blocks of a first sync's commits follow each other in seq order:
		// a run of them that the sink has not started on is read as one range,
		// a statement per limit's worth of events rather than per block.
		j := i
		for j+1 < len(blocks) && blocks[j+1].Lo == blocks[j].Hi+1 && blocks[j+1].Done == blocks[j].Hi &&
			!blocks[j+1].At.After(now) {
			j++
		}
		run := blocks[i : j+1]
		i = j + 1
		from, hi := run[0].Done, run[len(run)-1].Hi
		for len(*due) < limit && from < hi {
			for out[from+1] && from < hi {
				from++
			}
			want := limit - len(*due)
			got, last, err := s.readFeed(ctx, sink, run, from, want, out, due, withMap)
			if err != nil {
				return false, err
			}
			if got < want {
				break // the run has no more
			}
			from = last
		}
	}
	return true, nil
}

// readFeed reads up to n rows of a run of consecutive blocks after seq from,
// appending those not left out to due; it returns how many rows it read and the
// last one's seq. Rows this process committed lately come from memory
// (feedcache.go), the rest from SQL.
func (s *sqlStore) readFeed(ctx context.Context, sink string, run []blockInfo, from int64, n int, out map[int64]bool, due *[]Pending, withMap bool) (int, int64, error) {
	read, last, hi := 0, from, run[len(run)-1].Hi
	// Rows whose shape this process has not seen are decoded after the rows are
	// closed: looking the shape up needs a connection of its own, and the reader
	// pool may have no other one free.
	type unknown struct {
		i      int
		fields []byte
	}
	var later []unknown
	var keys feedKeys
	var arena []byte // the events' fields as JSON, a buffer for many
	// add appends the row's event; id is its event's id when known.
	add := func(seq int64, key, hash string, version int64, fields []byte, id string) error {
		read++
		last = seq
		if out[seq] {
			return nil
		}
		blk := run[sort.Search(len(run), func(k int) bool { return run[k].Hi >= seq })]
		*due = append(*due, Pending{Seq: seq, Sink: sink, Record: RecordID(blk.Source, blk.Entity, key), NextAt: blk.At, Feed: true,
			Event: feedEvent(blk, key, hash, version, id)})
		p := &(*due)[len(*due)-1] // filled in place: a Pending is large
		after, obj, ok, err := s.decodeFeedFields(fields, &keys, &arena, withMap)
		if err == nil && !ok {
			after, ok, err = s.decodeCached(fields)
		}
		if err != nil {
			return fmt.Errorf("feed event seq %d: %w", seq, err)
		}
		if !ok {
			later = append(later, unknown{len(*due) - 1, bytes.Clone(fields)})
		}
		p.Event.After, p.Event.AfterJSON = after, obj
		return nil
	}
	for i, c := range s.feeds.take(from, hi, n, nil) {
		if err := add(from+1+int64(i), c.key, c.hash, c.version, c.fields, c.id); err != nil {
			return 0, 0, err
		}
	}
	if read < n && last < hi {
		err := s.each(ctx, s.reader(), feedRowsQuery, []any{last, hi, n - read}, func(r *sqlx.Rows) error {
			var seq, version int64
			var key string
			var hash dbHash
			var fields sql.RawBytes
			if err := r.Scan(&seq, &key, &hash, &version, &fields); err != nil {
				return err
			}
			return add(seq, key, string(hash), version, fields, "")
		})
		if err != nil {
			return 0, 0, err
		}
	}
	for _, u := range later {
		after, err := s.decodeStored(ctx, s.reader(), u.fields)
		if err != nil {
			return 0, 0, fmt.Errorf("feed event seq %d: %w", (*due)[u.i].Seq, err)
		}
		(*due)[u.i].Event.After = after
	}
	return read, last, nil
}

// mergePending merges a sink's outbox heads and feed events, oldest due first,
// up to limit.
func mergePending(heads, feed []Pending, limit int) []Pending {
	if len(feed) == 0 {
		return heads
	}
	if len(heads) == 0 && inDueOrder(feed) {
		return feed[:min(len(feed), limit)] // the feed alone, in order already: no copy of thousands of rows
	}
	out := append(heads, feed...)
	slices.SortStableFunc(out, func(a, b Pending) int { return dueOrder(&a, &b) })
	return out[:min(len(out), limit)]
}

// dueOrder orders pending rows as a sink gets them: by due time, then by seq.
func dueOrder(a, b *Pending) int {
	return cmp.Or(a.NextAt.Compare(b.NextAt), cmp.Compare(a.Seq, b.Seq))
}

// inDueOrder reports whether ps is sorted by dueOrder.
func inDueOrder(ps []Pending) bool {
	for i := 1; i < len(ps); i++ {
		if dueOrder(&ps[i-1], &ps[i]) > 0 {
			return false
		}
	}
	return true
}

// feedRow is a feed event found for a Settle.
type feedRow struct {
	seq, version        int64
	source, entity, key string
	hash                dbHash
}

// feedState is what a Settle knows of the sink's feeds before it records
// anything: the unfinished blocks its outcomes can fall in and which of its seqs
// were settled out of order already.
type feedState struct {
	blocks  []blockInfo
	already map[int64]bool
}

// block returns the index of the block holding seq, or -1.
func (f *feedState) block(seq int64) int {
	k := sort.Search(len(f.blocks), func(k int) bool { return f.blocks[k].Hi >= seq })
	if k == len(f.blocks) || f.blocks[k].Lo > seq {
		return -1
	}
	return k
}

// waiting reports whether seq is a feed event still waiting for the sink: in
// one of its blocks, after the progress, not settled out of order. Such a seq
// has no outbox row: an event of a block gets one for a sink (a retry, a record
// moving on) only together with being settled for the sink's feed.
func (f *feedState) waiting(seq int64) bool {
	k := f.block(seq)
	return k >= 0 && f.blocks[k].Done < seq && !f.already[seq]
}

// feedFor reads the sink's feed state for the seqs of outcomes (indexes valid).
func (s *sqlStore) feedFor(ctx context.Context, tx *sqlx.Tx, sink string, outcomes []Outcome, valid []int) (*feedState, error) {
	f := &feedState{already: map[int64]bool{}}
	if len(valid) == 0 {
		return f, nil
	}
	seqs := make([]int64, 0, len(valid))
	for _, i := range valid {
		seqs = append(seqs, outcomes[i].Seq)
	}
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	var err error
	if f.blocks, err = s.sinkBlocks(ctx, tx, sink, blocksUpTo, seqs[len(seqs)-1], 0); err != nil || len(f.blocks) == 0 {
		return f, err
	}
	// Only seqs inside the blocks can have been settled out of order. They are
	// read as one range of the sink's snapshot_feed_done, which holds few rows
	// beyond the progress, rather than looked up one by one (a list of up to
	// thousands of seqs per Settle).
	lo, hi := int64(0), int64(0)
	for _, seq := range seqs {
		if k := f.block(seq); k >= 0 && f.blocks[k].Done < seq {
			if lo == 0 {
				lo = seq
			}
			hi = seq
		}
	}
	if lo == 0 {
		return f, nil
	}
	err = s.each(ctx, tx, feedDoneRangeQ, []any{sink, lo - 1, hi}, func(r *sqlx.Rows) error {
		var seq int64
		if err := r.Scan(&seq); err != nil {
			return err
		}
		f.already[seq] = true
		return nil
	})
	return f, err
}

// settleFeed records the outcomes (indexes cand of outcomes) of the sink's feed
// events still waiting for it (see feedState.waiting). A delivery moves the
// sink's progress; a retry or a dead letter turns the event into an ordinary one
// with an outbox row or a dead letter, which settles it for the feed. An outcome
// of a failure whose snapshot row is gone stays ErrNotFound.
func (s *sqlStore) settleFeed(ctx context.Context, tx *sqlx.Tx, sink string, ff *feedState, outcomes []Outcome, cand []int, errs []error) error {
	if len(cand) == 0 {
		return nil
	}
	blocks, already := ff.blocks, ff.already
	// Only failures need the record, to store the event.
	var failed []int64
	for _, i := range cand {
		if outcomes[i].Kind != OutcomeDelivered {
			failed = append(failed, outcomes[i].Seq)
		}
	}
	rows := map[int64]feedRow{}
	if len(failed) > 0 {
		cond, arg := in(s.d, "lazy_seq", failed)
		if err := queryEach(ctx, tx, s.q(`SELECT lazy_seq, source, entity, key, hash, version FROM snapshot WHERE lazy_seq IS NOT NULL AND `+cond), []any{arg},
			func(r *sqlx.Rows) error {
				var f feedRow
				if err := r.Scan(&f.seq, &f.source, &f.entity, &f.key, &f.hash, &f.version); err != nil {
					return err
				}
				rows[f.seq] = f
				return nil
			}); err != nil {
			return err
		}
	}
	settledBy := map[int][]int64{} // block index -> seqs settled now
	delivered := map[int]int{}     // block index -> deliveries among them
	var events, outbox, dead [][]any
	for _, i := range cand {
		o := outcomes[i]
		f, ok := rows[o.Seq]
		if (!ok && o.Kind != OutcomeDelivered) || already[o.Seq] {
			continue
		}
		k := ff.block(o.Seq)
		if k < 0 || blocks[k].Done >= o.Seq {
			continue
		}
		already[o.Seq] = true // the same seq twice: the second is not found
		errs[i] = nil
		settledBy[k] = append(settledBy[k], o.Seq)
		if o.Kind == OutcomeDelivered {
			delivered[k]++
			continue
		}
		ev := feedEvent(blocks[k], f.key, string(f.hash), f.version, "")
		row, err := s.feedEventRow(&ev, f.seq, nil)
		if err != nil {
			return err
		}
		events = append(events, row)
		record := RecordID(f.source, f.entity, f.key)
		if o.Kind == OutcomeRetry {
			outbox = append(outbox, []any{sink, o.Seq, o.Attempts, s.d.timeArg(o.NextAt), pgtext.Text(o.Err), record, true})
			continue
		}
		state := DeadHolding
		if o.OnDead == OnDeadSkip {
			state = DeadOpen
		}
		dead = append(dead, []any{sink, o.Seq, ev.ID, o.Attempts, pgtext.Text(o.Err), s.d.timeArg(o.At), record, string(state)})
	}
	if err := s.insertFeedEvents(ctx, tx, events); err != nil {
		return err
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO outbox (sink, seq, attempts, next_at, last_error, record, head) VALUES `,
		``, outbox, nil); err != nil {
		return fmt.Errorf("retries of feed events: %w", err)
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO dead_letters (sink, seq, event_id, attempts, reason, at, record, state) VALUES `,
		``, dead, nil); err != nil {
		return fmt.Errorf("dead letters of feed events: %w", err)
	}
	for k, settled := range settledBy {
		if err := s.advanceFeed(ctx, tx, sink, blocks[k], settled, delivered[k]); err != nil {
			return fmt.Errorf("feed progress: %w", err)
		}
	}
	return nil
}

// feedEventRow encodes a feed event as an ordinary event at its seq: with its
// fields when after is given (its record is about to move on), otherwise lazy
// (they stay in the snapshot row).
func (s *sqlStore) feedEventRow(ev *pipeline.Event, seq int64, after []byte) ([]any, error) {
	payload, err := encodeEvent(ev, after, after == nil)
	if err != nil {
		return nil, fmt.Errorf("encode feed event seq %d: %w", seq, err)
	}
	return []any{seq, ev.ID, ev.Source, ev.Entity, ev.Key, ev.Type, s.d.jsonArg(payload), s.d.timeArg(ev.DetectedAt)}, nil
}

// insertFeedEvents stores feed events as ordinary events, in multi-row
// statements; one stored already stays as it is.
func (s *sqlStore) insertFeedEvents(ctx context.Context, tx *sqlx.Tx, rows [][]any) error {
	return s.insertMany(ctx, tx, `events`, feedEventColumns, ` ON CONFLICT DO NOTHING`, rows, nil)
}

// advanceFeed moves the sink's progress through a block past the seqs settled
// now and those settled before out of order, as far as they reach without a gap;
// the rest is kept in snapshot_feed_done. It counts the block's deliveries.
func (s *sqlStore) advanceFeed(ctx context.Context, tx *sqlx.Tx, sink string, blk blockInfo, settled []int64, delivered int) error {
	var stored []int64
	if err := s.each(ctx, tx, feedDoneRangeQ, []any{sink, blk.Done, blk.Hi}, func(r *sqlx.Rows) error {
		var seq int64
		err := r.Scan(&seq)
		stored = append(stored, seq)
		return err
	}); err != nil {
		return err
	}
	// The seqs settled, now or before, all after blk.Done: sorted, searched.
	done := make([]int64, 0, len(settled)+len(stored))
	done = append(append(done, settled...), stored...)
	slices.Sort(done)
	done = slices.Compact(done)
	// Every seq up to progress is settled: delivered, failed into the outbox or
	// dead letters, or moved on by a commit (its row left the index then). The
	// first seq after the progress that is not settled is found in memory; when
	// its row is in the index (always, but for a row that left it without being
	// settled for the sink), the progress stops right before it. Otherwise the
	// walk reads the block's seqs after the progress until one is not settled:
	// at most one more than are settled, so one statement reads enough.
	next := blk.Done + 1
	for _, seq := range done {
		if seq != next {
			break
		}
		next++
	}
	if next > blk.Hi {
		return s.storeProgress(ctx, tx, sink, blk, settled, stored, blk.Hi, delivered)
	}
	var present bool
	if err := s.get(ctx, tx, &present, feedSeqPresentQuery, next); err != nil {
		return err
	}
	if present {
		return s.storeProgress(ctx, tx, sink, blk, settled, stored, next-1, delivered)
	}
	progress := blk.Done
	chunk := min(1024, len(done)+1)
walk:
	for {
		seqs := make([]int64, 0, chunk)
		if err := s.each(ctx, tx, feedSeqsQuery, []any{progress, blk.Hi, chunk}, func(r *sqlx.Rows) error {
			var seq int64
			err := r.Scan(&seq)
			seqs = append(seqs, seq)
			return err
		}); err != nil {
			return err
		}
		for _, seq := range seqs {
			if _, ok := slices.BinarySearch(done, seq); !ok {
				progress = seq - 1
				break walk
			}
			progress = seq
		}
		if len(seqs) < chunk {
			progress = blk.Hi
			break
		}
	}
	return s.storeProgress(ctx, tx, sink, blk, settled, stored, progress, delivered)
}

// storeProgress records the sink's progress through the block and counts its
// deliveries; the seqs settled now beyond it go to snapshot_feed_done, those
// stored there up to it leave.
func (s *sqlStore) storeProgress(ctx context.Context, tx *sqlx.Tx, sink string, blk blockInfo, settled, stored []int64, progress int64, delivered int) error {
	progress = min(progress, blk.Hi)
	s.feeds.advanced(sink, blk.Lo, progress)
	if _, err := s.exec(ctx, tx, feedAdvanceQuery, progress, delivered, sink, blk.Lo); err != nil {
		return err
	}
	if len(stored) > 0 && progress > blk.Done {
		if _, err := s.exec(ctx, tx, feedDoneDropQuery, sink, blk.Done, progress); err != nil {
			return err
		}
	}
	var rest [][]any
	for _, seq := range settled {
		if seq > progress {
			rest = append(rest, []any{sink, seq})
		}
	}
	return s.insertRows(ctx, tx, `INSERT INTO snapshot_feed_done (sink, seq) VALUES `, ` ON CONFLICT DO NOTHING`, rest, nil)
}

// leavesLazy reports whether the commit rewrites a row that holds a lazy
// event's fields without keeping that event: the record moves to another
// version or content. Only a replay of the very event (eventRows found the row
// at the event's version and hash, and kept its seq) keeps it.
func (r *pendingSnapshot) leavesLazy() bool {
	if r.prior == nil || !r.prior.LazySeq.Valid {
		return false
	}
	return r.lazySeq == nil || *r.lazySeq != r.prior.LazySeq.Int64
}

// priorRow is a batch's record as stored before the batch; fields only while it
// holds a lazy event's fields.
type priorRow struct {
	ID      int64         `db:"id"` // SQLite's rowid, which updateSnapshot updates by; 0 on PostgreSQL
	Key     string        `db:"key"`
	Hash    dbHash        `db:"hash"`
	Version int64         `db:"version"`
	LazySeq sql.NullInt64 `db:"lazy_seq"`
	Fields  []byte        `db:"fields"`
	factColumns
}

// priorRows reads the stored rows of the batch's snapshot entries.
func (s *sqlStore) priorRows(ctx context.Context, tx *sqlx.Tx, source string, rs snapshotRows) error {
	byEntity := map[string][]string{}
	for _, r := range rs.list {
		if !r.New {
			byEntity[r.Entity] = append(byEntity[r.Entity], r.Key)
		}
	}
	id := `0 AS id`
	if s.d == sqliteDialect {
		id = `id`
	}
	for entity, keys := range byEntity {
		err := forEachIn(s.d, "key", keys, func(cond string, args []any) error {
			return queryEach(ctx, tx, s.q(`SELECT `+id+`, key, hash, version, lazy_seq,
				CASE WHEN lazy_seq IS NOT NULL THEN fields END AS fields, `+factColumnList+`
				FROM snapshot WHERE source = ? AND entity = ? AND `+cond), append([]any{source, entity}, args...),
				func(r *sqlx.Rows) error {
					var p priorRow
					if err := r.StructScan(&p); err != nil {
						return err
					}
					if row := rs.byKey[[2]string{entity, p.Key}]; row != nil {
						row.prior = &p
					}
					return nil
				})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// materialize writes out the lazy created events of records that this commit
// moves to another version, while their snapshot rows still hold their fields:
// an event stored lazily gets its fields; a feed event becomes an ordinary event
// with an outbox row for each sink still waiting for it, so the record's later
// events queue behind it. Only first-sync records are lazy, and only until their
// first change.
//
// A commit that carries a lazy created event of its own for such a record (the
// record was deleted and is created again in the same commit, as a first sync's
// commit group can read it) moves it on all the same: the row's new lazy event
// is another event, at another seq.
func (s *sqlStore) materialize(ctx context.Context, tx *sqlx.Tx, source string, snap snapshotRows) error {
	var moved []*pendingSnapshot
	var seqs []int64
	for _, r := range snap.list {
		if r.leavesLazy() {
			moved = append(moved, r)
			seqs = append(seqs, r.prior.LazySeq.Int64)
		}
	}
	if len(moved) == 0 {
		return nil
	}
	if err := s.d.lockEvents(ctx, tx); err != nil {
		return err
	}
	stored := map[int64]bool{}
	if err := forEachIn(s.d, "seq", seqs, func(cond string, args []any) error {
		return queryEach(ctx, tx, s.q(`SELECT seq FROM events WHERE `+cond), args, func(r *sqlx.Rows) error {
			var seq int64
			if err := r.Scan(&seq); err != nil {
				return err
			}
			stored[seq] = true
			return nil
		})
	}); err != nil {
		return err
	}
	lo, hi := slices.Min(seqs), slices.Max(seqs)
	var blocks []blockInfo
	if err := queryEach(ctx, tx, s.q(`SELECT `+blockColumns+` FROM snapshot_events b WHERE b.source = ? AND b.lo <= ? AND b.hi >= ? ORDER BY b.lo`),
		[]any{source, hi, lo}, func(r *sqlx.Rows) error {
			var blk blockInfo
			if err := scanBlock(r, &blk); err != nil {
				return err
			}
			blocks = append(blocks, blk)
			return nil
		}); err != nil {
		return err
	}
	inBlock := map[int64]int{} // seq -> block index
	var los []int64
	var events [][]any
	for _, r := range moved {
		seq := r.prior.LazySeq.Int64
		after, err := s.objectJSON(ctx, tx, r.prior.Fields)
		if err != nil {
			return fmt.Errorf("event seq %d: %w", seq, err)
		}
		if stored[seq] {
			if _, err := tx.ExecContext(ctx, s.q(s.d.setAfter()), s.d.jsonArg(after), seq); err != nil {
				return fmt.Errorf("event seq %d: %w", seq, err)
			}
		}
		k := sort.Search(len(blocks), func(k int) bool { return blocks[k].Hi >= seq })
		if k == len(blocks) || blocks[k].Lo > seq || blocks[k].Entity != r.Entity {
			continue // not a feed event, or its block was purged
		}
		inBlock[seq] = k
		los = append(los, blocks[k].Lo)
		if !stored[seq] {
			ev := feedEvent(blocks[k], r.Key, string(r.prior.Hash), r.prior.Version, "")
			row, err := s.feedEventRow(&ev, seq, after)
			if err != nil {
				return err
			}
			events = append(events, row)
		}
	}
	if len(inBlock) == 0 {
		return nil
	}
	if err := s.insertFeedEvents(ctx, tx, events); err != nil {
		return err
	}
	return s.queueWaitingFeeds(ctx, tx, moved, inBlock, blocks, los)
}

// queueWaitingFeeds gives each sink still waiting for a moved record's feed event
// an outbox row of it, its record's head.
func (s *sqlStore) queueWaitingFeeds(ctx context.Context, tx *sqlx.Tx, moved []*pendingSnapshot, inBlock map[int64]int, blocks []blockInfo, los []int64) error {
	type feed struct {
		sink string
		done int64
	}
	feeds := map[int64][]feed{}
	slices.Sort(los)
	los = slices.Compact(los)
	cond, arg := in(s.d, "lo", los)
	if err := queryEach(ctx, tx, s.q(`SELECT sink, lo, done FROM snapshot_feeds WHERE `+cond), []any{arg}, func(r *sqlx.Rows) error {
		var f feed
		var lo int64
		if err := r.Scan(&f.sink, &lo, &f.done); err != nil {
			return err
		}
		feeds[lo] = append(feeds[lo], f)
		return nil
	}); err != nil {
		return err
	}
	seqs := make([]int64, 0, len(inBlock))
	for seq := range inBlock {
		seqs = append(seqs, seq)
	}
	settled := map[sinkSeq]bool{}
	cond, arg = in(s.d, "seq", seqs)
	if err := queryEach(ctx, tx, s.q(`SELECT sink, seq FROM snapshot_feed_done WHERE `+cond), []any{arg}, func(r *sqlx.Rows) error {
		var k sinkSeq
		if err := r.Scan(&k.sink, &k.seq); err != nil {
			return err
		}
		settled[k] = true
		return nil
	}); err != nil {
		return err
	}
	type sinkBlock struct {
		sink string
		k    int // block index
	}
	var rows [][]any
	done := map[sinkBlock][]int64{} // the seqs each sink's feed hands to its outbox now
	progress := map[sinkBlock]int64{}
	for _, r := range moved {
		seq := r.prior.LazySeq.Int64
		k, ok := inBlock[seq]
		if !ok {
			continue
		}
		blk := blocks[k]
		for _, f := range feeds[blk.Lo] {
			if f.done >= seq || settled[sinkSeq{f.sink, seq}] {
				continue
			}
			rows = append(rows, []any{f.sink, seq, s.d.timeArg(blk.At), RecordID(blk.Source, blk.Entity, r.Key), true})
			sb := sinkBlock{f.sink, k}
			done[sb] = append(done[sb], seq)
			progress[sb] = f.done
		}
	}
	if err := s.insertMany(ctx, tx, `outbox`, outboxColumns, ``, rows, nil); err != nil {
		return err
	}
	// The events are the outbox's now: settled for the feeds. They are settled
	// as a delivery would settle them, moving the sink's progress past them when
	// nothing before them waits: no later outcome of the feed may come to do it
	// (the sink may have settled every other event of the block already), and a
	// block whose progress stops short of its end stays open for ever (never
	// purged, and one of the bounded number of open blocks Pending reads).
	order := slices.SortedFunc(maps.Keys(done), func(a, b sinkBlock) int {
		return cmp.Or(strings.Compare(a.sink, b.sink), cmp.Compare(a.k, b.k))
	})
	for _, sb := range order {
		blk := blocks[sb.k]
		blk.Done = progress[sb]
		if err := s.advanceFeed(ctx, tx, sb.sink, blk, done[sb], 0); err != nil {
			return fmt.Errorf("feed progress of sink %q: %w", sb.sink, err)
		}
	}
	return nil
}

type sinkSeq struct {
	sink string
	seq  int64
}

// feedCounts adds each sink's waiting feed events to out.
func (s *sqlStore) feedCounts(ctx context.Context, out map[string]int) error {
	return queryEach(ctx, s.db, `SELECT f.sink,
		(SELECT COUNT(*) FROM snapshot s WHERE s.lazy_seq > f.done AND s.lazy_seq <= b.hi
		 AND NOT EXISTS (SELECT 1 FROM snapshot_feed_done d WHERE d.sink = f.sink AND d.seq = s.lazy_seq))
		FROM snapshot_feeds f JOIN snapshot_events b ON b.lo = f.lo WHERE f.done < f.hi`, nil, func(r *sqlx.Rows) error {
		var sink string
		var n int
		if err := r.Scan(&sink, &n); err != nil {
			return err
		}
		if n > 0 {
			out[sink] += n
		}
		return nil
	})
}

// feedEventCount counts the feed events that are not stored as events, and
// the deliveries of feed events.
func (s *sqlStore) feedEventCount(ctx context.Context) (events, deliveries int64, err error) {
	var n sql.NullInt64
	if err := s.db.GetContext(ctx, &n, `SELECT SUM(b.hi - b.lo + 1 - (SELECT COUNT(*) FROM events e WHERE e.seq >= b.lo AND e.seq <= b.hi))
		FROM snapshot_events b`); err != nil {
		return 0, 0, err
	}
	var d sql.NullInt64
	err = s.db.GetContext(ctx, &d, `SELECT SUM(delivered) FROM snapshot_feeds`)
	return n.Int64, d.Int64, err
}

// settledBlocksQuery finds the sinks' unfinished blocks in which no event
// waits any more: every row after the progress is settled out of order, or has
// left the feed. Commits of earlier versions left such blocks behind when the
// last event a sink waited for in a block moved on (it went to the sink's
// outbox without the progress moving past it), or when a record was deleted
// and created again in one commit (its feed event left the feed unsettled).
// The subquery stops at the first event still waiting, which in a block being
// delivered is the first row after the progress.
const settledBlocksQuery = `SELECT f.sink, f.lo, f.hi, f.done FROM snapshot_feeds f WHERE f.done < f.hi AND NOT EXISTS (
	SELECT 1 FROM snapshot s WHERE s.lazy_seq IS NOT NULL AND s.lazy_seq > f.done AND s.lazy_seq <= f.hi
	AND NOT EXISTS (SELECT 1 FROM snapshot_feed_done d WHERE d.sink = f.sink AND d.seq = s.lazy_seq))`

// completeSettledBlocks moves the sink's progress to the end of each block
// settledBlocksQuery finds, so that it is purged in time and no longer takes
// one of the open blocks Pending reads. It holds the events lock: no Settle or
// commit changes a feed meanwhile.
func (s *sqlStore) completeSettledBlocks(ctx context.Context, tx *sqlx.Tx) error {
	if err := s.d.lockEvents(ctx, tx); err != nil {
		return err
	}
	var done []struct {
		Sink         string
		Lo, Hi, Done int64
	}
	if err := tx.SelectContext(ctx, &done, settledBlocksQuery); err != nil {
		return err
	}
	for _, f := range done {
		if _, err := s.exec(ctx, tx, feedAdvanceQuery, f.Hi, 0, f.Sink, f.Lo); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, feedDoneDropQuery, f.Sink, f.Done, f.Hi); err != nil {
			return err
		}
		s.feeds.advanced(f.Sink, f.Lo, f.Hi)
	}
	return nil
}

// purgeFeedBlocks removes blocks every sink is done with that were detected
// before cutoff, with the sinks' progress through them; their events are then
// as gone as purged events. Blocks left unfinished with nothing to deliver are
// finished first (completeSettledBlocks).
func (s *sqlStore) purgeFeedBlocks(ctx context.Context, cutoff time.Time) error {
	return inTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if err := s.completeSettledBlocks(ctx, tx); err != nil {
			return fmt.Errorf("finish settled blocks: %w", err)
		}
		var los []int64
		if err := tx.SelectContext(ctx, &los, s.q(`SELECT b.lo FROM snapshot_events b WHERE b.detected_at < ?
			AND NOT EXISTS (SELECT 1 FROM snapshot_feeds f WHERE f.lo = b.lo AND f.done < f.hi)`), s.d.timeArg(cutoff)); err != nil {
			return err
		}
		return forEachIn(s.d, "lo", los, func(cond string, args []any) error {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM snapshot_feeds WHERE `+cond), args...); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, s.q(`DELETE FROM snapshot_events WHERE `+cond), args...)
			return err
		})
	})
}
