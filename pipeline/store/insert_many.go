package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// column is a column of a multi-row insert: its name and its PostgreSQL type.
type column struct{ name, typ string }

// columns reads "name type" pairs.
func columns(spec ...string) []column {
	out := make([]column, len(spec))
	for i, s := range spec {
		name, typ, _ := strings.Cut(s, " ")
		out[i] = column{name, typ}
	}
	return out
}

// The columns of the inserts a commit makes most of, in the order of their rows'
// values.
var (
	eventColumns     = columns("id text", "source text", "entity text", "key text", "type text", "payload jsonb", "created_at timestamptz")
	feedEventColumns = columns("seq bigint", "id text", "source text", "entity text", "key text", "type text", "payload jsonb", "created_at timestamptz")
	outboxColumns    = columns("sink text", "seq bigint", "next_at timestamptz", "record text", "head boolean")
)

// insertMany inserts rows, in their order (a serial column follows it), and
// passes the rows of the tail's RETURNING to scan when it is set. On PostgreSQL
// it is one statement whatever the number of rows, each column sent as one text
// array: a VALUES list of thousands of parameters costs PostgreSQL more to parse
// and bind than to run. SQLite takes multi-row VALUES (insertRows).
func (s *sqlStore) insertMany(ctx context.Context, tx *sqlx.Tx, table string, cols []column, tail string, rows [][]any, scan func(*sqlx.Rows) error) error {
	if len(rows) == 0 {
		return nil
	}
	names := make([]string, len(cols))
	for j, c := range cols {
		names[j] = c.name
	}
	list := strings.Join(names, ", ")
	if s.d != postgresDialect {
		return s.insertRows(ctx, tx, `INSERT INTO `+table+` (`+list+`) VALUES `, tail, rows, scan)
	}
	args := make([]any, len(cols))
	casts, arrays := make([]string, len(cols)), make([]string, len(cols))
	for j, c := range cols {
		values := make([]sql.NullString, len(rows))
		for i, r := range rows {
			values[i] = pgText(r[j])
		}
		args[j] = pq.Array(values)
		casts[j] = `CAST(x.` + c.name + ` AS ` + c.typ + `)`
		arrays[j] = `CAST($` + strconv.Itoa(j+1) + ` AS text[])`
	}
	query := `INSERT INTO ` + table + ` (` + list + `) SELECT ` + strings.Join(casts, ", ") +
		` FROM unnest(` + strings.Join(arrays, ", ") + `) WITH ORDINALITY AS x(` + list + `, ord) ORDER BY x.ord` + tail
	if scan == nil {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	}
	return queryEach(ctx, tx, query, args, scan)
}

// pgText is a bind value as PostgreSQL's text input takes it.
func pgText(v any) sql.NullString {
	switch v := v.(type) {
	case nil:
		return sql.NullString{}
	case string:
		return sql.NullString{String: v, Valid: true}
	case int64:
		return sql.NullString{String: strconv.FormatInt(v, 10), Valid: true}
	case int:
		return sql.NullString{String: strconv.Itoa(v), Valid: true}
	case bool:
		return sql.NullString{String: strconv.FormatBool(v), Valid: true}
	case time.Time:
		return sql.NullString{String: string(pq.FormatTimestamp(v)), Valid: true}
	case *int64:
		if v == nil {
			return sql.NullString{}
		}
		return pgText(*v)
	default: // string kinds such as pipeline.EventType
		return sql.NullString{String: fmt.Sprint(v), Valid: true}
	}
}
