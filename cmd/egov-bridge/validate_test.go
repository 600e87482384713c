package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateListsEveryMappingMistake: validate reports every mistake of every
// mapping the config names, decoding mistakes and semantic ones together, beside
// the config's own.
func TestValidateListsEveryMappingMistake(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "dossier.yaml"), `entity: dossier
key: [code]
fields:
  code:   { from: MaHoSo, required: true, requird: true }
  status: { from: TrangThai, type: int }
  due_at: { from: NgayHenTra, type: time }
computed:
  overdue: 'status in [2, 4] && due_at < now()'
`)
	write(t, filepath.Join(dir, "outage.yaml"), `entity: outage
key: [id]
fields:
  id:    { from: Ma, type: integr }
  phone: { from: SDT }
rules:
  - name: outage.scheduled
    when: 'type == "created"'
    notify: { phone: phone, template: scheduled }
templates:
  scheduled: 'Cắt điện'
`)
	cfg := filepath.Join(dir, "bad.yaml")
	write(t, cfg, `store: { driver: sqlite, path: state.db }
sources:
  - { name: motcua, type: sql, driver: sqlite, dsn: agency.db, table: HoSo, cursor: { column: NgayCapNhat, key: MaHoSo }, mapping: dossier.yaml }
  - { name: evn, type: sql, driver: sqlite, dsn: agency.db, table: LichCat, cursor: { column: NgayCapNhat, key: Ma }, mapping: outage.yaml, schedul: "@hourly" }
sinks:
  - { name: events, type: log }
routes:
  - { events: ["*"], to: [events] }
`)
	write(t, filepath.Join(dir, "agency.db"), "")
	var out, errOut strings.Builder
	if code := run([]string{"validate", "-c", cfg}, &out, &errOut); code == 0 {
		t.Fatalf("validate exited 0 on bad mappings; stdout:\n%s", out.String())
	}
	msg := errOut.String()
	for _, want := range []string{
		filepath.Join(dir, "dossier.yaml") + `:4:43: fields.code.requird: unknown field "requird"`,
		filepath.Join(dir, "dossier.yaml") + `:8:12: computed.overdue: a computed field may not read the clock`,
		filepath.Join(dir, "outage.yaml") + `:4:28: fields.id.type: unknown type "integr"`,
		filepath.Join(dir, "outage.yaml") + `:9:22: rules[0].notify.phone: field "phone" is of type string`,
		cfg + `:4:141: sources[1].schedul: unknown field "schedul"`,
		"5 errors",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("validate output lacks %q:\n%s", want, msg)
		}
	}
}

// TestValidateShowRedactsSecrets: --show prints the config with its defaults and
// every secret option redacted, whatever form it was given in.
func TestValidateShowRedactsSecrets(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "m.yaml"), "entity: e\nkey: [k]\nfields: { k: { from: K } }\n")
	write(t, filepath.Join(dir, "ioc-secret"), "s3cr3t-hmac-key\n")
	cfg := filepath.Join(dir, "c.yaml")
	write(t, cfg, `store: { driver: postgres, dsn: "postgres://egov:pa55word@db/egov" }
sources:
  - { name: a, type: sql, driver: postgres, dsn: "postgres://reader:hunter2@agency/motcua", table: t, cursor: { column: c, key: k }, mapping: m.yaml }
sinks:
  - { name: ioc, type: webhook, url: "https://ioc.example.gov.vn/events?token=tok123", secret_file: ioc-secret }
routes:
  - { to: [ioc] }
`)
	code, out, errOut := runCmd(t, "validate", "--show", "-c", cfg)
	if code != 0 {
		t.Fatalf("validate --show: exit %d\n%s%s", code, out, errOut)
	}
	for _, secret := range []string{"pa55word", "hunter2", "tok123", "s3cr3t"} {
		if strings.Contains(out, secret) {
			t.Errorf("--show prints the secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"dsn: '[redacted]'", "url: '[redacted]'", "secret: '[redacted]'", "batch_size: 1000", "schedule: '@every 1m'", "max_age: 72h", "timezone: Asia/Ho_Chi_Minh"} {
		if !strings.Contains(out, want) {
			t.Errorf("--show lacks %q:\n%s", want, out)
		}
	}
}
