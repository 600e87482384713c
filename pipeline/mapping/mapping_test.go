package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

const dossierYAML = `entity: dossier
key: [code]
agency_field: unit
fields:
  code:     { from: MaHoSo, required: true, transform: [trim, upper] }
  citizen:  { from: ChuHoSo, required: true }
  unit:     { from: DonViXuLy }
  status:   { from: TrangThaiHoSo, type: int, required: true, in: [1,2,3,4,5,6,7,8,9,10] }
  received: { from: NgayTiepNhan, type: time, layout: yyyyMMddHHmmss }
  due_at:   { from: NgayHenTra, type: time }
  fee:      { from: LePhi, type: decimal, default: 0 }
  online:   { from: KenhThucHien, type: bool, map: { "1": false, "2": true } }
`

func mustCompile(t *testing.T, src string) *Mapping {
	t.Helper()
	m, err := Compile("dossier.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return m
}

func TestApplyTypesAFullRow(t *testing.T) {
	m := mustCompile(t, dossierYAML)
	rec, err := m.Apply(pipeline.Row{
		"MaHoSo":        " 000.00.12.h12-241127-0001 ",
		"ChuHoSo":       "Nguyê\u0303n Văn An", // decomposed ễ must come out NFC
		"DonViXuLy":     "UBND-CG",
		"TrangThaiHoSo": int64(9),
		"NgayTiepNhan":  "20261120083000",
		"NgayHenTra":    "27/11/2026",
		"LePhi":         "15000,5",
		"KenhThucHien":  "2",
	}, "DEFAULT")
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	want := map[string]any{
		"code":     "000.00.12.H12-241127-0001",
		"citizen":  "Nguyễn Văn An",
		"unit":     "UBND-CG",
		"status":   int64(9),
		"received": time.Date(2026, 11, 20, 1, 30, 0, 0, time.UTC),
		"due_at":   time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC),
		"fee":      15000.5,
		"online":   true,
	}
	for k, w := range want {
		if got := rec.Fields[k]; got != w {
			t.Errorf("field %s = %#v, want %#v", k, got, w)
		}
	}
	if rec.Key != "000.00.12.H12-241127-0001" || rec.Agency != "UBND-CG" || rec.Entity != "dossier" {
		t.Errorf("record identity = %q/%q/%q", rec.Entity, rec.Key, rec.Agency)
	}
}

