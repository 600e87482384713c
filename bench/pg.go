package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/lib/pq"
)

// pgServer is the test PostgreSQL: the agency database, the PostgreSQL store and the
// pgtable sink each get a fresh schema on it, dropped when the benchmark ends.
type pgServer struct {
	base    string
	db      *sql.DB
	schemas []string
	// postmaster is the server's main process when it runs on this machine
	// (see serverCPU), else 0.
	postmaster int
}

func openPG(ctx context.Context, dsn string) (*pgServer, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres unreachable at %s: %w", redactDSN(dsn), err)
	}
	p := &pgServer{base: dsn, db: db}
	p.postmaster = p.findPostmaster(pctx)
	return p, nil
}

// newSchema creates a uniquely named schema and returns its name and a DSN whose
// search_path is that schema (lib/pq sends unknown URL parameters as settings).
func (p *pgServer) newSchema(ctx context.Context, prefix string) (name, dsn string, err error) {
	var b [5]byte
	_, _ = rand.Read(b[:])
	name = prefix + "_" + hex.EncodeToString(b[:])
	if _, err := p.db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", "", fmt.Errorf("create schema %s: %w", name, err)
	}
	p.schemas = append(p.schemas, name)
	return name, withSearchPath(p.base, name), nil
}

// close drops every schema the benchmark made.
func (p *pgServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range p.schemas {
		_, _ = p.db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
	}
	p.db.Close()
}

func withSearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn + " search_path=" + schema // key=value form
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(the DSN)"
	}
	return u.Redacted()
}

// seedDossiers creates ho_so in schema and fills it with n generated rows through
// COPY FROM STDIN, then adds the index the cursor needs and analyzes the table.
func (p *pgServer) seedDossiers(ctx context.Context, schema string, n int, seed uint64) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, "SET LOCAL search_path = "+schema); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, createDossierSQL); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	quoted := make([]string, len(dossierColumns))
	for i, c := range dossierColumns {
		quoted[i] = pq.QuoteIdentifier(c)
	}
	stmt, err := tx.PrepareContext(ctx, "COPY ho_so ("+strings.Join(quoted, ", ")+") FROM STDIN")
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	g := newGenerator(seed, n)
	for i := range n {
		if _, err := stmt.ExecContext(ctx, g.row(i)...); err != nil {
			return fmt.Errorf("copy row %d: %w", i, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE INDEX ho_so_cursor ON ho_so ("NgayCapNhat", "MaHoSo")`); err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = p.db.ExecContext(ctx, "ANALYZE "+schema+".ho_so")
	return err
}

// touchDossiers moves n dossiers, picked pseudo-randomly by seed, to their next
// status and stamps them "now" in the source's zone (less a margin for the
// source's lag), as clerks would. It keeps the rows as they were in
// <schema>.touched, so untouchDossiers can put them back and every store's poll
// sees the same change.
func (p *pgServer) touchDossiers(ctx context.Context, schema string, n int, zone string, seed uint64) (int, error) {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE `+schema+`.touched AS
		SELECT "MaHoSo", "TrangThaiHoSo", "NgayCapNhat" FROM `+schema+`.ho_so ORDER BY md5("MaHoSo" || $2) LIMIT $1`,
		n, fmt.Sprint(seed)); err != nil {
		return 0, fmt.Errorf("touch dossiers: keep the rows: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE `+schema+`.ho_so h
		SET "TrangThaiHoSo" = h."TrangThaiHoSo" % 10 + 1,
		    "NgayCapNhat" = (now() AT TIME ZONE $1) - interval '10 seconds'
		FROM `+schema+`.touched t WHERE h."MaHoSo" = t."MaHoSo"`, zone)
	if err != nil {
		return 0, fmt.Errorf("touch dossiers: %w", err)
	}
	got, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return int(got), tx.Commit()
}

// checkpoint has the server write out what it still holds dirty (CHECKPOINT). A
// million-row first sync leaves hundreds of megabytes of WAL behind it, and the
// checkpoint it sets off runs for a minute after; a poll measured meanwhile
// would time the server's disk, not the poll (an INSERT of 1,273 events took
// 254 ms during that checkpoint's end, 40 ms without it). CHECKPOINT needs
// superuser or pg_checkpoint; without either, the poll is measured as it comes.
func (p *pgServer) checkpoint(ctx context.Context) error {
	if _, err := p.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		return fmt.Errorf("checkpoint before the poll: %w", err)
	}
	return nil
}

// untouchDossiers puts the rows touchDossiers changed back as they were.
func (p *pgServer) untouchDossiers(ctx context.Context, schema string) error {
	_, err := p.db.ExecContext(ctx, `UPDATE `+schema+`.ho_so h
		SET "TrangThaiHoSo" = t."TrangThaiHoSo", "NgayCapNhat" = t."NgayCapNhat"
		FROM `+schema+`.touched t WHERE h."MaHoSo" = t."MaHoSo";
		DROP TABLE `+schema+`.touched`)
	if err != nil {
		return fmt.Errorf("put the touched dossiers back: %w", err)
	}
	return nil
}

// schemaSize is the disk size of every table (with indexes and TOAST) in schema.
func (p *pgServer) schemaSize(ctx context.Context, schema string) (int64, error) {
	var size sql.NullInt64
	err := p.db.QueryRowContext(ctx, `SELECT sum(pg_total_relation_size(c.oid))
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')`, schema).Scan(&size)
	return size.Int64, err
}

// countRows counts a table's rows; a table that does not exist yet counts 0.
func (p *pgServer) countRows(ctx context.Context, table string) int {
	var n int
	if err := p.db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return 0
	}
	return n
}

// anyRow says whether table has a row yet; a missing table has none.
func (p *pgServer) anyRow(ctx context.Context, table string) bool {
	var one int
	err := p.db.QueryRowContext(ctx, "SELECT 1 FROM "+table+" LIMIT 1").Scan(&one)
	return err == nil
}

// selectSQL is the SELECT the pipeline's reads add up to: the mapped columns of the
// whole table in (cursor, key) order.
func selectSQL(table string) string {
	quoted := make([]string, len(readColumns))
	for i, c := range readColumns {
		quoted[i] = pq.QuoteIdentifier(c)
	}
	return "SELECT " + strings.Join(quoted, ", ") + " FROM " + table +
		" ORDER BY " + pq.QuoteIdentifier(cursorColumn) + ", " + pq.QuoteIdentifier(keyColumn)
}

// tableSize is one table's disk size with its indexes and TOAST.
type tableSize struct {
	name  string
	bytes int64
}

// tableSizes lists schema's tables, largest first.
func (p *pgServer) tableSizes(ctx context.Context, schema string) ([]tableSize, error) {
	return querySizes(ctx, p.db, `SELECT c.relname, pg_total_relation_size(c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 2 DESC`, schema)
}

// sqliteTables lists a SQLite file's tables with their indexes, largest first,
// from its dbstat table. The file is opened read-only after the daemon exited.
func sqliteTables(ctx context.Context, path string) ([]tableSize, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return querySizes(ctx, db, `SELECT s.tbl_name, sum(d.pgsize) FROM dbstat d
		JOIN sqlite_schema s ON s.name = d.name GROUP BY s.tbl_name ORDER BY 2 DESC`)
}

func querySizes(ctx context.Context, db *sql.DB, query string, args ...any) ([]tableSize, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tableSize
	for rows.Next() {
		var t tableSize
		if err := rows.Scan(&t.name, &t.bytes); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
