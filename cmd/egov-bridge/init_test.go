package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
)

// TestInitScaffoldsAMappingThatValidatesAndPasses: init against a real PostgreSQL
// table with timestamp, integer, text and phone-like columns writes a mapping that
// validate accepts and a test file that `egov-bridge test` passes, with no citizen
// data from the table in either, and prints a source with the guessed cursor.
func TestInitScaffoldsAMappingThatValidatesAndPasses(t *testing.T) {
	dsn, schema := testpg.Schema(t)
	db := testpg.Open(t, dsn)
	for _, q := range []string{
		`CREATE TABLE hs_hoso (
			ma_ho_so      text PRIMARY KEY,
			chu_ho_so     text NOT NULL,
			so_cccd       varchar(12),
			lien_he       text,
			trang_thai    integer NOT NULL,
			le_phi        numeric(12,2),
			truc_tuyen    boolean,
			ngay_tiep_nhan timestamp NOT NULL,
			ngay_cap_nhat timestamptz NOT NULL DEFAULT now()
		)`,
		`INSERT INTO hs_hoso VALUES
			('HS-003', 'Lê Thị Cúc',     '079123456789', '0987 654 321', 4, NULL,    false, '2026-11-21 09:15:00', '2026-11-21T02:15:00Z'),
			('HS-001', 'Nguyễn Văn An',  '079111222333', '0912345678',   2, 50000.5, true,  '2026-11-20 08:30:00', '2026-11-20T01:30:00Z'),
			('HS-002', 'Trần Minh Đức',  NULL,           NULL,           9, 0,       true,  '2026-11-20 14:00:00', '2026-11-22T07:00:00Z'),
			('HS-004', 'Phạm Thu Hà',    '079444555666', '0901234567',   1, 10,      false, '2026-11-23 10:00:00', '2026-11-23T03:00:00Z')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	out := t.TempDir()
	code, stdout, stderr := runCmd(t, "init", "--source", "sql", "--driver", "postgres", "--dsn", dsn, "--table", schema+".hs_hoso", "--out", out)
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, dsn) {
		t.Error("init printed the DSN")
	}
	for _, want := range []string{"cursor: { column: ngay_cap_nhat, key: ma_ho_so }", "table: " + schema + ".hs_hoso", "3 cases"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("init output lacks %q:\n%s", want, stdout)
		}
	}
	mappingText := mustRead(t, filepath.Join(out, "hs_hoso.yaml"))
	for _, want := range []string{
		"entity: hs_hoso", "key: [ma_ho_so]",
		"ma_ho_so: { from: ma_ho_so, required: true, transform: [trim] }",
		"chu_ho_so: { from: chu_ho_so, mask: name }",
		"so_cccd: { from: so_cccd, mask: id }",
		`lien_he: { from: lien_he, type: phone_vn, invalid: "null" }`,
		"trang_thai: { from: trang_thai, type: int }",
		"le_phi: { from: le_phi, type: decimal }",
		"truc_tuyen: { from: truc_tuyen, type: bool }",
		"ngay_tiep_nhan: { from: ngay_tiep_nhan, type: time }",
	} {
		if !strings.Contains(mappingText, want) {
			t.Errorf("mapping lacks %q:\n%s", want, mappingText)
		}
	}
	testText := mustRead(t, filepath.Join(out, "hs_hoso.test.yaml"))
	for _, secret := range []string{"Nguyễn Văn An", "079111222333", "0912345678", "84912345678", "987 654", "HS-004"} {
		if strings.Contains(testText+mappingText, secret) {
			t.Errorf("the scaffold shows %q (citizen data, or a row beyond the first three):\n%s", secret, testText)
		}
	}

	if code, stdout, stderr := runCmd(t, "test", out); code != 0 || !strings.Contains(stdout, "3 passed, 0 failed") {
		t.Fatalf("egov-bridge test on the scaffold: exit %d\n%s%s", code, stdout, stderr)
	}
	cfg := filepath.Join(out, "config.yaml")
	write(t, cfg, "store: { path: state.db }\nsources:\n  - { name: hs, type: sql, driver: postgres, dsn: \"${HS_DSN}\", table: "+schema+
		".hs_hoso, cursor: { column: ngay_cap_nhat, key: ma_ho_so }, mapping: hs_hoso.yaml }\n")
	t.Setenv("HS_DSN", dsn)
	if code, stdout, stderr := runCmd(t, "validate", "-c", cfg); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}

	// A second run does not overwrite the files without --force.
	if code, _, stderr := runCmd(t, "init", "--dsn", dsn, "--table", schema+".hs_hoso", "--out", out); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("init over existing files: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "hs_hoso.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestInitRefusesWhatItCannotDo(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"init", "--table", "t"}, "give --dsn or --dsn-file"},
		{[]string{"init", "--driver", "sqlserver", "--dsn", "x", "--table", "t"}, "PostgreSQL tables only"},
		{[]string{"init", "--source", "httpfeed", "--dsn", "x", "--table", "t"}, "sql sources only"},
		{[]string{"init", "--dsn", "x"}, `required flag(s) "table" not set`},
		{[]string{"init", "--dsn", "x", "--table", "a.b.c"}, "want table or schema.table"},
	} {
		code, _, stderr := runCmd(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, want 2 with %q:\n%s", tt.args, code, tt.want, stderr)
		}
	}
}
