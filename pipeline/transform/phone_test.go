package transform

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
)

func TestPhoneVNAcceptsEveryWayOfWritingAMobileNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0912345678", "84912345678"},
		{"84912345678", "84912345678"},
		{"+84912345678", "84912345678"},
		{"0084912345678", "84912345678"},
		{"912345678", "84912345678"}, // a spreadsheet ate the 0
		{"0912 345 678", "84912345678"},
		{"0912.345.678", "84912345678"},
		{"0912-345-678", "84912345678"},
		{"(091) 234 5678", "84912345678"},
		{"(+84) 912 345 678", "84912345678"},
		{"+84 (0) 912 345 678", "84912345678"},
		{"+840912345678", "84912345678"},
		{"840912345678", "84912345678"},
		{"  0912345678\t", "84912345678"},
		{"0912\u00a0345\u00a0678", "84912345678"}, // no-break spaces from a web page
		{"0912\u2009345\u2009678", "84912345678"}, // thin spaces
		{"0321234567", "84321234567"},             // Viettel
		{"0862345678", "84862345678"},
		{"0702345678", "84702345678"}, // MobiFone
		{"0812345678", "84812345678"}, // VinaPhone
		{"0523123456", "84523123456"}, // Vietnamobile
		{"0561234567", "84561234567"},
		{"0591234567", "84591234567"}, // Gmobile
		{"0896123456", "84896123456"},
		{"321234567", "84321234567"},
		{"523123456", "84523123456"},
		{"701234567", "84701234567"},
		{"841234567", "84841234567"}, // 9 digits: 084… without its 0, not a country code
	}
	for _, tt := range tests {
		got, err := PhoneVN(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("PhoneVN(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// The 2018 renumbering, as the operators announced it: every old 11-digit
// prefix and the 10-digit prefix that replaced it.
var renumbering = []struct{ old, new string }{
	{"0162", "032"}, {"0163", "033"}, {"0164", "034"}, {"0165", "035"},
	{"0166", "036"}, {"0167", "037"}, {"0168", "038"}, {"0169", "039"}, // Viettel
	{"0120", "070"}, {"0121", "079"}, {"0122", "077"}, {"0126", "076"}, {"0128", "078"}, // MobiFone
	{"0123", "083"}, {"0124", "084"}, {"0125", "085"}, {"0127", "081"}, {"0129", "082"}, // VinaPhone
	{"0186", "056"}, {"0188", "058"}, // Vietnamobile
	{"0199", "059"}, // Gmobile
}

func TestPhoneVNConvertsEveryOldPrefix(t *testing.T) {
	const rest = "1234567"
	for _, p := range renumbering {
		want := "84" + p.new[1:] + rest
		forms := []string{
			p.old + rest,                            // 01621234567
			p.old + " " + rest[:3] + " " + rest[3:], // 0162 123 4567
			"+84" + p.old[1:] + rest,                // +841621234567
			"+84 " + p.old[1:] + " " + rest,         // +84 162 1234567
			"84" + p.old[1:] + rest,                 // 841621234567
			"0084" + p.old[1:] + rest,               // 00841621234567
			p.old[1:] + rest,                        // 1621234567: the 0 eaten
			"+84 (0)" + p.old[1:] + "." + rest[:3] + "." + rest[3:],
		}
		for _, in := range forms {
			got, err := PhoneVN(in)
			if err != nil || got != want {
				t.Errorf("PhoneVN(%q) = %q, %v; want %q (%s -> %s)", in, got, err, want, p.old, p.new)
			}
		}
	}
	if len(renumbering) != len(oldPrefixes) {
		t.Errorf("the test knows %d old prefixes, the code %d", len(renumbering), len(oldPrefixes))
	}
}

func TestPhoneVNRejectsWhatIsNotAVietnameseMobile(t *testing.T) {
	tests := []struct{ in, err string }{
		{"", "phone number is empty"},
		{"   ", "phone number is empty"},
		{"\u00a0", "phone number is empty"},
		{"()", `"()" has no digits`},
		{"+", `"+" has no digits`},
		{"0912abc678", `contains "a"`},
		{"O912345678", `contains "O"`}, // a letter O for a zero
		{"tel:0912345678", `contains "t"`},
		{"0912345678 / 0987654321", `contains "/"`},
		{"0912345678;", `contains ";"`},
		{"09123456７8", `contains "７"`}, // a full-width digit
		{"091+2345678", "+ that is not at its start"},
		{"++84912345678", "+ that is not at its start"},
		{"0912", "too short"},
		{"091234567", "too short"},
		{"12345", "too short"},
		{"+84 91234567", "too short"},
		{"09123456789", "too long"},
		{"091234567890", "too long"},
		{"+8491234567890", "too long"},
		{"01234567890123456789", "too many digits"},
		{"02723812345", "landline"}, // Long An
		{"02838123456", "landline"}, // Hồ Chí Minh City
		{"0272 3812 345", "landline"},
		{"+84 272 381 2345", "landline"},
		{"2723812345", "landline"},
		{"18001234", "service number"}, // toll free
		{"19001234", "service number"}, // premium rate
		{"0123456789", "not a valid Vietnamese mobile number"},
		{"0992345678", "not a valid Vietnamese mobile number"},
		{"0111234567", "not a valid Vietnamese mobile number"},
		{"01301234567", "not a valid Vietnamese mobile number"}, // 0130 was never a mobile prefix
		{"612345678", "not a valid Vietnamese mobile number"},
		{"+1 415 555 0100", "does not start with +84"},
		{"+33612345678", "does not start with +84"},
		{"0033612345678", "does not start with 0084"},
	}
	for _, tt := range tests {
		got, err := PhoneVN(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("PhoneVN(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
		}
	}
}

func TestPhoneVNErrorQuotesTheValue(t *testing.T) {
	_, err := PhoneVN("0912 abc")
	if err == nil || !strings.Contains(err.Error(), `"0912 abc"`) {
		t.Errorf("error %v does not quote the value", err)
	}
	long := strings.Repeat("x", 1000)
	_, err = PhoneVN(long)
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("error for a 1000-character value is %d characters long", len(err.Error()))
	}
}

func TestPhoneVNReturnsCanonicalInputWithoutAllocating(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = PhoneVN("84912345678") }); n != 0 {
		t.Errorf("PhoneVN on a canonical number allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = PhoneVN("0912 345 678") }); n != 1 {
		t.Errorf("PhoneVN on a local number allocates %v times, want 1 (the result)", n)
	}
}

// libraryVerdict is what phonenumbers itself says, parsing as the brief of
// PhoneVN describes: region VN, valid, and of a mobile type.
func libraryVerdict(local string) bool {
	n, err := phonenumbers.Parse(local, "VN")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return false
	}
	typ := phonenumbers.GetNumberType(n)
	return typ == phonenumbers.MOBILE || typ == phonenumbers.FIXED_LINE_OR_MOBILE
}

// The prefix cache must agree with the library number by number. Every
// four-digit start is tried (a range boundary in the fourth digit is what
// would break the three-digit rule), then random numbers.
func TestPhoneVNAgreesWithPhonenumbers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var nsns []string
	for p := 1000; p < 10000; p++ {
		nsns = append(nsns, fmt.Sprintf("%d%05d", p, rng.IntN(100000)))
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		nsns = append(nsns, fmt.Sprintf("%d%08d", 1+rng.IntN(9), rng.IntN(100000000)))
	}
	mobiles := 0
	for _, nsn := range nsns {
		want := libraryVerdict("0" + nsn)
		got, err := PhoneVN("0" + nsn)
		if (err == nil) != want {
			t.Fatalf("PhoneVN(0%s) = %q, %v; phonenumbers says mobile=%v", nsn, got, err, want)
		}
		if want {
			mobiles++
			if got != "84"+nsn {
				t.Fatalf("PhoneVN(0%s) = %q", nsn, got)
			}
		}
	}
	// Ten-digit numbers: the landline verdict behind the error message.
	for range n / 4 {
		nsn := fmt.Sprintf("2%09d", rng.IntN(1000000000))
		pn, err := phonenumbers.Parse("0"+nsn, "VN")
		landline := err == nil && phonenumbers.IsValidNumber(pn) && phonenumbers.GetNumberType(pn) == phonenumbers.FIXED_LINE
		_, err = PhoneVN("0" + nsn)
		if err == nil || strings.Contains(err.Error(), "landline") != landline {
			t.Fatalf("PhoneVN(0%s) error = %v; phonenumbers says landline=%v", nsn, err, landline)
		}
	}
	if mobiles < len(nsns)/10 {
		t.Errorf("only %d of %d sampled numbers are mobile; the sample is not testing much", mobiles, len(nsns))
	}
}

