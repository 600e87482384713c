package natssink

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Subject is the subject an event is published on: <prefix>.<entity>.<agency>, with
// entity and agency reduced to subject tokens by Token.
func Subject(prefix, entity, agency string) string {
	return prefix + "." + Token(entity) + "." + Token(agency)
}

// Token reduces s to one subject token that is safe to publish on and to filter by:
// Vietnamese diacritics are removed (đ becomes d), letters are lower-cased, and every
// character other than a-z, 0-9, '_' and '-' becomes '_'. An empty s gives "_".
// So "UBND-CG" is "ubnd-cg", "Sở Y tế" is "so_y_te", and "a.b*>" is "a_b__".
func Token(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) { // a combining mark: the diacritic of the letter before
			continue
		}
		if r == 'đ' || r == 'Đ' {
			r = 'd'
		}
		r = unicode.ToLower(r)
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 { // s was only combining marks
		return "_"
	}
	return b.String()
}

// checkPrefix returns why p cannot be a subject prefix, or "". A prefix is one or
// more dot-separated tokens of ASCII letters, digits, '_' and '-': no spaces, no
// wildcards (* >), no empty tokens, nothing that needs quoting anywhere.
func checkPrefix(p string) string {
	if p == "" {
		return "must not be empty"
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return "\"" + p + "\" has an empty token: no leading, trailing or double dots"
		}
		for _, r := range tok {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return "\"" + p + "\" is not a valid subject prefix: use dot-separated tokens of letters, digits, '_' and '-' (no spaces or wildcards * >)"
			}
		}
	}
	return ""
}

// covers reports whether every subject matching pattern also matches filter, both
// being NATS subjects that may hold the wildcards * (one token) and > (one or more
// trailing tokens). The sink checks that its stream's subjects cover
// "<prefix>.*.*", every subject it can publish on.
func covers(filter, pattern string) bool {
	f, p := strings.Split(filter, "."), strings.Split(pattern, ".")
	for i, ft := range f {
		if ft == ">" {
			return i < len(p) // > matches one or more tokens
		}
		if i >= len(p) {
			return false
		}
		switch pt := p[i]; {
		case pt == ">":
			return false // the pattern reaches further than a token-sized filter
		case ft == "*":
		case ft != pt: // a literal covers only itself, never a wildcard
			return false
		}
	}
	return len(f) == len(p)
}
