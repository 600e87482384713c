// Package pgtext makes text and JSON safe for PostgreSQL, which refuses the NUL
// character in text and jsonb (22021, 22P05) even though agency data carries one
// now and then. A bad character must never fail a batch or a delivery: it becomes
// U+FFFD, visible but harmless.
package pgtext

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Text returns s with NUL and invalid UTF-8 replaced by U+FFFD; s itself when clean.
func Text(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
}

var nulEscape = []byte(`\u0000`)

// JSON turns every \u0000 escape of a JSON document into \ufffd. encoding/json
// writes a NUL in any string as \u0000 (and already replaces invalid UTF-8). A plain
// bytes.ReplaceAll would also hit an escaped backslash followed by "u0000" (the
// six-character text `\u0000`), so escapes are walked pairwise; outside strings JSON
// has no backslashes. b itself is returned when there is nothing to replace.
func JSON(b []byte) []byte {
	if !bytes.Contains(b, nulEscape) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		if bytes.HasPrefix(b[i:], nulEscape) {
			out = append(out, `\ufffd`...)
			i += len(nulEscape) - 1
			continue
		}
		out = append(out, b[i], b[i+1]) // any other escape, kept whole
		i++
	}
	return out
}