func TestApplyRejectsBadRowsNamingEveryField(t *testing.T) {
	m := mustCompile(t, dossierYAML)
	tests := []struct {
		name string
		row  pipeline.Row
		want []string
	}{
		{"missing required", pipeline.Row{"MaHoSo": "A1", "TrangThaiHoSo": "2"}, []string{"citizen (column ChuHoSo): required value is missing"}},
		{"status out of range", pipeline.Row{"MaHoSo": "A1", "ChuHoSo": "x", "TrangThaiHoSo": "11"}, []string{"value 11 is not one of"}},
		{"not a number and bad date", pipeline.Row{"MaHoSo": "A1", "ChuHoSo": "x", "TrangThaiHoSo": "hai", "NgayTiepNhan": "2026-11-20"}, []string{`"hai" is not a whole number`, "does not match layout 20060102150405"}},
		{"blank key", pipeline.Row{"MaHoSo": "  ", "ChuHoSo": "x", "TrangThaiHoSo": 1}, []string{"code (column MaHoSo): required value is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Apply(tt.row, "")
			var re *RowError
			if !errors.As(err, &re) {
				t.Fatalf("want *RowError, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if len(re.Fields) != len(tt.want) {
				t.Errorf("got %d field errors, want %d: %v", len(re.Fields), len(tt.want), err)
			}
		})
	}
}

func TestCompileReportsEveryMistakeWithLine(t *testing.T) {
	src := `entity: dossier
key: [code, nope]
fields:
  code: { from: MaHoSo }
  status: { from: TrangThai, type: integer }
  due: { from: Han, type: time, zone: Mars/Olympus }
  fee: { from: Phi, type: decimal, default: abc }
  name: { from: Ten, transform: [trim, shout] }
  extra: { form: X }
`
	_, err := Compile("bad.yaml", []byte(src), Options{})
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want config.Errors, got %v", err)
	}
	// The unknown key does not stop the semantic checks: every mistake at once.
	for _, w := range []string{
		"bad.yaml:9:12: fields.extra.form: unknown field \"form\" (did you mean \"from\"?)",
		"bad.yaml:2:", `key field "nope" is not among the fields`,
		"bad.yaml:5:", `unknown type "integer"`,
		"bad.yaml:6:", `unknown time zone "Mars/Olympus"`,
		"bad.yaml:7:", `default abc is not a valid decimal`,
		"bad.yaml:8:", `unknown transform "shout"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q:\n%v", w, err)
		}
	}
}

func TestHashIgnoresFieldOrderAndDetectsChange(t *testing.T) {
	m := mustCompile(t, dossierYAML)
	row := pipeline.Row{"MaHoSo": "A1", "ChuHoSo": "x", "TrangThaiHoSo": 2}
	a, _ := m.Apply(row, "")
	b, _ := m.Apply(row, "")
	if a.Hash() != b.Hash() {
		t.Fatal("same row hashed differently")
	}
	row["TrangThaiHoSo"] = 4
	c, _ := m.Apply(row, "")
	if c.Hash() == a.Hash() {
		t.Fatal("changed status kept the hash")
	}
	if got := pipeline.ChangedFields(a.Fields, c.Fields); len(got) != 1 || got[0] != "status" {
		t.Fatalf("changed = %v, want [status]", got)
	}
}

func TestTypedRestoresStoredValues(t *testing.T) {
	m := mustCompile(t, dossierYAML)
	rec, err := m.Apply(pipeline.Row{"MaHoSo": "A1", "ChuHoSo": "x", "TrangThaiHoSo": 4, "NgayHenTra": "27/11/2026", "LePhi": "8,75", "KenhThucHien": "2"}, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rec.Fields)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stored map[string]any
	if err := dec.Decode(&stored); err != nil {
		t.Fatal(err)
	}
	typed := m.Typed(stored)
	if changed := pipeline.ChangedFields(typed, rec.Fields); len(changed) != 0 {
		t.Fatalf("stored and fresh values differ in %v", changed)
	}
	if typed["status"] != int64(4) || typed["fee"] != 8.75 || typed["online"] != true {
		t.Fatalf("typed = %#v", typed)
	}
	if _, ok := typed["due_at"].(time.Time); !ok {
		t.Fatalf("due_at = %T, want time.Time", typed["due_at"])
	}
}

func TestTypesAndTransformsOfTheMappingLanguage(t *testing.T) {
	dir := t.TempDir()
	csv := "MaDonVi;TenDonVi\nUBND-CG;UBND huyện Cần Giuộc\nUBND-PL;UBND xã Phước Lại\n"
	if err := os.WriteFile(filepath.Join(dir, "units.csv"), []byte("\ufeff"+csv), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `entity: person
key: [id]
fields:
  id:      { from: Ma, required: true, transform: [digits, { pad_left: { width: 6 } }] }
  phone:   { from: SDT, type: phone_vn }
  phone2:  { from: SDT2, type: phone_vn, invalid: "null" }
  mark:    { from: Diem, type: mark }
  unit:    { from: DonVi, transform: [trim, upper, { lookup: units }] }
  commune: { from: Xa, transform: [collapse, fold] }
  area:    { from: DiaChi, transform: [{ split: ',', index: -1 }, trim] }
  code:    { from: MaHS, transform: [{ regex: 'HS-(\d+)' }] }
  fee:     { from: Phi, type: decimal }
  name:    { from: [HoDem, Ten], mask: name }
  place:   { from: [Ap, Phuong, Huyen], join: ", " }
tables:
  units: { csv: units.csv, key: MaDonVi, value: TenDonVi }
computed:
  label: 'concat(unit, " / ", commune)'
`
	path := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		row     pipeline.Row
		want    map[string]any
		err     string
		dropped string
	}{
		{"everything well formed", pipeline.Row{"Ma": "12-34", "SDT": "+84 (91) 234-5678", "Diem": "8,75", "DonVi": " ubnd-pl ", "Xa": "  Thị trấn  Cần Giuộc ",
			"DiaChi": "Số 1, ấp 3, xã Long Hậu", "MaHS": "Mã HS-00123 (bản sao)", "Phi": "1.250.000",
			"HoDem": " Nguyễn Văn ", "Ten": "An", "Ap": "Ấp 3", "Phuong": "", "Huyen": "Cần Giuộc"},
			map[string]any{"id": "001234", "phone": "84912345678", "mark": 8.75, "unit": "UBND xã Phước Lại", "commune": "thi tran can giuoc",
				"area": "xã Long Hậu", "code": "00123", "fee": 1250000.0, "label": "UBND xã Phước Lại / thi tran can giuoc",
				"name": "Nguyễn Văn An", "place": "Ấp 3, Cần Giuộc"}, "", ""},
		{"absent mark, old prefix, invalid second phone kept as null", pipeline.Row{"Ma": "1", "SDT": "01239876543", "SDT2": "12345", "Diem": "VẮNG"},
			map[string]any{"phone": "84839876543", "phone2": nil, "mark": nil}, "", "phone2"},
		{"a landline is not a mobile", pipeline.Row{"Ma": "1", "SDT": "0272 3812 345"}, nil, "phone (column SDT)", ""},
		{"a mark above 10", pipeline.Row{"Ma": "1", "Diem": "11"}, nil, "mark (column Diem)", ""},
		{"a unit missing from its table", pipeline.Row{"Ma": "1", "DonVi": "UBND-XX"}, nil, "unit (column DonVi)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := m.Apply(tt.row, "")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "3812 345") {
					t.Fatalf("reason shows the phone number in clear: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, w := range tt.want {
				if got := rec.Fields[k]; got != w {
					t.Errorf("%s = %#v, want %#v", k, got, w)
				}
			}
			if got := strings.Join(rec.Dropped, ","); got != tt.dropped {
				t.Errorf("dropped = %q, want %q", got, tt.dropped)
			}
		})
	}
}

func TestJoinNeedsSeveralColumns(t *testing.T) {
	for src, want := range map[string]string{
		"entity: e\nkey: [a]\nfields:\n  a: { from: A, join: '-' }\n": "m.yaml:4:23: fields.a.join: join applies to a list of from columns",
		"entity: e\nkey: [a]\nfields:\n  a: { from: [] }\n":           "m.yaml:4:14: fields.a.from: want at least one column",
	} {
		if _, err := Compile("m.yaml", []byte(src), Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
