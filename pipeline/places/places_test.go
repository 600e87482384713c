package places

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func load(t *testing.T) *Table {
	t.Helper()
	tb, err := Load("testdata/crosswalk.csv")
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestFindMatchesCurrentAndFormerNamesOnWordBoundaries(t *testing.T) {
	tb := load(t)
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"Ấp 3, xã Mỹ Yên", []string{"xa my yen"}},
		{"ap 3 xa my yen", []string{"xa my yen"}},                                    // without diacritics
		{"Khu vực xã Mỹ Yên Đông, trạm Bến Lức", []string{"xa my yen dong"}},         // the longer name wins
		{"Mỹ Yên Đông và Mỹ Yên", []string{"xa my yen dong", "xa my yen"}},           // both said
		{"TBA Long Hậu 3; xã Phước Lợi", []string{"xa phuoc vinh tay", "xa my yen"}}, // former names
		{"LONG HAU", []string{"xa phuoc vinh tay"}},
		{"Phường 1 và Phường 10", []string{"phuong long an"}}, // "phường 1" is not "phường 10"
		{"đường số 1", nil},                                   // a bare number is no ward
		{"Mỹ Yênđông", nil},                                   // no word boundary
		{"Cần Giuộc", []string{"xa can giuoc"}},
	} {
		got := IDs(tb.Find(tc.text))
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("Find(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestResolveTypedNames(t *testing.T) {
	tb := load(t)
	for _, tc := range []struct{ typed, want string }{
		{"my yen", "Xã Mỹ Yên"},
		{"Xã Long Hiệp", "Xã Mỹ Yên"},
		{"PHUOC LAI", "Xã Phước Vĩnh Tây"},
		{"thi tran can giuoc", "Xã Cần Giuộc"},
		{"phường 5", "Phường Tân An"},
		{"5", ""},
		{"Hà Nội", ""},
	} {
		got := Names(tb.Resolve(tc.typed))
		if strings.Join(got, "|") != tc.want {
			t.Errorf("Resolve(%q) = %v, want %q", tc.typed, got, tc.want)
		}
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{"ten,cu\nA,B\n", "bad.csv:1: the header must name the columns current and former"},
		{"current,former\nXã A,Xã B\n,Xã C\n", "bad.csv:3: column current is empty"},
	} {
		p := filepath.Join(dir, "bad.csv")
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q) = %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestParseAcceptsExcelSemicolonsAndBOM(t *testing.T) {
	tb, err := Parse(strings.NewReader("\ufeffcurrent;former\nXã Mỹ Yên;Xã Long Hiệp\n"), "x.csv")
	if err != nil || tb.Len() != 1 || Names(tb.Resolve("long hiep"))[0] != "Xã Mỹ Yên" {
		t.Fatalf("Parse = %v, %v", tb, err)
	}
}

func TestYAMLCrosswalkMatchesTheCSV(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "places.yaml")
	src := "- current: Xã Mỹ Yên\n  former: [Xã Long Hiệp, Xã Phước Lợi]\n- current: Xã Mỹ Yên Đông\n"
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	tb, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := IDs(tb.Find("xã Phước Lợi, xã Mỹ Yên Đông")); !slices.Equal(got, []string{"xa my yen", "xa my yen dong"}) {
		t.Errorf("Find = %v", got)
	}
	if err := os.WriteFile(p, []byte("- current: Xã A\n- former: [Xã B]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "places.yaml:2: current is empty") {
		t.Errorf("Load = %v; want the line of the unit without current", err)
	}
}
