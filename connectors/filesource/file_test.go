package filesource

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
)

// examSheet is shaped like the result sheets education departments publish: two
// merged title rows, a blank row, the header, a merged section row per exam
// council, dates of birth as date cells (one typed as text), marks as numbers,
// and "VẮNG" for an absent candidate.
func examSheet(t *testing.T) []byte {
	s := newSheet(t, "KetQua")
	const sh = "KetQua"
	s.row(sh, 1, "SỞ GIÁO DỤC VÀ ĐÀO TẠO TÂY NINH")
	s.merge(sh, "A1", "I1")
	s.row(sh, 2, "KẾT QUẢ THI TỐT NGHIỆP THPT NĂM 2026")
	s.merge(sh, "A2", "I2")
	s.row(sh, 4, "STT", "SBD", "Họ và tên", "Ngày sinh", "Toán", "Ngữ văn", "Ngoại ngữ", "Mã môn NN", "Vật lí")
	s.row(sh, 5, "Hội đồng thi 49 - Sở GD&ĐT Long An")
	s.merge(sh, "A5", "I5")
	birth := func(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
	s.row(sh, 6, 1, "49001234", "Nguyễn Thị Bích Ngọc", birth(2008, 3, 15), 8.4, 7.25, 9.2, "N1", 8.75)
	s.row(sh, 7, 2, "49001235", "Trần Văn Đức", birth(2008, 12, 1), 6, "VẮNG", 5.5, "N1", "")
	s.row(sh, 8, 3, "49001236", "Lê Minh Khang", "05/11/2008", 9.6, 8, "VẮNG", "N1", 9.25)
	s.dateStyle(sh, "D6", "D7")
	return s.bytes()
}

func examOptions(dir string) *Options {
	o := folderOptions(dir)
	o.Columns = []string{"SBD", "HoTen", "NgaySinh", "Toan", "NguVan", "NgoaiNgu", "MaMonNgoaiNgu", "VatLi"}
	o.Aliases = map[string][]string{"HoTen": {"Họ và tên"}, "MaMonNgoaiNgu": {"Mã môn NN"}}
	return o
}

func TestExamSpreadsheetRowsMapToScores(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ket-qua-thpt-2026.xlsx"), examSheet(t), longAgo)
	rows, _, err := readAll(t.Context(), open(t, examOptions(dir), nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want the 3 candidates (titles, blank and section rows skipped): %v", len(rows), rows)
	}
	first := rows[0]
	if first["SBD"] != "49001234" || first["HoTen"] != "Nguyễn Thị Bích Ngọc" || first["Toan"] != "8.4" || first["STT"] != "1" ||
		first[ColRow] != int64(6) || !strings.HasSuffix(first[ColFile].(string), "ket-qua-thpt-2026.xlsx") {
		t.Fatalf("first row %v", first)
	}
	// A date cell is the day in the source's zone: midnight of 15 March in Vietnam.
	if got, ok := first["NgaySinh"].(time.Time); !ok || !got.Equal(time.Date(2008, 3, 14, 17, 0, 0, 0, time.UTC)) || got.Location() != time.UTC {
		t.Fatalf("NgaySinh = %#v, want 2008-03-14T17:00:00Z", first["NgaySinh"])
	}

	m, err := mapping.Load("../../mappings/exam-thpt.yaml", mapping.Options{Zone: ict})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		sbd              string
		birth            time.Time
		math, literature any
		language         any
	}
	wants := []want{
		{"49001234", time.Date(2008, 3, 14, 17, 0, 0, 0, time.UTC), 8.4, 7.25, 9.2},
		{"49001235", time.Date(2008, 11, 30, 17, 0, 0, 0, time.UTC), 6.0, nil, 5.5},
		{"49001236", time.Date(2008, 11, 4, 17, 0, 0, 0, time.UTC), 9.6, 8.0, nil},
	}
	for i, w := range wants {
		rec, err := m.Apply(rows[i], "SGDDT")
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		f := rec.Fields
		if rec.Key != w.sbd || !f["birth_date"].(time.Time).Equal(w.birth) || fmt.Sprint(f["math"], f["literature"], f["language"]) != fmt.Sprint(w.math, w.literature, w.language) {
			t.Errorf("row %d: key %s, fields %v; want %+v", i, rec.Key, f, w)
		}
	}
}

func TestSheetAndHeaderRowFromConfig(t *testing.T) {
	dir := t.TempDir()
	s := newSheet(t, "Ghi chú")
	s.row("Ghi chú", 1, "Bảng này chỉ là ghi chú", "x")
	if _, err := s.f.NewSheet("Điểm thi"); err != nil {
		t.Fatal(err)
	}
	s.row("Điểm thi", 1, "Danh sách", "đợt 1") // two filled cells, no merge: only header_row tells
	s.row("Điểm thi", 3, "Số báo danh", "HỌ TÊN", "Toán")
	s.row("Điểm thi", 4, "LA0001", "Phạm Thị Hoa", 7)
	writeFile(t, filepath.Join(dir, "diem.xlsx"), s.bytes(), longAgo)
	o := folderOptions(dir)
	o.Sheet, o.HeaderRow = "Điểm thi", 3
	o.Columns = []string{"SBD", "HoTen", "Toan"}
	o.Aliases = map[string][]string{"SBD": {"Số báo danh"}}
	rows, _, err := readAll(t.Context(), open(t, o, nil))
	if err != nil || len(rows) != 1 || rows[0]["SBD"] != "LA0001" || rows[0]["HoTen"] != "Phạm Thị Hoa" || rows[0]["Toan"] != "7" {
		t.Fatalf("rows %v, %v", rows, err)
	}
	o.Sheet = "Sheet9"
	if _, _, err := readAll(t.Context(), open(t, o, nil)); err == nil || !strings.Contains(err.Error(), `no sheet "Sheet9"`) {
		t.Fatalf("err = %v, want the missing sheet named", err)
	}
}

func TestAFileWithoutAListedColumnIsAnErrorNamingBoth(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "diem.csv"), []byte("SBD,Họ tên,Toán\n49001234,An,8\n"), longAgo)
	o := folderOptions(dir)
	o.Columns = []string{"SBD", "HoTen", "Toan", "NguVan"}
	_, _, err := readAll(t.Context(), open(t, o, nil))
	if err == nil || !strings.Contains(err.Error(), "diem.csv line 1: no header matches NguVan") {
		t.Fatalf("err = %v", err)
	}
}

