package transform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestTableFromMap(t *testing.T) {
	exact := TableFromMap(map[string]string{"01": "Mới tiếp nhận", " 02 ": "Đang xử lý"}, false)
	folded := TableFromMap(map[string]string{"Thị trấn Cần Giuộc": "27667", "Xã Long Hậu": "27676"}, true)
	tests := []struct {
		t      Table
		key    string
		want   string
		wantOK bool
	}{
		{exact, "01", "Mới tiếp nhận", true},
		{exact, " 01 ", "Mới tiếp nhận", true}, // surrounding spaces never matter
		{exact, "02", "Đang xử lý", true},
		{exact, "1", "", false},
		{exact, "", "", false},
		{folded, "Thị trấn Cần Giuộc", "27667", true},
		{folded, "thi tran can giuoc", "27667", true},
		{folded, "THỊ TRẤN  CẦN\u00a0GIUỘC", "27667", true},
		{folded, norm.NFD.String("Thị trấn Cần Giuộc"), "27667", true},
		{folded, "xa long hau", "27676", true},
		{folded, "Long Hậu", "", false},
	}
	for _, tt := range tests {
		got, ok := tt.t.Lookup(tt.key)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
		}
	}
	if exact.Len() != 2 || folded.Len() != 2 {
		t.Errorf("Len = %d, %d", exact.Len(), folded.Len())
	}
}

func TestTableExactKeysMatchAcrossNormalForms(t *testing.T) {
	tb := TableFromMap(map[string]string{norm.NFD.String("Cần Giuộc"): norm.NFD.String("Cần Giuộc")}, false)
	got, ok := tb.Lookup("Cần Giuộc")
	if !ok || got != "Cần Giuộc" {
		t.Errorf("Lookup = %q, %v; want the NFC value", got, ok)
	}
	if _, ok := tb.Lookup("can giuoc"); ok {
		t.Error("an exact table matched a folded key")
	}
}

func TestTableDefault(t *testing.T) {
	tb := TableFromMap(map[string]string{"1": "Có"}, false)
	tb.Default = ptr("Không rõ")
	if got, ok := tb.Lookup("9"); !ok || got != "Không rõ" {
		t.Errorf("miss = %q, %v; want the default", got, ok)
	}
	if got, ok := tb.Lookup("1"); !ok || got != "Có" {
		t.Errorf("hit = %q, %v", got, ok)
	}
	var zero Table
	if _, ok := zero.Lookup("x"); ok {
		t.Error("the zero Table found a key")
	}
}

