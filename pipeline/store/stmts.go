package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Statements the delivery of a first sync runs for every window of events
// (decision 0027). SQLite compiles a statement's text at every call that is not
// through a prepared statement, and compiling these was a quarter of a Settle;
// on SQLite the store prepares them once, when it opens, on both pools.
// PostgreSQL parses them in the server, where lib/pq sends each statement with
// its arguments in one round trip; a prepared statement would cost one more on
// every connection it has not met, so there the text is sent as before.
const (
	feedDoneQuery  = `SELECT seq FROM snapshot_feed_done WHERE sink = ?`
	feedDoneRangeQ = `SELECT seq FROM snapshot_feed_done WHERE sink = ? AND seq > ? AND seq <= ?`
	feedSeqsQuery  = `SELECT lazy_seq FROM snapshot
			WHERE lazy_seq IS NOT NULL AND lazy_seq > ? AND lazy_seq <= ? ORDER BY lazy_seq LIMIT ?`
	feedSeqPresentQuery = `SELECT EXISTS (SELECT 1 FROM snapshot WHERE lazy_seq IS NOT NULL AND lazy_seq = ?)`
	feedRowsQuery       = `SELECT s.lazy_seq, s.key, s.hash, s.version, s.fields FROM snapshot s
		WHERE s.lazy_seq IS NOT NULL AND s.lazy_seq > ? AND s.lazy_seq <= ? ORDER BY s.lazy_seq LIMIT ?`
	feedAdvanceQuery  = `UPDATE snapshot_feeds SET done = ?, delivered = delivered + ? WHERE sink = ? AND lo = ?`
	feedDoneDropQuery = `DELETE FROM snapshot_feed_done WHERE sink = ? AND seq > ? AND seq <= ?`
	fenceQuery        = `SELECT generation FROM leases WHERE name = ?`
)

// preparedSQLite lists the statements prepared on SQLite: those above, the
// sink's blocks as Pending and Settle read them, the outbox look-up of Settle
// and the outbox poll.
func preparedSQLite() []string {
	return []string{
		feedDoneQuery, feedDoneRangeQ, feedSeqsQuery, feedSeqPresentQuery, feedRowsQuery, feedAdvanceQuery,
		feedDoneDropQuery, fenceQuery,
		sinkBlocksQuery(sqliteDialect, blocksAfter, pendingBlocks), sinkBlocksQuery(sqliteDialect, blocksUpTo, 0),
		lookUpQuery(sqliteDialect), pendingQueryFor(sqliteDialect, false), pendingQueryFor(sqliteDialect, true),
	}
}

// prepared holds a pool's prepared statements by their text.
type prepared map[string]*sqlx.Stmt

// prepareAll prepares the statements on db. It runs when the store opens,
// before any transaction: the writing pool has one connection, which a
// transaction holds until it ends.
func prepareAll(ctx context.Context, db *sqlx.DB, queries []string) (prepared, error) {
	p := prepared{}
	for _, q := range queries {
		st, err := db.PreparexContext(ctx, q)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("store: prepare %q: %w", q, err)
		}
		p[q] = st
	}
	return p, nil
}

func (p prepared) close() {
	for _, st := range p {
		st.Close()
	}
}

// stmt returns the prepared statement of query for q (a transaction of the
// writing pool, or a pool), or nil. A transaction gets the statement as
// prepared on its connection (database/sql prepares it there the first time).
func (s *sqlStore) stmt(ctx context.Context, q any, query string) *sqlx.Stmt {
	switch q := q.(type) {
	case *sqlx.Tx:
		if st := s.wstmts[query]; st != nil {
			return q.StmtxContext(ctx, st)
		}
	case *sqlx.DB:
		if q == s.rdb {
			return s.rstmts[query]
		}
		if q == s.db {
			return s.wstmts[query]
		}
	}
	return nil
}

// query runs a query through its prepared statement when there is one.
func (s *sqlStore) query(ctx context.Context, q sqlx.QueryerContext, query string, args ...any) (*sqlx.Rows, error) {
	if st := s.stmt(ctx, q, query); st != nil {
		return st.QueryxContext(ctx, args...)
	}
	return q.QueryxContext(ctx, s.q(query), args...)
}

// exec runs a statement through its prepared statement when there is one.
func (s *sqlStore) exec(ctx context.Context, q sqlx.ExecerContext, query string, args ...any) (sql.Result, error) {
	if st := s.stmt(ctx, q, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, s.q(query), args...)
}

// each runs a query (see query) and passes each row to fn.
func (s *sqlStore) each(ctx context.Context, q sqlx.QueryerContext, query string, args []any, fn func(*sqlx.Rows) error) error {
	rows, err := s.query(ctx, q, query, args...)
	if err != nil {
		return err
	}
	return scanRows(rows, fn)
}

// get reads one row into dest (see query).
func (s *sqlStore) get(ctx context.Context, q sqlx.QueryerContext, dest any, query string, args ...any) error {
	if st := s.stmt(ctx, q, query); st != nil {
		return st.GetContext(ctx, dest, args...)
	}
	return sqlx.GetContext(ctx, q, dest, s.q(query), args...)
}
