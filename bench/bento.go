package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"
)

// bentoConfig is the general-purpose engine's pipeline on the same table: the same
// SELECT (sql_select with the floor's ORDER BY), the mapping's normalisation in
// Bloblang (trim, upper, blanks folded, phone to 84…, portal times from the
// source's zone to UTC, channel names), a SHA-256 of each record, one JSON line per
// row to a file. No state and no diff, like the plain loop; Bloblang has no NFC, the
// only step it leaves out.
func bentoConfig(dsn, table, out string) string {
	cols := make([]string, len(readColumns))
	for i, c := range readColumns {
		cols[i] = fmt.Sprintf("%q", pq.QuoteIdentifier(c))
	}
	return fmt.Sprintf(`http:
  enabled: false
logger:
  level: WARN
input:
  sql_select:
    driver: postgres
    dsn: %q
    table: %q
    columns: [%s]
    suffix: %q
pipeline:
  processors:
    - mapping: |
        let ch = this.KenhThucHien.or(0).string()
        let digits = this.SoDienThoai.or("").re_replace_all("[^0-9]", "")
        let national = if $digits.has_prefix("84") && $digits.length() == 11 { $digits.slice(2) } else if $digits.has_prefix("0") && $digits.length() == 10 { $digits.slice(1) } else { $digits }
        root.code = this.MaHoSo.or("").trim().uppercase()
        root.procedure_code = this.MaTTHC.or("").trim()
        root.procedure = this.TenTTHC.or("").re_replace_all("\\s+", " ").trim()
        root.citizen = this.ChuHoSo.or("").trim()
        root.phone = if $national.length() == 9 { "84" + $national } else { deleted() }
        root.unit = this.DonViXuLy.or("").trim().uppercase()
        root.channel = {"1": "trực tiếp", "2": "trực tuyến", "3": "bưu chính công ích"}.get($ch).or(deleted())
        root.online = $ch == "2"
        root.status = this.TrangThaiHoSo.or(0)
        root.received_at = if this.NgayTiepNhan.or("") != "" { (this.NgayTiepNhan + "+0700").ts_parse("20060102150405-0700").ts_tz("UTC") } else { deleted() }
        root.due_at = if this.NgayHenTra.or("") != "" { (this.NgayHenTra + "+0700").ts_parse("20060102150405-0700").ts_tz("UTC") } else { deleted() }
        root.finished_at = if this.NgayKetThucXuLy.or("") != "" { (this.NgayKetThucXuLy + "+0700").ts_parse("20060102150405-0700").ts_tz("UTC") } else { deleted() }
        root.updated_at = (this.NgayCapNhat.ts_format("20060102150405", "UTC") + "+0700").ts_parse("20060102150405-0700").ts_tz("UTC")
    - mapping: |
        root.key = this.code
        root.hash = content().hash("sha256").encode("hex")
        root.record = this
output:
  file:
    path: %q
    codec: lines
`, dsn, table, strings.Join(cols, ", "),
		"ORDER BY "+pq.QuoteIdentifier(cursorColumn)+", "+pq.QuoteIdentifier(keyColumn), out)
}

// bentoRun runs the Bento binary on the table once and reports its wall time,
// CPU and peak RSS, checking that it wrote a line per row.
func (b *bench) bentoRun(ctx context.Context) error {
	b.logf("Bento (%s)", b.o.bento)
	dir := filepath.Join(b.tmp, "bento")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := filepath.Join(dir, "out.jsonl")
	cfg := filepath.Join(dir, "bento.yaml")
	if err := os.WriteFile(cfg, []byte(bentoConfig(b.srcDSN, b.table, out)), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.o.bento, "-c", cfg)
	var stderr limitedBuffer
	stderr.max, stderr.buf = 16<<10, new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return fmt.Errorf("bento: %w: %s", err, strings.TrimSpace(stderr.buf.String()))
	}
	lines := countLines(out)
	res := result{what: bentoWhat, count: lines, unit: "rows", dur: wall, done: lines == b.o.n,
		note: "sql_select → Bloblang → file, the same SELECT; whole process (start, connect, exit)"}
	if lines != b.o.n {
		res.note += fmt.Sprintf("; wrote %s lines, not %s", thousands(lines), thousands(b.o.n))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.rss = int64(ru.Maxrss) * 1024
		res.cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	}
	b.rep.add(res)
	return nil
}

const bentoWhat = "Bento (Benthos fork): sql_select → Bloblang → file; no state"