func TestTableFromMapCollisionKeepsTheFirstKeyInOrder(t *testing.T) {
	tb := TableFromMap(map[string]string{"Cần Giuộc": "a", "can giuoc": "b", "CẦN GIUỘC": "c"}, true)
	if got, _ := tb.Lookup("can giuoc"); got != "c" { // "CẦN GIUỘC" sorts first
		t.Errorf("Lookup = %q, want c", got)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCSV(t *testing.T) {
	p := writeFile(t, "communes.csv", "\uFEFFMã xã,Tên xã,Huyện\n"+
		"27667,Thị trấn Cần Giuộc,Cần Giuộc\n"+
		" 27676 , Xã Long Hậu ,Cần Giuộc\n"+
		"\"27670\",\"Xã Phước Lý, (cũ)\",Cần Giuộc\n"+
		",,\n"+ // a blank row Excel leaves at the end
		"27667,Thị trấn Cần Giuộc,Cần Giuộc\n") // the same pair again is fine
	byName, err := LoadCSV(p, "Tên xã", "Mã xã", true)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"thi tran can giuoc": "27667", "Xã Long Hậu": "27676", "xa phuoc ly, (cu)": "27670"} {
		if got, ok := byName.Lookup(key); !ok || got != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
	byCode, err := LoadCSV(p, "Mã xã", "Tên xã", false)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := byCode.Lookup("27676"); got != "Xã Long Hậu" {
		t.Errorf("value = %q; cells are trimmed", got)
	}
	if byCode.Len() != 3 {
		t.Errorf("Len = %d, want 3", byCode.Len())
	}
	// Columns are found ignoring case and diacritics when no name is exact.
	if _, err := LoadCSV(p, "ma xa", "ten xa", false); err != nil {
		t.Errorf("folded column names: %v", err)
	}
}

func TestLoadCSVSeparators(t *testing.T) {
	for name, content := range map[string]string{
		"semicolon": "ma;ten\n01;Mới\n02;Đang xử lý, chờ bổ sung\n", // Excel in a Vietnamese locale
		"tab":       "ma\tten\n01\tMới\n02\tĐang xử lý, chờ bổ sung\n",
		"comma":     "ma,ten\n01,Mới\n02,\"Đang xử lý, chờ bổ sung\"\n",
		"crlf":      "ma,ten\r\n01,Mới\r\n02,\"Đang xử lý, chờ bổ sung\"\r\n",
	} {
		tb, err := LoadCSV(writeFile(t, name+".csv", content), "ma", "ten", false)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got, _ := tb.Lookup("02"); got != "Đang xử lý, chờ bổ sung" {
			t.Errorf("%s: Lookup = %q", name, got)
		}
	}
}

func TestLoadCSVErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, content, key, value string
		errs                      []string
	}{
		{"short.csv", "ma,ten,ghi chu\n01,Mới,x\n02\n03,Xong,\n", "ma", "ten",
			[]string{`short.csv:3: the row has 1 fields; column "ten" is field 2`}},
		{"dup.csv", "ma,ten\n01,Mới\n02,Cũ\n01,Khác\n", "ma", "ten",
			[]string{`dup.csv:4: key "01" comes again with value "Khác"; line 2 gave "Mới"`}},
		{"folddup.csv", "ten,ma\nThị trấn Cần Giuộc,27667\nthi tran can giuoc,99999\n", "ten", "ma",
			[]string{`folddup.csv:3: key "thi tran can giuoc" comes again with value "99999"; line 2 (as "Thị trấn Cần Giuộc") gave "27667"`}},
		{"blankkey.csv", "ma,ten\n01,Mới\n  ,Trống\n", "ma", "ten",
			[]string{`blankkey.csv:3: the key (column "ma") is blank`}},
		{"several.csv", "ma,ten\n01\n02\n", "ma", "ten",
			[]string{"several.csv:2: the row has 1 fields", "several.csv:3: the row has 1 fields"}},
		{"nocol.csv", "ma,ten\n01,Mới\n", "code", "ten",
			[]string{`nocol.csv:1: no column "code" in the header (columns: ma, ten)`}},
		{"empty.csv", "", "ma", "ten",
			[]string{"empty.csv: the file is empty; its first row must name the columns"}},
		{"quote.csv", "ma,ten\n01,Mới\n02,Đang \"xử\" lý\n", "ma", "ten",
			[]string{`quote.csv:3: bare " in non-quoted-field`}},
		{"latin1.csv", "ma,ten\n01,M\xe1i\n", "ma", "ten",
			[]string{`latin1.csv:2: not UTF-8 text; save the file as "CSV UTF-8"`}},
	}
	for _, tt := range tests {
		p := writeFile(t, tt.name, tt.content)
		_, err := LoadCSV(p, tt.key, tt.value, strings.Contains(tt.name, "fold"))
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		msg := strings.ReplaceAll(err.Error(), filepath.Dir(p)+string(filepath.Separator), "")
		for _, want := range tt.errs {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error\n%s\nwant it to contain\n%s", tt.name, msg, want)
			}
		}
	}
	_, err := LoadCSV(filepath.Join(t.TempDir(), "missing.csv"), "a", "b", false)
	if err == nil || !strings.Contains(err.Error(), "missing.csv") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadCSVStopsAfterManyMistakes(t *testing.T) {
	content := "ma,ten\n" + strings.Repeat("x\n", 100)
	_, err := LoadCSV(writeFile(t, "bad.csv", content), "ma", "ten", false)
	if err == nil || strings.Count(err.Error(), "\n") > maxTableErrors+1 || !strings.Contains(err.Error(), "stopped after 20 mistakes") {
		t.Errorf("error = %v", err)
	}
}
