package store

import (
	"slices"
	"sort"
	"sync"

	"github.com/egov-bridge/egov-bridge/internal/pgtext"
)

// The feed rows this process committed last, kept in memory (decision 0029). A
// first sync delivered while it syncs (0025) reads each commit's feed rows back
// right after committing them: the SQL read through snapshot_lazy (a table seek
// per row) and the event's id (a SHA-256 of the row's key and hash) were about
// half of the drain's CPU, spent on what the committing process had in memory a
// moment before. So commit keeps each block's rows (seq, key, hash, version, the
// encoded fields as stored, and the event id it checked in feedable), and
// pendingFeed takes a run of consecutive seqs from here instead of from SQL. Any
// seq not here (committed by another process, before a restart, evicted) is read
// from SQL as before; the cache is a hint, and dropping anything from it at any
// time is always safe.
//
// Why a row served from here is never stale. A feed event's content never
// changes: it is the record's created event at version 1, with the fields of
// that version, under an id that follows from them; its seq names it and nothing
// else (seqs are never reused: a commit takes them from the events sequence,
// and the cache learns them only after the commit is durable). What changes is
// only whether the seq still waits for a sink, and pendingFeed decides that from
// SQL on every call, cache or not: the sink's progress (snapshot_feeds.done) and
// the seqs it settled out of order (snapshot_feed_done). The one thing the SQL
// read knows that the cache does not is that a row has left the snapshot_lazy
// index: a commit (of this process or another) moved its record on. Every such
// commit, in the same transaction, either finds the feed event settled already
// for each of its block's sinks (done past it, or in snapshot_feed_done), or
// gives that sink an outbox row of it and settles it for the sink's feed as a
// delivery would (materialize, queueWaitingFeeds): the progress moves past it,
// or it goes to snapshot_feed_done. So a seq that left the index while a sink
// waited for it is behind that sink's progress or in its snapshot_feed_done,
// which pendingFeed reads before the rows, and is left out. A commit racing that read is the race the
// SQL read has too (it can read the row just before the commit): the event
// comes out of the feed and of the outbox under the same seq, the window hands
// out one, and its Settle finds it in the outbox (settle.go). No other path
// writes a feed row's key, hash, version, fields or lazy_seq: facts (including
// RebuildFacts and the placeholder rows of writeFacts) write only the fact
// columns, and snapshot rows are never deleted. This process's own commits that
// rewrite a row with a lazy_seq also drop that seq here, belt and braces.
//
// Bounded: at most feedCacheBytes of rows (fields, key, hash, id and a row's
// overhead). The rows are the slices and strings the commit encoded, kept a
// little longer, not copies. A block's rows leave once every sink it was routed
// to has settled them (advanceFeed tells the cache); when the budget is full the
// oldest blocks go first, since the drain that is behind reads them from SQL
// anyway while the one that keeps up reads the newest.

// feedCacheBytes bounds the cache: about one first-sync commit group of
// 10,000 dossier rows (about 700 bytes a row held: the encoded fields keep
// their slices' capacity), so a drain that follows the sync finds the group it
// reads; the drain drops what it settled as it goes.
const feedCacheBytes = 8 << 20

// feedRowOverhead is what a cached row costs beyond its bytes: the struct and
// the headers of its strings and slice.
const feedRowOverhead = 96

// cachedFeedRow is a committed feed row: what pendingFeed would read of it.
type cachedFeedRow struct {
	key, hash, id string
	version       int64
	fields        []byte // the snapshot row's fields as stored (positional)
}

func (r *cachedFeedRow) size() int {
	return len(r.key) + len(r.hash) + len(r.id) + cap(r.fields) + feedRowOverhead
}

// feedCacheBlock is one committed block of feed rows: seqs lo, lo+1, ….
type feedCacheBlock struct {
	lo    int64
	rows  []cachedFeedRow // rows[i] has seq lo+i; cleared (zero) once dropped
	first int             // rows before it are dropped
	done  map[string]int64
	size  int
}

func (b *feedCacheBlock) hi() int64 { return b.lo + int64(len(b.rows)) - 1 }

// feedCache is the store's cache of its recently committed feed rows.
type feedCache struct {
	mu     sync.Mutex
	limit  int               // bytes; 0: feedCacheBytes, < 0: cache nothing
	size   int               // bytes held
	blocks []*feedCacheBlock // by lo, disjoint
	hits   int64             // rows served, for tests
}

func (c *feedCache) max() int {
	if c.limit == 0 {
		return feedCacheBytes
	}
	return c.limit
}

