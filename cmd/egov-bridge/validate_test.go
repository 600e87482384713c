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
