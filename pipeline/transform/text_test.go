package transform

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestNFC(t *testing.T) {
	composed := "Nguyễn Văn Đức"
	tests := []struct{ in, want string }{
		{composed, composed},
		{norm.NFD.String(composed), composed},
		{"Nguye\u0302\u0303n", "Nguyễn"}, // marks in canonical order
		{"plain ascii", "plain ascii"},
		{"", ""},
		{"code-e\u0301", "code-é"}, // an ASCII base with a combining mark is not ASCII
	}
	for _, tt := range tests {
		if got := NFC(tt.in); got != tt.want {
			t.Errorf("NFC(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var ascii []byte
	for c := range utf8.RuneSelf {
		ascii = append(ascii, byte(c))
	}
	if got := NFC(string(ascii)); got != norm.NFC.String(string(ascii)) {
		t.Errorf("NFC of the ASCII characters = %q, want what the normaliser gives", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = NFC(composed) }); n != 0 {
		t.Errorf("NFC on NFC text allocates %v times", n)
	}
}

func TestCollapseSpaces(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Nguyễn Văn An", "Nguyễn Văn An"},
		{"  Nguyễn   Văn\tAn \n", "Nguyễn Văn An"},
		{"Nguyễn\u00a0Văn\u00a0An", "Nguyễn Văn An"},       // no-break space
		{"Nguyễn\u2003\u2009Văn\u3000An", "Nguyễn Văn An"}, // em, thin, ideographic
		{"Nguyễn\u202fVăn\u205fAn\u2028", "Nguyễn Văn An"}, // narrow nbsp, math space, line separator
		{"a\r\nb", "a b"},
		{" ", ""},
		{"\u00a0\u00a0", ""},
		{"", ""},
		{"x", "x"},
	}
	for _, tt := range tests {
		if got := CollapseSpaces(tt.in); got != tt.want {
			t.Errorf("CollapseSpaces(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = CollapseSpaces("Nguyễn Văn An") }); n != 0 {
		t.Errorf("CollapseSpaces on clean text allocates %v times", n)
	}
}

func TestFoldMakesSearchKeys(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Nguyễn Văn Đức", "nguyen van duc"},
		{"Hồ Chí Minh", "ho chi minh"},
		{"Thừa Thiên Huế", "thua thien hue"},
		{"Thị trấn Cần Giuộc", "thi tran can giuoc"},
		{"  THỊ   TRẤN\u00a0CẦN GIUỘC ", "thi tran can giuoc"},
		{"đường Đ", "duong d"},
		{"Ðồng Nai", "dong nai"}, // U+00D0 Eth, which old font converters put for Đ
		{"ĂÂÊÔƠƯ ăâêôơư", "aaeoou aaeoou"},
		{"ÀÁẢÃẠ ẰẮẲẴẶ ẦẤẨẪẬ", "aaaaa aaaaa aaaaa"},
		{"ỲÝỶỸỴ", "yyyyy"},
		{"nguyen van duc", "nguyen van duc"},
		{"Số 12/3A", "so 12/3a"},
		{"Ά", "α"},         // Greek with tonos: decomposed, mark dropped
		{"ß æ ø", "ß æ ø"}, // no decomposition: kept
		{"", ""},
		{"   ", ""},
	}
	for _, tt := range tests {
		if got := Fold(tt.in); got != tt.want {
			t.Errorf("Fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := Fold(norm.NFD.String(tt.in)); got != tt.want {
			t.Errorf("Fold(NFD %q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Fold("nguyen van duc") }); n != 0 {
		t.Errorf("Fold on folded text allocates %v times", n)
	}
}

func TestUpperLower(t *testing.T) {
	if got := Upper("đường Nguyễn Huệ"); got != "ĐƯỜNG NGUYỄN HUỆ" {
		t.Errorf("Upper = %q", got)
	}
	if got := Lower("ĐƯỜNG NGUYỄN HUỆ"); got != "đường nguyễn huệ" {
		t.Errorf("Lower = %q", got)
	}
	if got := NFC(Upper(norm.NFD.String("đường"))); got != "ĐƯỜNG" {
		t.Errorf("Upper of decomposed text = %q", got)
	}
}

func TestDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"001203004567", "001203004567"},
		{"CCCD: 001.203.004.567", "001203004567"},
		{"0912-345-678", "0912345678"},
		{"１２３", ""}, // full-width digits are not ASCII digits
		{"abc", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Digits(tt.in); got != tt.want {
			t.Errorf("Digits(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzFold(f *testing.F) {
	for _, s := range []string{"Nguyễn Văn Đức", "Hồ Chí Minh", " THỪA\u00a0 THIÊN  Huế ", "Ά", "ǅ", "İ", "K", "\u0301a", "a\u0301\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Fold(s)
		if !utf8.ValidString(got) && utf8.ValidString(s) {
			t.Fatalf("Fold(%q) = %q, not valid UTF-8", s, got)
		}
		if again := Fold(got); again != got {
			t.Fatalf("Fold is not idempotent on %q: %q then %q", s, got, again)
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Fatalf("Fold(%q) = %q keeps stray spaces", s, got)
		}
		if utf8.ValidString(s) {
			if nfd := Fold(norm.NFD.String(s)); nfd != got && !hasHangul(s) {
				t.Fatalf("Fold(%q) = %q but Fold of its NFD form = %q", s, got, nfd)
			}
		}
		_ = CollapseSpaces(s)
		_ = Digits(s)
		_ = MaskName(s)
		_ = MaskID(s)
	})
}

// hasHangul: precomposed Hangul syllables fold as they are, while their NFD
// form is a run of jamo; both are stable search keys, but not the same one.
func hasHangul(s string) bool {
	for _, r := range s {
		if (0xAC00 <= r && r <= 0xD7A3) || (0x1100 <= r && r <= 0x11FF) {
			return true
		}
	}
	return false
}

func BenchmarkFold(b *testing.B) {
	for _, in := range []string{"nguyen van duc", "Nguyễn Văn Đức", "Ủy ban nhân dân thị trấn Cần Giuộc"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Fold(in)
			}
		})
	}
}

// NFC's shortcut for precomposed Latin text holds for every pair of letters it
// lets through (and ASCII): composition happens between neighbours, so if no
// pair changes under normalisation, no string of them does.
func TestPrecomposedLatinIsNFC(t *testing.T) {
	var runes []rune
	for r := rune(1); r < latinEnd; r++ {
		if r < utf8.RuneSelf || precomposedLatin[r] {
			runes = append(runes, r)
		}
	}
	if n := len(runes) - (utf8.RuneSelf - 1); n < 400 {
		t.Fatalf("only %d precomposed Latin letters: the table is wrong", n)
	}
	for _, a := range runes {
		for _, b := range runes {
			s := string([]rune{a, b})
			if !isPrecomposedLatin(s) || norm.NFC.String(s) != s {
				t.Fatalf("%q (U+%04X U+%04X): isPrecomposedLatin %v, NFC %q", s, a, b, isPrecomposedLatin(s), norm.NFC.String(s))
			}
		}
	}
	for _, s := range []string{"Nguyễn Văn Đức", "Đăng ký biến động quyền sử dụng đất", "ƯỚC ƠN"} {
		if !isPrecomposedLatin(s) {
			t.Errorf("%q is precomposed Vietnamese, which the shortcut should take", s)
		}
	}
	for _, s := range []string{"Nguye\u0302\u0303n", "e\u0301", "Ā\u0301", "ㄱ", "Nguyễn\u00a0Văn"} {
		if isPrecomposedLatin(s) && norm.NFC.String(s) != s {
			t.Errorf("%q is not NFC, yet the shortcut takes it", s)
		}
	}
}