func TestPhonenumbersSaysMobileForVietnameseMobiles(t *testing.T) {
	// PhoneVN accepts FIXED_LINE_OR_MOBILE too; for Vietnam the library keeps
	// the two apart (mobile numbers have 9 digits, landlines 10), so every
	// mobile comes back as MOBILE.
	for _, local := range []string{"0912345678", "0321234567", "0591234567", "0862345678"} {
		n, err := phonenumbers.Parse(local, "VN")
		if err != nil {
			t.Fatal(err)
		}
		if got := phonenumbers.GetNumberType(n); got != phonenumbers.MOBILE {
			t.Errorf("phonenumbers type of %s = %v, want MOBILE", local, got)
		}
	}
	n, _ := phonenumbers.Parse("02723812345", "VN")
	if got := phonenumbers.GetNumberType(n); got != phonenumbers.FIXED_LINE {
		t.Errorf("phonenumbers type of a Long An landline = %v, want FIXED_LINE", got)
	}
}

func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"84912345678", "84912***678"},
		{"0912 345 678", "84912***678"},
		{"01621234567", "84321***567"},
		{"12345", "**345"},
		{"12", "***"},
		{"", ""},
		{"  ", ""},
	}
	for _, tt := range tests {
		if got := MaskPhone(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var canonicalPhone = regexp.MustCompile(`^84\d{9}$`)

func FuzzPhoneVN(f *testing.F) {
	for _, s := range []string{"0912345678", "+84 912 345 678", "01621234567", "0084 199 123 4567",
		"02723812345", "", "+", "912345678", "1621234567", "+84 (0) 91.234-5678", "0912\u00a0345678"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := PhoneVN(s)
		_ = MaskPhone(s)
		if err != nil {
			if p != "" {
				t.Errorf("PhoneVN(%q) returned %q with error %v", s, p, err)
			}
			return
		}
		if !canonicalPhone.MatchString(p) {
			t.Fatalf("PhoneVN(%q) = %q, not 84 and 9 digits", s, p)
		}
		again, err := PhoneVN(p)
		if err != nil || again != p {
			t.Fatalf("PhoneVN(PhoneVN(%q)) = %q, %v; want %q", s, again, err, p)
		}
		if !libraryVerdict("+" + p) {
			t.Fatalf("PhoneVN(%q) = %q, which phonenumbers does not call a mobile number", s, p)
		}
	})
}

func BenchmarkPhoneVN(b *testing.B) {
	for _, in := range []string{"84912345678", "0912 345 678", "+84 162 123 4567"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := PhoneVN(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("landline error", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := PhoneVN("02723812345"); err == nil {
				b.Fatal("no error")
			}
		}
	})
	// What one prefix's verdict costs to ask (four probe numbers): what the
	// first number of each prefix paid before knownVerdicts was generated.
	b.Run("probe of a prefix", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if probe("912", 6) != uint32(phonenumbers.MOBILE)+1 {
				b.Fatal("912 is not a mobile prefix")
			}
		}
	})
	// For comparison: asking the library for every number.
	b.Run("phonenumbers.Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !libraryVerdict("0912 345 678") {
				b.Fatal("not mobile")
			}
		}
	})
}

