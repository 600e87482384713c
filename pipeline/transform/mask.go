package transform

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaskPhone hides the middle of a phone number for logs and dashboards:
// "0912 345 678" -> "84912***678". The country code, the operator prefix and the
// last three digits stay, which is enough to tell two numbers apart when reading
// a log, and not enough to call anyone. A value that is not a valid Vietnamese
// mobile number keeps only its last three characters.
func MaskPhone(s string) string {
	if p, err := PhoneVN(s); err == nil {
		return p[:5] + "***" + p[8:]
	}
	return keepLast(strings.TrimSpace(s), 3)
}

// MaskName keeps the first letter of each word of a person's name and replaces
// the rest with up to three asterisks, so the length of a word is not shown
// either: "Nguyễn Văn An" -> "N*** V** A*". It counts letters, not bytes, and
// normalises to NFC first, so a decomposed "Ễ" stays one letter.
func MaskName(s string) string {
	s = NFC(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, w := range strings.Fields(s) {
		if i > 0 {
			b.WriteByte(' ')
		}
		r, size := utf8.DecodeRuneInString(w)
		b.WriteRune(r)
		n := utf8.RuneCountInString(w[size:])
		b.WriteString("***"[:min(n, 3)])
	}
	return b.String()
}

// MaskID hides a citizen identity number (CCCD, 12 digits, or the older CMND, 9)
// except its last three characters: "001203004567" -> "*********567". The length
// stays visible, which tells the two kinds of document apart. A value of three
// characters or fewer is masked entirely.
func MaskID(s string) string {
	return keepLast(CollapseSpaces(s), 3)
}

// keepLast replaces every character of s but the last n (letters, not bytes)
// with an asterisk; a value of n characters or fewer becomes "***".
func keepLast(s string, n int) string {
	count := utf8.RuneCountInString(s)
	if count <= n {
		if count == 0 {
			return ""
		}
		return "***"
	}
	var b strings.Builder
	b.Grow(count)
	i := 0
	for _, r := range s {
		if i < count-n && !unicode.IsSpace(r) {
			b.WriteByte('*')
		} else {
			b.WriteRune(r)
		}
		i++
	}
	return b.String()
}
