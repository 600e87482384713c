package transform

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// PhoneVN normalises a Vietnamese mobile number, however it was written, to the
// form Zalo ZNS and the state store use: 84 followed by the 9-digit national
// number, e.g. "84912345678".
//
// Accepted: digits with spaces (any Unicode space), dots, dashes and parentheses
// between them; a leading +84, 84, 0084 or 0 (and "+84 0…", a common slip); a
// number that lost its leading 0 in a spreadsheet (9 digits starting 3, 5, 7, 8 or
// 9, or an old 10-digit 1xx… one); and the 11-digit numbers with 01xx prefixes that
// the operators renumbered in 2018, which are converted to today's prefixes (0162
// -> 032, 0120 -> 070, 0123 -> 083, 0186 -> 056, 0199 -> 059, …; see oldPrefixes).
//
// The result is checked against libphonenumber's metadata for Vietnam (through
// github.com/nyaruka/phonenumbers) and must be a mobile number: a landline, a
// toll-free or a short number is an error, as are letters, a foreign country code
// and a wrong number of digits. Numbers the metadata calls FIXED_LINE_OR_MOBILE
// would be accepted, since they may reach a phone; Vietnam's metadata has none.
// The library's verdict is kept per number prefix (see numberType): asking it
// for every number would cost more than the mapping's budget for a whole row.
//
// PhoneVN(PhoneVN(s)) == PhoneVN(s) for every s it accepts.
func PhoneVN(s string) (string, error) {
	var buf [16]byte
	digits, plus, err := phoneDigits(s, &buf)
	if err != nil {
		return "", err
	}
	nsn, err := nationalNumber(s, digits, plus)
	if err != nil {
		return "", err
	}
	if len(nsn) == 10 { // an old 01xx number, without its 0
		if nsn[0] != '1' {
			return "", notMobile(s, nsn)
		}
		np, ok := oldPrefixes[string(nsn[:3])]
		if !ok {
			return "", notMobile(s, nsn)
		}
		// Rewrite in place: the two new digits replace the three old ones.
		nsn = nsn[1:]
		nsn[0], nsn[1] = np[0], np[1]
	}
	if len(nsn) != 9 {
		return "", notMobile(s, nsn)
	}
	if !isMobile(nsn) {
		return "", notMobile(s, nsn)
	}
	if len(s) == 11 && s[0] == '8' && s[1] == '4' && s[2:] == string(nsn) {
		return s, nil // already canonical: no allocation
	}
	var out [11]byte
	out[0], out[1] = '8', '4'
	copy(out[2:], nsn)
	return string(out[:]), nil
}

// oldPrefixes maps the national number's first three digits before the 2018
// renumbering (0162 written without its 0) to the two that replaced them.
var oldPrefixes = map[string]string{
	// Viettel 0162–0169 -> 032–039
	"162": "32", "163": "33", "164": "34", "165": "35",
	"166": "36", "167": "37", "168": "38", "169": "39",
	// MobiFone
	"120": "70", "121": "79", "122": "77", "126": "76", "128": "78",
	// VinaPhone
	"123": "83", "124": "84", "125": "85", "127": "81", "129": "82",
	// Vietnamobile
	"186": "56", "188": "58",
	// Gmobile
	"199": "59",
}

// phoneDigits collects the digits of s into buf, rejecting anything but digits,
// separators and one leading plus, which it reports.
func phoneDigits(s string, buf *[16]byte) (digits []byte, plus bool, err error) {
	d := buf[:0]
	separators := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isDigit(c):
			if len(d) == len(buf) {
				return nil, false, fmt.Errorf("phone number %s has too many digits", quote(s))
			}
			d = append(d, c)
			i++
			continue
		case c == '+':
			if plus || len(d) > 0 {
				return nil, false, fmt.Errorf("phone number %s has a + that is not at its start", quote(s))
			}
			plus = true
			i++
			continue
		case c == '.' || c == '-' || c == '(' || c == ')':
			separators = true
			i++
			continue
		case asciiSpace(c):
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		return nil, false, fmt.Errorf("phone number %s contains %s; only digits, spaces, dots, dashes, parentheses and a leading + are allowed", quote(s), quote(string(r)))
	}
	if len(d) == 0 {
		if plus || separators {
			return nil, false, fmt.Errorf("phone number %s has no digits", quote(s))
		}
		return nil, false, errors.New("phone number is empty")
	}
	return d, plus, nil
}

