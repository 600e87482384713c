package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

func TestAgenciesAreValidatedAndGiveTheirSourcesAnAgency(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.yaml": testMapping,
		"c.yaml": `store: { driver: sqlite }
agencies:
  - { code: HUYEN, name: Huyện Cần Giuộc }
  - { code: XA-A, name: UBND xã Phước Lại, parent: HUYEN, sources: [motcua] }
  - { code: XA-A, name: trùng mã }
  - { code: XA-B, name: UBND xã Long Hậu, parent: TINH, sources: [nowhere, other] }
  - { code: SO, name: Sở, parent: SO2 }
  - { code: SO2, name: Sở 2, parent: SO }
  - { code: XA-C, name: UBND xã C, sources: [motcua] }
sources:
  - { name: motcua, type: memory, table: HoSo, mapping: m.yaml }
  - { name: other, type: memory, table: HoSo, mapping: m.yaml, agency: XA-Z }
`})
	file := filepath.Join(dir, "c.yaml")
	data, _ := os.ReadFile(file)
	_, err := Load(file, data, nil)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want config.Errors, got %v", err)
	}
	want := []string{
		`c.yaml:5:13: agencies[2].code: agencies[1] already has code "XA-A"`,
		`c.yaml:6:51: agencies[3].parent: no agency has code "TINH"`,
		`c.yaml:6:67: agencies[3].sources[0]: no source is named "nowhere"`,
		`agencies[3].sources[1]: source "other" says agency: XA-Z, but agency "XA-B" lists it`,
		`agencies[4].parent: parents form a cycle through "SO"`,
		`agencies[5].parent: parents form a cycle through "SO2"`,
		`agencies[6].sources[0]: source "motcua" is already owned by agency "XA-A"`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, strings.TrimPrefix(w, "c.yaml")) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(errs), len(want), got)
	}

	good := `store: { driver: sqlite }
agencies:
  - { code: HUYEN, name: Huyện Cần Giuộc }
  - { code: XA-A, name: UBND xã Phước Lại, parent: HUYEN, sources: [motcua] }
sources:
  - { name: motcua, type: memory, table: HoSo, mapping: m.yaml }
`
	cfg, err := Load(filepath.Join(dir, "good.yaml"), []byte(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sources[0].Agency != "XA-A" {
		t.Errorf("source agency = %q, want XA-A (its owner)", cfg.Sources[0].Agency)
	}
	if len(cfg.Agencies) != 2 || cfg.Agencies[1].Parent != "HUYEN" {
		t.Errorf("agencies = %+v", cfg.Agencies)
	}
}

const officialsMapping = `entity: dossier
key: [code]
fields:
  code:   { required: true }
  status: { type: int, required: true }
  due:    { type: time }
rules:
  - name: deadline.overdue
    at: due
    when: 'after.status in [2, 4]'
    notify: { officials: true, template: overdue }
templates:
  overdue: "Hồ sơ {{.code}} đã quá hạn."
`

func TestOfficialsAreValidatedWithTheirLinesAndContactsMasked(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.yaml": officialsMapping,
		"c.yaml": `store: { driver: sqlite }
agencies:
  - code: HUYEN
    name: Huyện Cần Giuộc
    officials:
      - { name: Chánh văn phòng }
      - { name: Phó Chủ tịch, phone: "0912 345" }
      - { name: "", user_id: "4411" , events: ["deadline.[" ] }
  - { code: XA-A, name: UBND xã Phước Lại, parent: HUYEN, sources: [motcua] }
sources:
  - { name: motcua, type: memory, table: HoSo, mapping: m.yaml }
  - { name: other, type: memory, table: HoSo, mapping: m.yaml, agency: XA-Z }
`})
	file := filepath.Join(dir, "c.yaml")
	data, _ := os.ReadFile(file)
	_, err := Load(file, data, nil)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want config.Errors, got %v", err)
	}
	want := []string{
		`c.yaml:6:9: agencies[0].officials[0]: an official needs a contact: user_id (a follower of the OA) or phone`,
		`c.yaml:7:38: agencies[0].officials[1].phone: not a Vietnamese mobile number`,
		`c.yaml:8:17: agencies[0].officials[2].name: an official needs a name`,
		`agencies[0].officials[2].events[0]: "deadline.[" is not a rule name or pattern`,
		`sources[1].agency: no agency has code "XA-Z" in agencies: (rule deadline.overdue of the mapping notifies the officials of the record's agency)`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, strings.TrimPrefix(w, "c.yaml")) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(errs), len(want), got)
	}
	if strings.Contains(got, "0912 345") {
		t.Errorf("an official's phone is quoted in the errors:\n%s", got)
	}
}
