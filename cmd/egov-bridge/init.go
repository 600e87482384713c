package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egov-bridge/egov-bridge/internal/scaffold"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/reference"
)

type initFlags struct {
	source, driver, dsn, table, out string
	rows                            int
	force                           bool
}

func (a *app) initCmd() *cobra.Command {
	var f initFlags
	cmd := &cobra.Command{
		Use:   "init --source sql --driver postgres (--dsn DSN | --dsn-file F) --table SCHEMA.TABLE [--out DIR] [--rows N] [--force]",
		Short: "write a starting mapping and its test cases for an agency's table (reads it read-only)",
		Long: `Connects read-only, reads the table's columns, types and primary key and its first rows,
and writes DIR/<table>.yaml (one field per column, types guessed from the column types,
citizen data marked for masking) and DIR/<table>.test.yaml (the first rows as test
cases, phones, names and id numbers replaced). It prints the source's config, with the
cursor guessed from the timestamp columns and the primary key. The DSN is never printed.`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&f.source, "source", "sql", "the source type (sql)")
	fs.StringVar(&f.driver, "driver", "postgres", "the database (postgres)")
	fs.StringVar(&f.dsn, "dsn", "", "the connection string (prefer --dsn-file or ${VAR}: it may hold a password)")
	dsnFile := fs.String("dsn-file", "", "read the connection string from this file")
	fs.StringVar(&f.table, "table", "", "the table, as schema.table or table (schema public) (required)")
	fs.StringVar(&f.out, "out", "mappings", "the folder the mapping and its test file are written to")
	fs.IntVar(&f.rows, "rows", 3, "rows made into test cases (1-20)")
	fs.BoolVar(&f.force, "force", false, "overwrite existing files")
	_ = cmd.MarkFlagRequired("table")
	cmd.MarkFlagsMutuallyExclusive("dsn", "dsn-file")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		switch {
		case f.source != "sql":
			return fmt.Errorf("--source %q: init can scaffold sql sources only", f.source)
		case f.driver != "postgres":
			return fmt.Errorf("--driver %q: init reads PostgreSQL tables only (write SQL Server and SQLite mappings by hand from the reference)", f.driver)
		case f.rows < 1 || f.rows > 20:
			return fmt.Errorf("--rows must be between 1 and 20")
		}
		if *dsnFile != "" {
			b, err := os.ReadFile(*dsnFile)
			if err != nil {
				return exitWith(a.stderr, exitFailed, err)
			}
			f.dsn = strings.TrimSpace(string(b))
		}
		if f.dsn == "" {
			return fmt.Errorf("give --dsn or --dsn-file")
		}
		return action(func([]string) int { return runInit(a.ctx, f, a.stdout, a.stderr) })(c, nil)
	}
	return cmd
}

// exitWith prints an error and ends the command with code.
func exitWith(stderr io.Writer, code int, err error) error {
	fmt.Fprintln(stderr, "egov-bridge:", err)
	return exitError(code)
}

var tableRE = regexp.MustCompile(`^(?:([\p{L}\p{N}_]+)\.)?([\p{L}\p{N}_]+)$`)

func runInit(ctx context.Context, f initFlags, stdout, stderr io.Writer) int {
	m := tableRE.FindStringSubmatch(f.table)
	if m == nil {
		fmt.Fprintf(stderr, "egov-bridge: --table %q: want table or schema.table (letters, digits, _)\n", f.table)
		return exitUsage
	}
	schema, name := m[1], m[2]
	if schema == "" {
		schema = "public"
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t, err := readPostgresTable(ctx, f.dsn, schema, name, f.rows)
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", redactDSN(err, f.dsn))
		return exitFailed
	}
	base := scaffoldName(name)
	mappingFile := filepath.Join(f.out, base+".yaml")
	testFile := filepath.Join(f.out, base+".test.yaml")
	if !f.force {
		for _, p := range []string{mappingFile, testFile} {
			if _, err := os.Stat(p); err == nil {
				fmt.Fprintf(stderr, "egov-bridge: %s exists (use --force to overwrite)\n", p)
				return exitFailed
			}
		}
	}
	res, err := scaffold.Guess(t, base+".yaml", schemaHeader(f.out, reference.MappingSchemaFile), schemaHeader(f.out, reference.MappingTestSchemaFile))
	if err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return exitFailed
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		fmt.Fprintln(stderr, "egov-bridge:", err)
		return exitFailed
	}
	for p, b := range map[string][]byte{mappingFile: res.Mapping, testFile: res.Tests} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			fmt.Fprintln(stderr, "egov-bridge:", err)
			return exitFailed
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "egov-bridge: warning:", w)
	}
	fmt.Fprintf(stdout, "wrote %s (%d fields) and %s (%d cases)\n\n", mappingFile, len(res.Fields), testFile, len(t.Rows))
	fmt.Fprintf(stdout, "A source for the config (its connection string from the environment or dsn_file):\n\n")
	fmt.Fprintf(stdout, "sources:\n  - name: %s\n    type: sql\n    driver: postgres\n    dsn: \"${%s_DSN}\"\n    table: %s.%s\n",
		strings.ReplaceAll(base, "_", "-"), strings.ToUpper(base), schema, name)
	if res.CursorCol != "" {
		fmt.Fprintf(stdout, "    cursor: { column: %s, key: %s }   # %s; the key is the primary key\n", res.CursorCol, res.Key, res.CursorWhy)
	} else {
		fmt.Fprintf(stdout, "    cursor: { column: ?, key: %s }   # name the column updated on every change\n", res.Key)
	}
	fmt.Fprintf(stdout, "    mapping: %s\n\nNext: egov-bridge test %s\n", filepath.ToSlash(mappingFile), filepath.ToSlash(f.out))
	return exitOK
}