func TestCSVHeadersMatchFoldedAndDatesColumnsReadSerials(t *testing.T) {
	dir := t.TempDir()
	csv := "\xef\xbb\xbfDANH SÁCH ĐIỂM TIÊM VẮC XIN\n" +
		"TÊN ĐIỂM TIÊM;Địa chỉ;NGÀY TIÊM;Ghi chú;Ghi chú\n" +
		"Trạm Y tế phường 1;12 Hùng Vương;46245;;\n" +
		";;;;\n" +
		"BV Đa khoa;Phường 3;15/08/2026;x;y\n"
	writeFile(t, filepath.Join(dir, "diem-tiem.csv"), []byte(csv), longAgo)
	o := folderOptions(dir)
	o.Delimiter = ";"
	o.Columns = []string{"TenDiemTiem", "DiaChi", "NgayTiem"}
	o.Dates = []string{"NgayTiem"}
	rows, _, err := readAll(t.Context(), open(t, o, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0]["TenDiemTiem"] != "Trạm Y tế phường 1" || rows[1]["NgayTiem"] != "15/08/2026" || rows[1]["Ghi chú (2)"] != "y" {
		t.Fatalf("rows %v", rows)
	}
	// 46245 is 11 August 2026; midnight in Vietnam.
	if got, _ := rows[0]["NgayTiem"].(time.Time); !got.Equal(time.Date(2026, 8, 10, 17, 0, 0, 0, time.UTC)) {
		t.Fatalf("NgayTiem = %#v, want 2026-08-10T17:00:00Z", rows[0]["NgayTiem"])
	}
}

func TestHalfWrittenFilesAreNeverRead(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 7, 16, 1, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	writeFile(t, filepath.Join(dir, "a.csv"), []byte("SBD,Toan\n1,8\n"), longAgo)
	// Being written under temporary names: never read, whatever their age.
	writeFile(t, filepath.Join(dir, "b.csv.tmp"), []byte("SBD,To"), now)
	writeFile(t, filepath.Join(dir, "~$c.xlsx"), []byte("lock"), longAgo)
	writeFile(t, filepath.Join(dir, ".d.csv"), []byte("junk"), longAgo)
	o := folderOptions(dir)
	o.Settle = dur(30 * time.Second)
	src := open(t, o, clock)
	rows, _, err := readAll(t.Context(), src)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, %v; want a.csv's row only", rows, err)
	}

	// A file copied in just now fails the poll until it has settled.
	writeFile(t, filepath.Join(dir, "e.csv"), []byte("SBD,Toan\n2,9\n"), now.Add(-10*time.Second))
	if _, _, err := readAll(t.Context(), src); err == nil || !strings.Contains(err.Error(), "e.csv was modified 10s ago, less than settle (30s)") {
		t.Fatalf("err = %v, want the young file named", err)
	}
	now = now.Add(30 * time.Second)
	if rows, _, err := readAll(t.Context(), src); err != nil || len(rows) != 2 {
		t.Fatalf("after settling: rows %v, %v; want both files' rows", rows, err)
	}
}

