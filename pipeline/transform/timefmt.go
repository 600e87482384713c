package transform

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// DefaultLayouts are the Go layouts ParseTime tries when a field declares none:
// ISO 8601 without and with a zone (Z, +07:00 or +0700), SQL datetime without
// and with a zone, each with optional fractional seconds (Go accepts a fraction
// after the seconds even when the layout has none) and with or without seconds;
// a bare date; the national public service portal's yyyyMMddHHmmss; and
// the day-first dates Vietnamese offices write, dd/MM/yyyy with or without a time
// and dd-MM-yyyy. Day and month may have one digit ("5/3/2024"); a day-first date
// is never read month-first, so "12/31/2024" is an error, not a guess. A value
// fits at most one of them, so the order only matters for speed: the common
// forms come first, and ParseTime skips, without trying, layouts whose
// separators differ from the value's.
var DefaultLayouts = []string{
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05 Z07:00", // SQL Server datetimeoffset as text
	"2006-01-02 15:04",
	"2006-01-02",
	"20060102150405",
	"2/1/2006 15:04:05",
	"2/1/2006 15:04",
	"2/1/2006",
	"2-1-2006",
}

// DefaultZone is the zone zone-less times are read in when none is given:
// Asia/Ho_Chi_Minh, or a fixed UTC+7 where the system has no zone database
// (Vietnam has had no daylight saving time since 1975, so the two agree).
func DefaultZone() *time.Location { return defaultZone() }

var defaultZone = sync.OnceValue(func() *time.Location {
	if z, err := time.LoadLocation("Asia/Ho_Chi_Minh"); err == nil {
		return z
	}
	return time.FixedZone("ICT", 7*3600)
})

// ParseTime reads s with the first of layouts (Go layouts; see GoLayout) that
// fits, and returns the instant in UTC. A time written without a zone is read in
// zone (DefaultZone when nil); one with a zone keeps it. No layouts means
// DefaultLayouts. Surrounding white space is ignored.
func ParseTime(s string, layouts []string, zone *time.Location) (time.Time, error) {
	if zone == nil {
		zone = DefaultZone()
	}
	if len(layouts) == 0 {
		layouts = DefaultLayouts
	}
	v := strings.TrimSpace(s)
	if v == "" {
		return time.Time{}, errors.New("time is empty")
	}
	var near *time.ParseError // a layout that fitted the shape but not the values
	for _, l := range layouts {
		if l == portalLayout {
			if t, ok := parsePortal(v, zone); ok {
				return t, nil
			}
		}
		if !mayMatch(l, v) {
			continue
		}
		t, err := time.ParseInLocation(l, v, zone)
		if err == nil {
			return t.UTC(), nil
		}
		var pe *time.ParseError
		if near == nil && errors.As(err, &pe) && pe.Message != "" {
			near = pe
		}
	}
	switch {
	case len(layouts) == 1:
		msg := ""
		if near != nil {
			msg = near.Message // ": day out of range"
		}
		return time.Time{}, fmt.Errorf("time %s does not match layout %s%s", quote(s), layouts[0], msg)
	case near != nil:
		return time.Time{}, fmt.Errorf("time %s is not a valid date or time%s", quote(s), near.Message)
	}
	return time.Time{}, fmt.Errorf("time %s is not in a layout this mapping can read; declare its layout (e.g. dd/MM/yyyy HH:mm)", quote(s))
}

// portalLayout is the national portal's yyyyMMddHHmmss, which whole tables of
// times are written in.
const portalLayout = "20060102150405"

// parsePortal reads a valid yyyyMMddHHmmss value as time.ParseInLocation does
// (the wall clock in zone, then UTC) at a fraction of its cost; ok is false for
// anything else, which then takes the general path and its error messages.
func parsePortal(v string, zone *time.Location) (t time.Time, ok bool) {
	if len(v) != len(portalLayout) {
		return time.Time{}, false
	}
	var n [len(portalLayout)]int
	for i := range n {
		if !isDigit(v[i]) {
			return time.Time{}, false
		}
		n[i] = int(v[i] - '0')
	}
	year := n[0]*1000 + n[1]*100 + n[2]*10 + n[3]
	month, day := time.Month(n[4]*10+n[5]), n[6]*10+n[7]
	hour, minute, sec := n[8]*10+n[9], n[10]*10+n[11], n[12]*10+n[13]
	if month < time.January || month > time.December || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, month, day, hour, minute, sec, 0, zone).UTC(), true
}

// daysIn is the number of days of month in year (proleptic Gregorian, as time's).
func daysIn(month time.Month, year int) int {
	if month == time.February && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}
	return monthDays[month]
}

var monthDays = [...]int{time.January: 31, time.February: 28, time.March: 31, time.April: 30, time.May: 31, time.June: 30,
	time.July: 31, time.August: 31, time.September: 30, time.October: 31, time.November: 30, time.December: 31}