// phonenumbers loads its metadata for every country in its package init
// (v1.8.1 is not lazy), before main runs. This benchmark measures that cost in a
// fresh process each time, with GODEBUG=inittrace=1, plus the first PhoneVN call
// there (regular expressions compiled on first use, one prefix probed).
func BenchmarkPhonenumbersStartup(b *testing.B) {
	if os.Getenv("TRANSFORM_STARTUP_CHILD") != "" {
		b.Skip("child process")
	}
	initLine := regexp.MustCompile(`init github.com/nyaruka/phonenumbers @[\d.]+ ms, ([\d.]+) ms clock, (\d+) bytes, (\d+) allocs`)
	var initMS, firstMS, bytes, allocs float64
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPhoneVNFirstCallChild$", "-test.v")
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "TRANSFORM_STARTUP_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		m := initLine.FindSubmatch(out)
		f := regexp.MustCompile(`first PhoneVN call: (\d+)ns`).FindSubmatch(out)
		if m == nil || f == nil {
			b.Fatalf("no init trace or first-call line in\n%s", out)
		}
		ms, _ := strconv.ParseFloat(string(m[1]), 64)
		by, _ := strconv.ParseFloat(string(m[2]), 64)
		al, _ := strconv.ParseFloat(string(m[3]), 64)
		first, _ := strconv.ParseFloat(string(f[1]), 64)
		initMS += ms
		bytes += by
		allocs += al
		firstMS += first / 1e6
	}
	n := float64(b.N)
	b.ReportMetric(initMS/n, "init-ms")
	b.ReportMetric(bytes/n, "init-B")
	b.ReportMetric(allocs/n, "init-allocs")
	b.ReportMetric(firstMS/n, "first-call-ms")
}

// TestPhoneVNFirstCallChild is the child of BenchmarkPhonenumbersStartup.
func TestPhoneVNFirstCallChild(t *testing.T) {
	if os.Getenv("TRANSFORM_STARTUP_CHILD") == "" {
		t.Skip("run by BenchmarkPhonenumbersStartup")
	}
	start := time.Now()
	if _, err := PhoneVN("0912345678"); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("first PhoneVN call: %dns\n", time.Since(start).Nanoseconds())
}