// scaffoldName is the files' base name: the table's, lower-case.
func scaffoldName(table string) string {
	return strings.Trim(regexp.MustCompile(`[^a-z0-9_]+`).ReplaceAllString(strings.ToLower(table), "_"), "_")
}

// schemaHeader points the mapping at the mapping schema when the output folder is
// inside a checkout that has it.
func schemaHeader(out, schemaFile string) string {
	abs, err := filepath.Abs(out)
	if err != nil {
		return ""
	}
	for dir := abs; ; dir = filepath.Dir(dir) {
		s := filepath.Join(dir, reference.SchemaDir, schemaFile)
		if _, err := os.Stat(s); err == nil {
			rel, err := filepath.Rel(abs, s)
			if err != nil {
				return ""
			}
			return "# yaml-language-server: $schema=" + filepath.ToSlash(rel)
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// readPostgresTable reads the columns, primary key and first rows (by key) in a
// read-only transaction.
func readPostgresTable(ctx context.Context, dsn, schema, name string, rows int) (scaffold.Table, error) {
	t := scaffold.Table{Schema: schema, Name: name}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return t, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return t, fmt.Errorf("connect: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	if _, err := tx.ExecContext(ctx, "SET LOCAL statement_timeout = '30s'"); err != nil {
		return t, err
	}
	cols, err := tx.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, name)
	if err != nil {
		return t, fmt.Errorf("read the columns: %w", err)
	}
	for cols.Next() {
		var c scaffold.Column
		if err := cols.Scan(&c.Name, &c.DBType); err != nil {
			cols.Close()
			return t, err
		}
		t.Columns = append(t.Columns, c)
	}
	cols.Close()
	if err := cols.Err(); err != nil {
		return t, err
	}
	if len(t.Columns) == 0 {
		return t, fmt.Errorf("no table %s.%s (or no columns this user may read)", schema, name)
	}
	quoted := pqQuote(schema) + "." + pqQuote(name)
	pk, err := tx.QueryContext(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = $1::regclass AND i.indisprimary`, quoted)
	if err != nil {
		return t, fmt.Errorf("read the primary key: %w", err)
	}
	var keys []string
	for pk.Next() {
		var k string
		if err := pk.Scan(&k); err != nil {
			pk.Close()
			return t, err
		}
		keys = append(keys, k)
		for i := range t.Columns {
			if t.Columns[i].Name == k {
				t.Columns[i].PrimaryKey = true
			}
		}
	}
	pk.Close()
	if err := pk.Err(); err != nil {
		return t, err
	}
	order := ""
	if len(keys) > 0 {
		qk := make([]string, len(keys))
		for i, k := range keys {
			qk[i] = pqQuote(k)
		}
		order = " ORDER BY " + strings.Join(qk, ", ")
	}
	rs, err := tx.QueryContext(ctx, fmt.Sprintf("SELECT * FROM %s%s LIMIT %d", quoted, order, rows))
	if err != nil {
		return t, fmt.Errorf("read the first rows: %w", err)
	}
	defer rs.Close()
	names, err := rs.Columns()
	if err != nil {
		return t, err
	}
	for rs.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return t, err
		}
		row := pipeline.Row{}
		for i, n := range names {
			row[n] = vals[i]
		}
		t.Rows = append(t.Rows, row)
	}
	return t, rs.Err()
}

func pqQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// redactDSN keeps the connection string out of an error (drivers may quote it).
func redactDSN(err error, dsn string) error {
	if dsn == "" || !strings.Contains(err.Error(), dsn) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), dsn, "[dsn]"))
}
