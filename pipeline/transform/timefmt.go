package transform

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// DefaultLayouts are the Go layouts ParseTime tries when a field declares none, in
// this order: ISO 8601 with a zone (Z, +07:00 or +0700) and without, SQL datetime
// with and without a zone, each with optional fractional seconds (Go accepts a
// fraction after the seconds even when the layout has none) and with or without
// seconds; a bare date; the national public service portal's yyyyMMddHHmmss; and
// the day-first dates Vietnamese offices write, dd/MM/yyyy with or without a time
// and dd-MM-yyyy. Day and month may have one digit ("5/3/2024"); a day-first date
// is never read month-first, so "12/31/2024" is an error, not a guess.
var DefaultLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
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
var DefaultZone = sync.OnceValue(func() *time.Location {
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

// mayMatch is a cheap pre-check that skips layouts that cannot fit: a failed
// time.Parse costs an allocated error, and a dd/MM/yyyy value would otherwise
// fail through every ISO layout first. When a layout starts with a number, the
// first character after that number must be the same in the value ("-" in
// 2006-01-02, "/" in 2/1/2006, none in 20060102150405). Layouts that start
// otherwise are always tried.
func mayMatch(layout, v string) bool {
	if layout == "" || !isDigit(layout[0]) || v == "" || !isDigit(v[0]) {
		return true
	}
	ls := firstNonDigit(layout)
	if ls < 0 {
		// An all-digit layout; Go still accepts a fraction after the seconds.
		i := firstNonDigit(v)
		return i < 0 || v[i] == '.' || v[i] == ','
	}
	if !strings.ContainsRune("-/.: T", rune(layout[ls])) {
		return true // a layout like 2006Jan02: no opinion
	}
	vs := firstNonDigit(v)
	return vs >= 0 && v[vs] == layout[ls]
}

func firstNonDigit(s string) int {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return i
		}
	}
	return -1
}

// GoLayout turns a date pattern in the style of Java, .NET and SQL Server
// (yyyy-MM-dd HH:mm:ss) into Go's reference layout, since integrators copy
// layouts from the agency system's documentation. Supported: yyyy yy, MM M
// (MMM Jan, MMMM January), dd d, HH H (24 h), hh h (12 h) with a (AM/PM), mm m,
// ss s, S… (fraction, one 0 per S), XXX (+07:00), XX and Z (+0700), X (+07), each also reading Z for UTC,
// EEE and EEEE (weekday), and 'quoted' literal text ('' for a quote). Other
// characters are copied. A layout that already is Go's (contains 2006) is
// returned as is.
func GoLayout(l string) string {
	if strings.Contains(l, "2006") {
		return l
	}
	var b strings.Builder
	b.Grow(len(l) + 8)
	for i := 0; i < len(l); {
		c := l[i]
		if c == '\'' {
			j := strings.IndexByte(l[i+1:], '\'')
			switch {
			case j == 0: // '' is a quote
				b.WriteByte('\'')
				i += 2
			case j < 0: // unclosed: the rest is literal
				b.WriteString(l[i+1:])
				i = len(l)
			default:
				b.WriteString(l[i+1 : i+1+j])
				i += j + 2
			}
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
