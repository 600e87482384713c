package sqlsource

import (
	"strings"
)

// stmt is a statement and its bound arguments; values never enter the SQL text.
type stmt struct {
	SQL  string
	Args []any
}

// queries builds the statements of one source. Every identifier in it was
// validated by Options.Validate and is quoted here.
type queries struct {
	d      dialect
	list   string // select list
	from   string // quoted table, or the custom query as a derived table
	cursor string // quoted cursor column
	key    string // quoted key column
}

func newQueries(d dialect, o *Options) queries {
	q := queries{d: d, cursor: d.quote(o.Cursor.Column), key: d.quote(o.Cursor.Key)}
	if o.Table != "" {
		parts := strings.Split(o.Table, ".")
		for i, p := range parts {
			parts[i] = d.quote(p)
		}
		q.from = strings.Join(parts, ".")
	} else {
		// Newlines keep a trailing "-- comment" in the query from swallowing the
		// closing parenthesis.
		q.from = "(\n" + strings.TrimRight(strings.TrimSpace(o.Query), "; \t\r\n") + "\n) AS " + d.quote("src")
	}
	q.list = "*"
	if len(o.Columns) > 0 {
		cols := make([]string, 0, len(o.Columns)+2)
		has := map[string]bool{}
		for _, c := range o.Columns {
			cols = append(cols, d.quote(c))
			has[strings.ToLower(c)] = true
		}
		// The cursor and key are read even when not listed: the position is made
		// of them.
		for _, c := range []string{o.Cursor.Column, o.Cursor.Key} {
			if !has[strings.ToLower(c)] {
				cols = append(cols, d.quote(c))
			}
		}
		q.list = strings.Join(cols, ", ")
	}
	return q
}

// describe returns no rows but the result's column types, from which the source
// learns the cursor column's type before its first batch.
func (q queries) describe() stmt {
	return stmt{SQL: "SELECT " + q.list + " FROM " + q.from + " WHERE 1 = 0"}
}

// window is where a batch starts and ends, in bound values; nil means unset.
type window struct {
	afterCursor, afterKey any  // rows strictly after (cursor, key)
	afterNullKey          bool // the row at afterCursor had a NULL key
	from                  any  // rows with cursor >= from (after Rewind)
	upper                 any  // rows with cursor <= upper (now - lag)
	// belowActive bounds a rowversion cursor: rows with cursor < MIN_ACTIVE_ROWVERSION().
	belowActive bool
	// readable is the dialect's condition for cursor values the keyset may read.
	readable string
}

// batch builds the keyset query for one batch:
//
//	SELECT ... WHERE c >= :c AND (c > :c OR k > :k) AND c <= :upper ORDER BY c, k LIMIT :n
//
// The first two conditions are (c > :c OR (c = :c AND k > :k)) written so that the
// leading c >= :c is an index range seek on every database; the plain OR form makes
// PostgreSQL and SQL Server scan. Comparisons exclude rows whose cursor is NULL
// (see unreadable). Rows with a NULL key sort within their cursor value first
// (SQLite, SQL Server) or last (PostgreSQL); the conditions follow that order, so
// such a row is read, rejected and passed like any other.
func (q queries) batch(w window, limit int) stmt {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return q.d.placeholder(len(args))
	}
	var cond []string
	switch {
	case w.afterCursor != nil && w.afterNullKey && !q.d.nullsFirst():
		// NULL keys come last within a cursor value: nothing of it is left.
		cond = append(cond, q.cursor+" > "+arg(w.afterCursor))
	case w.afterCursor != nil && w.afterNullKey:
		cond = append(cond, q.cursor+" >= "+arg(w.afterCursor)+
			" AND ("+q.cursor+" > "+arg(w.afterCursor)+" OR "+q.key+" IS NOT NULL)")
	case w.afterCursor != nil:
		rest := ""
		if !q.d.nullsFirst() {
			rest = " OR " + q.key + " IS NULL"
		}
		cond = append(cond, q.cursor+" >= "+arg(w.afterCursor)+
			" AND ("+q.cursor+" > "+arg(w.afterCursor)+" OR "+q.key+" > "+arg(w.afterKey)+rest+")")
	case w.from != nil:
		cond = append(cond, q.cursor+" >= "+arg(w.from))
	}
	if w.upper != nil {
		cond = append(cond, q.cursor+" <= "+arg(w.upper))
	}
	if w.belowActive {
		// SQL Server: the lowest rowversion of any transaction still open; rows at or
		// above it may yet be joined by rows with lower values that commit later.
		cond = append(cond, q.cursor+" < MIN_ACTIVE_ROWVERSION()")
	}
	if w.readable != "" {
		cond = append(cond, w.readable)
	}
	if len(cond) == 0 {
		cond = append(cond, q.cursor+" IS NOT NULL")
	}
	st := q.selectWhere(cond, q.cursor+", "+q.key, arg(limit))
	st.Args = args
	return st
}

// unreadable builds the sweep for rows the keyset never returns, those whose
// cursor is NULL or fails readable: in key order, after the key of the last one
// swept (nil: from the first). Rows whose key is NULL too cannot be swept by key
// and are left out.
func (q queries) unreadable(readable string, afterKey any, limit int) stmt {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return q.d.placeholder(len(args))
	}
	cond := []string{q.cursor + " IS NULL"}
	if readable != "" {
		cond[0] = "(" + q.cursor + " IS NULL OR NOT (" + readable + "))"
	}
	if afterKey != nil {
		cond = append(cond, q.key+" > "+arg(afterKey))
	} else {
		cond = append(cond, q.key+" IS NOT NULL")
	}
	st := q.selectWhere(cond, q.key, arg(limit))
	st.Args = args
	return st
}

// byKeys reads the rows whose key is one of keys, each bound as an argument.
func (q queries) byKeys(keys []any) stmt {
	ph := make([]string, len(keys))
	for i := range keys {
		ph[i] = q.d.placeholder(i + 1)
	}
	return stmt{
		SQL: "SELECT " + q.list + " FROM " + q.from + " WHERE " + q.key + " IN (" + strings.Join(ph, ", ") + ")" +
			" ORDER BY " + q.cursor + ", " + q.key,
		Args: keys,
	}
}

// maxCursor returns the greatest cursor value among those the keyset reads.
func (q queries) maxCursor(readable string) stmt {
	where := ""
	if readable != "" {
		where = " WHERE " + readable
	}
	return stmt{SQL: "SELECT MAX(" + q.cursor + ") FROM " + q.from + where}
}

// selectWhere is SELECT list FROM source WHERE cond ORDER BY order, bounded to the
// rows bound at limitPH. The limit is the last argument even where its text comes
// first (TOP), so positional placeholders (SQLite's ?) stay in text order.
func (q queries) selectWhere(cond []string, order, limitPH string) stmt {
	top, tail := q.d.limit(limitPH)
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(top)
	b.WriteString(q.list)
	b.WriteString(" FROM ")
	b.WriteString(q.from)
	b.WriteString(" WHERE ")
	b.WriteString(strings.Join(cond, " AND "))
	b.WriteString(" ORDER BY ")
	b.WriteString(order)
	b.WriteString(tail)
	return stmt{SQL: b.String()}
}
