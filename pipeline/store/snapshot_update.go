package store

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"
)

// factColumnNames are factColumnList's columns, in its order.
var factColumnNames = func() []string {
	names := strings.Split(factColumnList, ",")
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
	}
	return names
}()

// updateSnapshot rewrites, on SQLite, the rows of records the commit read
// (priorRows), by rowid, one statement each. The SET list names the row's own
// columns and only those lazy_seq and fact columns whose values change: SQLite
// rewrites an index's entry whenever the SET list names one of its columns (or a
// column its WHERE reads), whatever the values, so an upsert naming every column
// moved each changed record's entries in all five of the snapshot's secondary
// indexes, where a status change moves one or two. A statement that writes one
// row also needs no statement journal (a copy of every page it changes, kept in
// case it fails half-way). Statements are prepared once per SET list.
//
// Rows go in rowid order: the table's leaves are then visited once each, in
// order, and so are the lazy_seq index's (a first sync numbers its rows and their
// created events in the same order); in the batch's order, the page cache
// (2,000 KiB) dropped and read each page again, and wrote it out mid-transaction.
func (s *sqlStore) updateSnapshot(ctx context.Context, tx *sqlx.Tx, rows []*pendingSnapshot, updatedAt any) error {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b *pendingSnapshot) int { return cmp.Compare(a.prior.ID, b.prior.ID) })
	stmts := map[uint32]*sqlx.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	for _, r := range rows {
		p := r.prior
		var set uint32
		args := make([]any, 0, 18)
		args = append(args, hashArg(r.Hash), r.Version, s.d.jsonArg(r.fields), r.Deleted, updatedAt)
		if !sameSeq(p.LazySeq, r.lazySeq) {
			set |= 1
			args = append(args, r.lazySeq)
		}
		if r.fact != nil {
			// A batch without facts for the record leaves the row's facts alone.
			next, prior := r.fact.values(), p.factColumns.values()
			for j, v := range next {
				if !sameInt(v, prior[j]) {
					set |= 2 << j
					args = append(args, nullArg(v))
				}
			}
		}
		args = append(args, p.ID)
		st := stmts[set]
		if st == nil {
			var err error
			if st, err = tx.PreparexContext(ctx, updateSnapshotSQL(set)); err != nil {
				return err
			}
			stmts[set] = st
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// updateSnapshotSQL is the UPDATE for one set of changing columns: bit 0
// lazy_seq, bit j+1 the j-th of factColumnNames.
func updateSnapshotSQL(set uint32) string {
	var sb strings.Builder
	sb.WriteString(`UPDATE snapshot SET hash = ?, version = ?, fields = ?, deleted = ?, updated_at = ?`)
	if set&1 != 0 {
		sb.WriteString(`, lazy_seq = ?`)
	}
	for j, name := range factColumnNames {
		if set&(2<<j) != 0 {
			sb.WriteString(`, ` + name + ` = ?`)
		}
	}
	sb.WriteString(` WHERE id = ?`)
	return sb.String()
}

func sameSeq(stored sql.NullInt64, next *int64) bool {
	if next == nil {
		return !stored.Valid
	}
	return stored.Valid && stored.Int64 == *next
}

func sameInt(a, b sql.NullInt64) bool {
	return a.Valid == b.Valid && (!a.Valid || a.Int64 == b.Int64)
}

// nullArg is v as a bind value: nil for NULL.
func nullArg(v sql.NullInt64) any {
	if v.Valid {
		return v.Int64
	}
	return nil
}
