package transform

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Decimal reads a number written the Vietnamese way or the programmer's way.
//
//   - a decimal comma or a decimal point: "8,75" and "8.75" are 8.75;
//   - thousands separators when they cannot be mistaken for a decimal separator:
//     a separator used more than once ("1.250.000", "1,250,000"), or followed by
//     the other kind ("1.250.000,5" and "1,250,000.5" are 1250000.5); groups after
//     the first must have three digits;
//   - a sign, an exponent ("1.5e-3") and surrounding white space.
//
// A single dot or comma is always the decimal separator: "1.250" is 1.25, as a
// program would write it, and "8,75" is 8.75, as a teacher would. NaN, infinities,
// hexadecimal, underscores and any other text are errors.
func Decimal(s string) (float64, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return 0, errors.New("number is empty")
	}
	var buf [64]byte
	norm, err := normalizeNumber(v, buf[:0])
	if err != nil {
		return 0, fmt.Errorf("%s is not a number: %w", quote(s), err)
	}
	f, err := strconv.ParseFloat(string(norm), 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%s is too large or too small a number", quote(s))
		}
		return 0, fmt.Errorf("%s is not a number", quote(s))
	}
	return f, nil
}

var (
	errNoDigits  = errors.New("no digits")
	errGrouping  = errors.New("thousands separators must split the digits in groups of three")
	errMixedSeps = errors.New("the decimal separator must come once, after all thousands separators")
	errExponent  = errors.New("bad exponent")
)

// normalizeNumber rewrites v as strconv.ParseFloat wants it (sign, digits, one
// dot, exponent), appending to out.
func normalizeNumber(v string, out []byte) ([]byte, error) {
	if v[0] == '+' || v[0] == '-' {
		out = append(out, v[0])
		v = v[1:]
	}
	mant, exp, hasExp := v, "", false
	if i := strings.IndexAny(v, "eE"); i >= 0 {
		mant, exp, hasExp = v[:i], v[i+1:], true
	}
	var dots, commas, digits int
	lastDot, lastComma := -1, -1
	for i := 0; i < len(mant); i++ {
		switch c := mant[i]; {
		case isDigit(c):
			digits++
		case c == '.':
			dots++
			lastDot = i
		case c == ',':
			commas++
			lastComma = i
		default:
			return nil, fmt.Errorf("unexpected %s", quote(mant[i:i+1]))
		}
	}
	if digits == 0 {
		return nil, errNoDigits
	}
	// Decide which separator, if any, is the decimal one and which groups thousands.
	var thou byte
	point := -1 // index of the decimal separator in mant
	switch {
	case dots == 0 && commas == 0:
	case commas == 0 && dots == 1:
		point = lastDot
	case dots == 0 && commas == 1:
		point = lastComma
	case commas == 0:
		thou = '.'
	case dots == 0:
		thou = ','
	case lastComma > lastDot && commas == 1:
		point, thou = lastComma, '.'
	case lastDot > lastComma && dots == 1:
		point, thou = lastDot, ','
	default:
		return nil, errMixedSeps
	}
	whole, frac := mant, ""
	if point >= 0 {
		whole, frac = mant[:point], mant[point+1:]
	}
	if thou != 0 {
		if hasExp {
			return nil, errExponent
		}
		if !grouped(whole, thou) {
			return nil, errGrouping
		}
	}
	for i := 0; i < len(whole); i++ {
		if whole[i] != thou {
			out = append(out, whole[i])
		}
	}
	if point >= 0 {
		out = append(out, '.')
		out = append(out, frac...)
	}
	if hasExp {
		e := exp
		if e != "" && (e[0] == '+' || e[0] == '-') {
			e = e[1:]
		}
		if e == "" || firstNonDigit(e) >= 0 {
			return nil, errExponent
		}
		out = append(out, 'e')
		out = append(out, exp...)
	}
	return out, nil
}

// grouped reports whether whole is digits in groups split by sep: the first of
// one to three digits, the others of exactly three.
func grouped(whole string, sep byte) bool {
	first := true
	for len(whole) > 0 {
		i := strings.IndexByte(whole, sep)
		group := whole
		if i >= 0 {
			group, whole = whole[:i], whole[i+1:]
			if whole == "" {
				return false // a trailing separator
			}
		} else {
			whole = ""
		}
		if first && (len(group) < 1 || len(group) > 3) || !first && len(group) != 3 {
			return false
		}
		first = false
	}
	return !first
}

// Mark reads an exam mark, which is a Decimal from 0 to 10, or a note that the
// candidate was absent: a blank cell, "VẮNG" (absent) in any case or without its
// diacritics, "V", or "-". Absent is not zero: a citizen asking for a score must
// be told they were absent, not that they scored nothing. Other notes that exam
// sheets carry ("KT" for disciplined, "MIỄN" for exempt, …) are errors, so that a
// mapping has to say with a map: what each of them means.
func Mark(s string) (value float64, absent bool, err error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return 0, true, nil
	}
	if !isDigit(v[0]) && v[0] != '.' && v[0] != ',' {
		switch v {
		case "-", "V", "v":
			return 0, true, nil
		}
		if f := Fold(v); f == "vang" {
			return 0, true, nil
		}
	}
	f, err := Decimal(v)
	if err != nil {
		return 0, false, fmt.Errorf("mark %s is not a number, nor VẮNG, V or - for absent", quote(s))
	}
	if f < 0 || f > 10 {
		return 0, false, fmt.Errorf("mark %s is outside 0 to 10", quote(s))
	}
	return f, false, nil
}

// Int reads a whole number: "9", " 9 ", "+9", and also "9.0", "9,0" or
// "1.250.000", since numeric columns often reach us as decimal text. A fraction
// ("9.5") is an error, not rounded away.
func Int(s string) (int64, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return 0, errors.New("whole number is empty")
	}
	if plainInteger(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is too large for a whole number", quote(s))
		}
		return n, nil
	}
	f, err := Decimal(v)
	if err != nil {
		return 0, fmt.Errorf("%s is not a whole number", quote(s))
	}
	if f != math.Trunc(f) {
		return 0, fmt.Errorf("%s is not a whole number", quote(s))
	}
	if math.Abs(f) >= 1<<53 { // from here a float64 no longer holds every integer
		return 0, fmt.Errorf("%s is too large to read exactly as a whole number; write it without a decimal part", quote(s))
	}
	return int64(f), nil
}

func plainInteger(v string) bool {
	if v[0] == '+' || v[0] == '-' {
		v = v[1:]
	}
	return v != "" && firstNonDigit(v) < 0
}

func firstNonDigit(s string) int {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return i
		}
	}
	return -1
}