// nationalNumber strips the country code or trunk prefix and returns the national
// number: 9 digits, or 10 for a number with an old 01xx prefix.
func nationalNumber(s string, d []byte, plus bool) ([]byte, error) {
	switch {
	case plus:
		if len(d) < 2 || d[0] != '8' || d[1] != '4' {
			return nil, fmt.Errorf("phone number %s is not Vietnamese: it does not start with +84", quote(s))
		}
		d = d[2:]
	case len(d) > 4 && d[0] == '0' && d[1] == '0':
		if d[2] != '8' || d[3] != '4' {
			return nil, fmt.Errorf("phone number %s is not Vietnamese: it does not start with 0084", quote(s))
		}
		d = d[4:]
	case len(d) >= 11 && d[0] == '8' && d[1] == '4':
		d = d[2:]
	case d[0] == '0':
		d = d[1:]
	case len(d) == 9 && (d[0] == '3' || d[0] == '5' || d[0] == '7' || d[0] == '8' || d[0] == '9'):
		// A spreadsheet dropped the leading 0.
	case len(d) == 10 && d[0] == '1':
		// An old 01xx number that lost its 0; checked against oldPrefixes.
	default:
		return nil, notMobile(s, d)
	}
	if len(d) > 0 && d[0] == '0' {
		d = d[1:] // "+84 (0) 912…": the trunk 0 has no place after 84
	}
	if len(d) < 9 || len(d) > 10 {
		return nil, notMobile(s, d)
	}
	return d, nil
}

// notMobile explains why a national number is not a mobile one.
func notMobile(s string, nsn []byte) error {
	switch numberType(nsn) {
	case phonenumbers.FIXED_LINE:
		return fmt.Errorf("phone number %s is a landline, not a mobile number", quote(s))
	case phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.UAN, phonenumbers.VOIP:
		return fmt.Errorf("phone number %s is a service number, not a mobile number", quote(s))
	}
	switch {
	case len(nsn) < 9:
		return fmt.Errorf("phone number %s is too short for a Vietnamese mobile number (0 and 9 digits)", quote(s))
	case len(nsn) > 10 || len(nsn) == 10 && nsn[0] != '1':
		return fmt.Errorf("phone number %s is too long for a Vietnamese mobile number (0 and 9 digits)", quote(s))
	}
	return fmt.Errorf("phone number %s is not a valid Vietnamese mobile number", quote(s))
}

// libraryType is phonenumbers' verdict on a Vietnamese national number: its
// type, or UNKNOWN when it is not a valid number.
func libraryType(nsn string) phonenumbers.PhoneNumberType {
	n, err := phonenumbers.Parse("+84"+nsn, "VN")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return phonenumbers.UNKNOWN
	}
	return phonenumbers.GetNumberType(n)
}

// Asking phonenumbers costs about 16µs and 76 allocations a number (parse, then
// several regular expressions), more than the mapping's whole budget for a row.
// Vietnamese number ranges are decided by the first three digits of the national
// number and its length (mobiles 032…039, 0896…0899, … with 9 digits; landlines
// 0272…, 028… with 10), so the library's verdict is asked once per prefix and
// length, on a few probe numbers (probes, in the table's test), when
// knownVerdicts (phone_verdicts.go) is generated. A prefix whose probes the
// library does not judge alike (today 121, where only 1210–1213 are mobile) is
// marked mixed, and every number under it is asked in full. Tests compare the
// table with the library's probes on every prefix, and PhoneVN with the library
// on every four-digit start and on random numbers, so a library update that
// changes a verdict or breaks the three-digit rule fails until the table is
// generated again. (Asking the probes at run time, as before, cost about 107 µs
// a prefix: some 23 ms of the first thousand numbers a fresh process mapped.)
//
// knownVerdicts[0] is for 9-digit numbers, [1] for 10-digit ones; an entry is
// mixed or the phonenumbers type plus one.
const mixed = 1 << 16

// numberType is phonenumbers' type for a Vietnamese national number, from
// knownVerdicts for 9- and 10-digit numbers.
func numberType(nsn []byte) phonenumbers.PhoneNumberType {
	if len(nsn) != 9 && len(nsn) != 10 {
		return libraryType(string(nsn))
	}
	verdict := knownVerdicts[len(nsn)-9][int(nsn[0]-'0')*100+int(nsn[1]-'0')*10+int(nsn[2]-'0')]
	if verdict == mixed {
		return libraryType(string(nsn))
	}
	return phonenumbers.PhoneNumberType(verdict - 1)
}

// isMobile reports whether phonenumbers considers the 9-digit national number a
// mobile number.
func isMobile(nsn []byte) bool {
	t := numberType(nsn)
	return t == phonenumbers.MOBILE || t == phonenumbers.FIXED_LINE_OR_MOBILE
}