// mayMatch is a cheap pre-check that skips layouts that cannot fit: a failed
// time.Parse costs an allocated error, and a dd/MM/yyyy value would otherwise
// fail through every ISO layout first. It walks layout and value together,
// skipping runs of digits (numeric fields in the layout, numbers in the value)
// and comparing the separators between them, until the layout reaches something
// it does not model (a month name, a zone, a fraction, a padded day), where it
// leaves the verdict to time.Parse. It never skips a layout time.Parse would
// accept; a test and a fuzz test hold it to that.
func mayMatch(layout, v string) bool {
	i, j := 0, 0
	for {
		li, vj := skipDigits(layout, i), skipDigits(v, j)
		if li == i && i < len(layout) && !isLayoutSep(layout, i) {
			return true // a token or literal this walk does not model
		}
		if li > i && vj == j && j < len(v) && (v[j] == '+' || v[j] == '-') {
			vj = skipDigits(v, j+1) // Go's two-digit year reads "+0" too
		}
		if (li > i) != (vj > j) {
			return false // a number on one side only
		}
		i, j = li, vj
		if j+1 < len(v) && (v[j] == '.' || v[j] == ',') && isDigit(v[j+1]) && (i == len(layout) || layout[i] != v[j]) {
			// Go reads a fraction after the seconds even when the layout has
			// none; any number may be the seconds, for all this walk knows.
			j = skipDigits(v, j+1)
		}
		if i == len(layout) {
			return j == len(v)
		}
		if !isLayoutSep(layout, i) {
			return true
		}
		if layout[i] == ' ' {
			// As in time.Parse, a run of spaces matches a run of spaces, or
			// the end of the value.
			if j < len(v) && v[j] != ' ' {
				return false
			}
			i, j = skipSpaces(layout, i), skipSpaces(v, j)
			continue
		}
		if j == len(v) || v[j] != layout[i] {
			return false
		}
		i++
		j++
	}
}

func skipSpaces(s string, i int) int {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

// isLayoutSep reports whether layout[i] is a separator that the value must
// repeat: - / . : space or T, but not the - of a zone (-0700) nor the dot of a
// fraction (.000, .999).
func isLayoutSep(layout string, i int) bool {
	switch c := layout[i]; c {
	case '/', ':', ' ', 'T':
		return true
	case '-':
		return !strings.HasPrefix(layout[i+1:], "07")
	case '.':
		return i+1 == len(layout) || layout[i+1] != '0' && layout[i+1] != '9'
	}
	return false
}

func skipDigits(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// GoLayout turns a date pattern in the style of Java, .NET and SQL Server
// (yyyy-MM-dd HH:mm:ss) into Go's reference layout, since integrators copy
// layouts from the agency system's documentation. Supported: yyyy yy, MM M
// (MMM Jan, MMMM January), dd d, HH H (24 h), hh h (12 h) with a (AM/PM), mm m,
// ss s, S… (fraction, one 0 per S), XXX (+07:00), XX and Z (+0700), X (+07) —
// each zone form also reads Z for UTC —, EEE and EEEE (weekday), and text in
// single quotes, copied as it is (two single quotes make one). Other characters
// are copied too. A layout that already is Go's (contains 2006) is returned as
// is.
func GoLayout(l string) string {
	if strings.Contains(l, "2006") {
		return l
	}
	var b strings.Builder
	b.Grow(len(l) + 8)
	for i := 0; i < len(l); {
		c := l[i]
		if c == '\'' {
			i = quoted(&b, l, i+1)
			continue
		}
		n := 1
		for i+n < len(l) && l[i+n] == c {
			n++
		}
		b.WriteString(layoutToken(c, n, l[i:i+n]))
		i += n
	}
	return b.String()
}

// quoted copies the quoted text starting at l[i] (just after the opening
// quote), in which two quotes make one, and returns the index after the closing
// quote. A quote at once after the opening one is a literal quote; an unclosed
// quote runs to the end.
func quoted(b *strings.Builder, l string, i int) int {
	if i < len(l) && l[i] == '\'' {
		b.WriteByte('\'')
		return i + 1
	}
	for i < len(l) {
		if l[i] == '\'' {
			if i+1 < len(l) && l[i+1] == '\'' {
				b.WriteByte('\'')
				i += 2
				continue
			}
			return i + 1
		}
		b.WriteByte(l[i])
		i++
	}
	return i
}

// layoutToken is the Go layout for n repetitions of pattern letter c; run is
// the text itself, returned for anything that is not a pattern letter.
func layoutToken(c byte, n int, run string) string {
	pick := func(tokens ...string) string { return tokens[min(n, len(tokens))-1] }
	switch c {
	case 'y':
		if n == 2 {
			return "06"
		}
		return "2006"
	case 'M':
		return pick("1", "01", "Jan", "January")
	case 'd':
		return pick("2", "02")
	case 'H':
		return "15"
	case 'h':
		return pick("3", "03")
	case 'm':
		return pick("4", "04")
	case 's':
		return pick("5", "05")
	case 'S':
		return strings.Repeat("0", n)
	case 'a':
		return "PM"
	case 'X':
		return pick("Z07", "Z0700", "Z07:00")
	case 'Z':
		return "Z0700" // Java's Z is numeric only; Go's Z0700 also reads "Z"
	case 'E':
		return pick("Mon", "Mon", "Mon", "Monday")
	}
	return run
}
