package store

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"unsafe"

	"github.com/jmoiron/sqlx"
)

// A first sync's commits insert thousands of new snapshot rows of up to twenty
// columns each. Through database/sql every value of a multi-row INSERT is
// boxed into a row slice, copied into the statement's argument list, checked
// and converted into a fresh []driver.NamedValue per statement (1.4 GB of them
// for a million rows), and a row's source and time were bound once per row. On
// SQLite, insertNewSnapshotRaw binds the rows through the driver's own statement
// instead, filling one reused []driver.NamedValue, and binds the source and the
// time once per statement (?1 and ?2 in every row's tuple). The SQL and the
// stored values are the ones insertRows wrote.

// rawConn is the driver connection of a commit's transaction: the statements it
// prepares run inside that transaction.
type rawConn struct {
	conn *sqlx.Conn
}

// rawStmts keeps the full-size statements of insertNewSnapshotRaw, prepared on
// the writing connection dc. Statements of a connection the pool has since
// replaced are dropped, not closed: their connection is gone.
type rawStmts struct {
	mu    sync.Mutex
	dc    any
	rows  [2]int // by withFacts
	stmts [2]driver.Stmt
}

func factsIndex(withFacts bool) int {
	if withFacts {
		return 1
	}
	return 0
}

// get returns the kept statement of n rows prepared on dc, if any.
func (c *rawStmts) get(dc any, withFacts bool, n int) driver.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := factsIndex(withFacts)
	if c.dc != dc || c.rows[i] != n {
		return nil
	}
	return c.stmts[i]
}

// put keeps st, a statement of n rows prepared on dc.
func (c *rawStmts) put(dc any, withFacts bool, n int, st driver.Stmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dc != dc {
		c.dc, c.rows, c.stmts = dc, [2]int{}, [2]driver.Stmt{}
	}
	i := factsIndex(withFacts)
	if c.stmts[i] != nil {
		c.stmts[i].Close()
	}
	c.rows[i], c.stmts[i] = n, st
}

// close closes the kept statements; the store is closing.
func (s *sqlStore) closeRawStmts() {
	c := &s.raw
	c.mu.Lock()
	stmts := c.stmts
	c.dc, c.rows, c.stmts = nil, [2]int{}, [2]driver.Stmt{}
	c.mu.Unlock()
	if stmts == ([2]driver.Stmt{}) {
		return
	}
	// On the connection, so no commit is using it.
	conn, err := s.db.Conn(context.Background())
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Raw(func(any) error { //nolint:errcheck // closing
		for _, st := range stmts {
			if st != nil {
				st.Close()
			}
		}
		return nil
	})
}

// errNoRawExec: the driver lacks what insertNewSnapshotRaw needs (never with
// modernc's); the caller inserts through database/sql.
var errNoRawExec = errors.New("the sqlite driver cannot prepare and execute with named values")

// insertNewSnapshotRaw inserts new rows (no conflict clause) on SQLite, with
// their fact columns when withFacts is set (every row has its fact columns
// then).
func (s *sqlStore) insertNewSnapshotRaw(ctx context.Context, rc rawConn, source string, updatedAt int64, rows []*pendingSnapshot, withFacts bool) error {
	if len(rows) == 0 {
		return nil
	}
	// ?1 and ?2 come first: an anonymous ? takes the number after the largest
	// one so far.
	head := `INSERT INTO snapshot (source, updated_at, entity, key, hash, version, fields, deleted, lazy_seq`
	cols := 7 // entity, key, hash, version, fields, deleted, lazy_seq: source and updated_at are ?1 and ?2
	tuple := `(?1, ?2, ?, ?, ?, ?, ?, ?, ?`
	if withFacts {
		head += `, ` + factColumnList
		cols += 11
		tuple += strings.Repeat(`, ?`, 11)
	}
	head += `) VALUES `
	tuple += `)`
	per := max(1, (maxParams-2)/cols)
	text := func(n int) string {
		var sb strings.Builder
		sb.Grow(len(head) + n*(len(tuple)+2))
		sb.WriteString(head)
		for i := range n {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(tuple)
		}
		return sb.String()
	}
	// The rows' hashes as blobs (hashArg), decoded into one buffer.
	arena := make([]byte, 0, 32*len(rows))
	hashes := make([]any, len(rows))
	for i, r := range rows {
		h := r.Hash
		if !isHexHash(h) {
			hashes[i] = h
			continue
		}
		start := len(arena)
		arena = append(arena, make([]byte, len(h)/2)...)
		if _, err := hex.Decode(arena[start:], []byte(h)); err != nil {
			hashes[i] = h
			continue
		}
		hashes[i] = arena[start:len(arena):len(arena)]
	}
	nv := make([]driver.NamedValue, 2+min(per, len(rows))*cols)
	for i := range nv {
		nv[i].Ordinal = i + 1
	}
	nv[0].Value, nv[1].Value = source, updatedAt
	return rc.conn.Raw(func(dc any) error {
		prep, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errNoRawExec
		}
		// A statement of per rows is kept for the next commits (compiling one
		// of thousands of parameters costs about as much as running it); a
		// shorter one, for the batch's last rows, is made for this call.
		var partial driver.Stmt
		defer func() {
			if partial != nil {
				partial.Close()
			}
		}()
		for start := 0; start < len(rows); start += per {
			chunk := rows[start:min(start+per, len(rows))]
			stmt := s.raw.get(dc, withFacts, len(chunk))
			if stmt == nil {
				st, err := prep.PrepareContext(ctx, text(len(chunk)))
				if err != nil {
					return err
				}
				if len(chunk) == per {
					s.raw.put(dc, withFacts, per, st)
				} else {
					partial = st
				}
				stmt = st
			}
			exec, ok := stmt.(driver.StmtExecContext)
			if !ok {
				return errNoRawExec
			}
			j := 2
			for k, r := range chunk {
				nv[j].Value = r.Entity
				nv[j+1].Value = r.Key
				nv[j+2].Value = hashes[start+k]
				nv[j+3].Value = r.Version
				nv[j+4].Value = unsafeString(r.fields)
				nv[j+5].Value = r.Deleted
				if r.lazySeq != nil {
					nv[j+6].Value = *r.lazySeq
				} else {
					nv[j+6].Value = nil
				}
				j += 7
				if withFacts {
					for _, v := range r.fact.values() {
						if v.Valid {
							nv[j].Value = v.Int64
						} else {
							nv[j].Value = nil
						}
						j++
					}
				}
			}
			if _, err := exec.ExecContext(ctx, nv[:j]); err != nil {
				return err
			}
		}
		// The buffers' bytes were copied by the driver: drop the references.
		for i := 2; i < len(nv); i++ {
			nv[i].Value = nil
		}
		return nil
	})
}

// unsafeString is b as a string without a copy, for a bind value: the driver
// copies a text value into SQLite's memory when it binds it, and b (a snapshot
// row's encoded fields) is never changed after it is encoded.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
