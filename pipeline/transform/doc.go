// Package transform holds the value types and text transforms that mappings use:
// Vietnamese mobile numbers, dates and times in the layouts agency systems write,
// numbers with a decimal comma, exam marks, Unicode text clean-up, the steps of a
// field's transform list, and lookup tables.
//
// Every function is pure and safe for concurrent use. Input comes from agency
// databases and spreadsheets that nobody here controls, so malformed input is an
// error quoting the value, never a panic. The mapping runs these functions on every
// field of every row (the target is 200,000 rows a second on one core), so the
// common case avoids allocation: a value that is already clean is returned as it is.
package transform

import (
	"strconv"
	"unicode/utf8"
)

// maxQuoted bounds how much of a bad value an error message repeats, so a megabyte
// of garbage in one cell does not become a megabyte of log line.
const maxQuoted = 64

// quote renders a value for an error message: Go-quoted, cut to maxQuoted runes.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := 0
	for i := range s {
		if n == maxQuoted {
			return strconv.Quote(s[:i]) + "…"
		}
		n++
	}
	return strconv.Quote(s)
}