func TestAFileChangedDuringAReadFailsThePoll(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.csv")
	writeFile(t, path, []byte("SBD,Toan\n1,8\n2,9\n3,7\n"), longAgo)
	o := folderOptions(dir)
	o.BatchSize = 2
	src := open(t, o, nil)
	var n int
	emit := pipeline.EmitFunc(func(pipeline.Row) error { n++; return nil })
	pos, done, err := src.ReadBatch(t.Context(), nil, emit)
	if err != nil || done || n != 2 {
		t.Fatalf("first batch: %d rows, done %v, %v", n, done, err)
	}
	src.Close() // a restart between batches: the file is read again
	writeFile(t, path, []byte("SBD,Toan\n1,8\n"), longAgo.Add(time.Hour))
	if _, _, err := src.ReadBatch(t.Context(), pos, emit); err == nil || !strings.Contains(err.Error(), "changed during the read") {
		t.Fatalf("err = %v, want the change named", err)
	}
}

func TestAFolderWithoutFilesIsAnErrorNotAnEmptySet(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "notes.txt"), []byte("x"), longAgo)
	_, _, err := readAll(t.Context(), open(t, folderOptions(dir), nil))
	if err == nil || !strings.Contains(err.Error(), "no file in") {
		t.Fatalf("err = %v", err)
	}
}

func TestPickNewestReadsOnlyTheLatestVersion(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gia-dat-v1.csv"), []byte("MaThua,Gia\n1,100\n2,200\n"), longAgo)
	writeFile(t, filepath.Join(dir, "gia-dat-v2.csv"), []byte("MaThua,Gia\n1,150\n"), longAgo.Add(time.Hour))
	o := folderOptions(dir)
	o.Pick = PickNewest
	rows, _, err := readAll(t.Context(), open(t, o, nil))
	if err != nil || len(rows) != 1 || rows[0]["Gia"] != "150" {
		t.Fatalf("rows %v, %v; want v2's one row", rows, err)
	}
}

func TestAFileAtAURLIsFetchedConditionally(t *testing.T) {
	var full, notModified atomic.Int32
	data := examSheet(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"k1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", `"k1"`)
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	o := examOptions("")
	o.Path, o.URL = "", srv.URL+"/files/ket-qua.xlsx?token=secret"
	o.HTTP.RateLimit = "0"
	src := open(t, o, nil)
	for poll := 1; poll <= 2; poll++ {
		rows, _, err := readAll(t.Context(), src)
		if err != nil || len(rows) != 3 {
			t.Fatalf("poll %d: %d rows, %v", poll, len(rows), err)
		}
		if strings.Contains(rows[0][ColFile].(string), "secret") {
			t.Fatalf("the file name carries the URL's token: %v", rows[0][ColFile])
		}
	}
	if full.Load() != 1 || notModified.Load() != 1 {
		t.Fatalf("%d full answers, %d 304s; want 1 and 1", full.Load(), notModified.Load())
	}
}

func TestAnUnreadableSpreadsheetIsAnError(t *testing.T) {
	dir := t.TempDir()
	full := examSheet(t)
	writeFile(t, filepath.Join(dir, "cut.xlsx"), full[:len(full)/2], longAgo)
	_, _, err := readAll(t.Context(), open(t, examOptions(dir), nil))
	if err == nil || !strings.Contains(err.Error(), "cut.xlsx: not a readable .xlsx file") {
		t.Fatalf("err = %v", err)
	}
}

func TestSerialDates(t *testing.T) {
	r := newReader(NewOptions(), ict)
	for _, c := range []struct {
		serial   string
		date1904 bool
		want     time.Time
	}{
		{"45000", false, time.Date(2023, 3, 14, 17, 0, 0, 0, time.UTC)},
		{"45000.5", false, time.Date(2023, 3, 15, 5, 0, 0, 0, time.UTC)},
		{"43538", true, time.Date(2023, 3, 14, 17, 0, 0, 0, time.UTC)},
	} {
		got, ok := r.serial(c.serial, c.date1904)
		if !ok || !got.Equal(c.want) {
			t.Errorf("serial(%s, 1904=%v) = %v, %v; want %v", c.serial, c.date1904, got, ok, c.want)
		}
	}
	if _, ok := r.serial("VẮNG", false); ok {
		t.Error("text read as a date")
	}
}

func TestOptionsValidation(t *testing.T) {
	o := NewOptions()
	o.Format = "ods"
	o.Pick = "first"
	o.Columns = []string{"HoTen", "Họ tên"}
	o.Dates = []string{"NgaySinh"}
	o.BatchSize = 0
	var got []string
	o.Validate(func(field, format string, args ...any) { got = append(got, field+": "+fmt.Sprintf(format, args...)) })
	want := []string{
		`pick: unknown pick "first" (want all or newest)`,
		`format: unknown format "ods" (want csv or xlsx)`,
		"batch_size: must be between 1 and 100000, got 0",
		"path: is required: a folder (or file) to read, or give url",
		`columns[1]: "Họ tên" matches the same headers as "HoTen"`,
		`dates[0]: "NgaySinh" is not one of columns`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("reported\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