// add keeps a committed block's rows (seq lo onwards) for its sinks. It is
// called only after the commit that stored them is durable.
func (c *feedCache) add(lo int64, sinks []string, rows []cachedFeedRow) {
	if len(rows) == 0 || c.max() <= 0 {
		return
	}
	b := &feedCacheBlock{lo: lo, rows: rows, done: make(map[string]int64, len(sinks))}
	for _, sink := range sinks {
		b.done[sink] = lo - 1
	}
	for i := range rows {
		b.size += rows[i].size()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.size > c.max() {
		return
	}
	k := sort.Search(len(c.blocks), func(k int) bool { return c.blocks[k].lo >= lo })
	if k < len(c.blocks) && c.blocks[k].lo <= b.hi() || k > 0 && c.blocks[k-1].hi() >= lo {
		return // overlaps what is held: cannot be (seqs are not reused); keep the older
	}
	c.blocks = slices.Insert(c.blocks, k, b)
	c.size += b.size
	for c.size > c.max() && len(c.blocks) > 0 {
		c.size -= c.blocks[0].size
		c.blocks[0] = nil
		c.blocks = c.blocks[1:]
	}
}

// take appends to out the cached rows of seqs from+1, from+2, … up to hi, at
// most n, stopping at the first seq it does not hold; it returns out.
func (c *feedCache) take(from, hi int64, n int, out []cachedFeedRow) []cachedFeedRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	start, seq := len(out), from+1
	k := sort.Search(len(c.blocks), func(k int) bool { return c.blocks[k].hi() >= seq })
walk:
	for ; k < len(c.blocks) && c.blocks[k].lo <= seq; k++ {
		b := c.blocks[k]
		for i := seq - b.lo; i < int64(len(b.rows)); i++ {
			if seq > hi || len(out)-start >= n || i < int64(b.first) || b.rows[i].fields == nil {
				break walk // done, or not held (never, or dropped)
			}
			out = append(out, b.rows[i])
			seq++
		}
	}
	c.hits += int64(len(out) - start)
	return out
}

// advanced notes that the sink has settled every seq of the block starting at
// lo up to done; rows every sink of the block has settled are dropped.
func (c *feedCache) advanced(sink string, lo, done int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := sort.Search(len(c.blocks), func(k int) bool { return c.blocks[k].lo >= lo })
	if k == len(c.blocks) || c.blocks[k].lo != lo {
		return
	}
	b := c.blocks[k]
	if prior, ok := b.done[sink]; !ok || done <= prior {
		return
	}
	b.done[sink] = done
	least := done
	for _, d := range b.done {
		least = min(least, d)
	}
	upTo := min(int(least-b.lo)+1, len(b.rows)) // rows before upTo are settled everywhere
	for ; b.first < upTo; b.first++ {
		if r := &b.rows[b.first]; r.fields != nil {
			sz := r.size()
			b.size -= sz
			c.size -= sz
			*r = cachedFeedRow{}
		}
	}
	if b.first == len(b.rows) {
		c.blocks = slices.Delete(c.blocks, k, k+1)
	}
}

// drop forgets seqs (their records were moved on by a commit of this process).
func (c *feedCache) drop(seqs []int64) {
	if len(seqs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, seq := range seqs {
		k := sort.Search(len(c.blocks), func(k int) bool { return c.blocks[k].hi() >= seq })
		if k == len(c.blocks) || c.blocks[k].lo > seq {
			continue
		}
		b := c.blocks[k]
		r := &b.rows[seq-b.lo]
		if int(seq-b.lo) < b.first || r.fields == nil {
			continue
		}
		sz := r.size()
		b.size -= sz
		c.size -= sz
		*r = cachedFeedRow{} // not held: take stops here
	}
}

// stats returns how many rows the cache holds and how many it served.
func (c *feedCache) stats() (rows int, hits int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.blocks {
		rows += len(b.rows) - b.first
	}
	return rows, c.hits
}

// cacheFeeds keeps the feed rows of a commit that is durable.
func (s *sqlStore) cacheFeeds(blocks []*feedBlock) {
	for _, blk := range blocks {
		if len(blk.rows) == 0 || blk.rows[0].lazySeq == nil {
			continue
		}
		rows := make([]cachedFeedRow, len(blk.rows))
		for i, r := range blk.rows {
			// The fields as a read returns them: PostgreSQL stores them with
			// pgtext.JSON's replacement of NUL escapes (jsonArg).
			fields := r.fields
			if s.d == postgresDialect {
				fields = pgtext.JSON(fields)
			}
			rows[i] = cachedFeedRow{key: r.Key, hash: r.Hash, id: r.lazyID, version: r.Version, fields: fields}
		}
		s.feeds.add(*blk.rows[0].lazySeq, blk.sinks, rows)
	}
}

// priorLazySeqs lists the seqs of lazy events whose snapshot rows the commit
// rewrites: its records move on (or a replay writes them again, keeping the
// seq; see pendingSnapshot.leavesLazy).
func (rs snapshotRows) priorLazySeqs() []int64 {
	var seqs []int64
	for _, r := range rs.list {
		if r.prior != nil && r.prior.LazySeq.Valid {
			seqs = append(seqs, r.prior.LazySeq.Int64)
		}
	}
	return seqs
}
