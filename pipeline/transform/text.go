package transform

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// NFC returns s in Unicode normalisation form C. Vietnamese text arrives both
// precomposed (Windows, most databases) and decomposed (macOS, some web forms);
// the two look the same but compare unequal, so every text value is brought to
// the precomposed form before it is hashed, compared or sent.
func NFC(s string) string {
	// ASCII text is always NFC (no ASCII character decomposes or combines), and
	// codes, numbers and dates are ASCII: a byte loop is much cheaper than the
	// normaliser's table walk.
	if isASCII(s) {
		return s
	}
	// Vietnamese written precomposed (Windows, most databases) is ASCII and
	// precomposed Latin letters, each NFC and never combining with the letter
	// before it: such text is NFC, which a table look-up per letter tells more
	// cheaply than the normaliser's walk.
	if isPrecomposedLatin(s) {
		return s
	}
	// QuickSpanString answers the common case without allocating, which
	// IsNormalString does not; when it stops short, String does the full work.
	if norm.NFC.QuickSpanString(s) == len(s) {
		return s
	}
	return norm.NFC.String(s)
}

// isPrecomposedLatin reports whether s holds only ASCII and the letters of
// precomposedLatin.
func isPrecomposedLatin(s string) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= latinEnd || !precomposedLatin[r] {
			return false
		}
		i += size
	}
	return true
}

// latinEnd is where the Latin blocks end (after Latin Extended Additional,
// U+1E00–U+1EFF, which holds most of Vietnamese's letters).
const latinEnd = 0x1F00

// precomposedLatin marks the letters of the Latin blocks (Latin-1 Supplement to
// Latin Extended-B, and Latin Extended Additional) that are their own NFC, are
// starters and never combine with the rune before them: a string of such letters
// and ASCII is NFC, since nothing in it decomposes or composes. The normaliser's
// own tables decide, once, which letters they are.
var precomposedLatin = func() []bool {
	t := make([]bool, latinEnd)
	for r := rune(0xC0); r < latinEnd; r++ {
		if r >= 0x250 && r < 0x1E00 {
			continue // IPA, modifiers, combining marks, Greek and the rest: not letters Vietnamese uses
		}
		s := string(r)
		p := norm.NFC.PropertiesString(s)
		t[r] = p.CCC() == 0 && p.BoundaryBefore() && norm.NFC.IsNormalString(s)
	}
	return t
}()

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Upper upper-cases s by Unicode rules ("đường" -> "ĐƯỜNG").
func Upper(s string) string { return strings.ToUpper(s) }

// Lower lower-cases s by Unicode rules ("ĐƯỜNG" -> "đường").
func Lower(s string) string { return strings.ToLower(s) }

// CollapseSpaces turns every run of Unicode white space (tabs, line breaks, the
// no-break spaces that spreadsheets and web pages leave behind) into one ASCII
// space and trims both ends, so "Nguyễn\u00a0 Văn\tAn " becomes "Nguyễn Văn An".
func CollapseSpaces(s string) string {
	if !needsCollapse(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pending := false // a space is owed before the next non-space
	for _, r := range s {
		if unicode.IsSpace(r) {
			pending = b.Len() > 0
			continue
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// needsCollapse reports whether CollapseSpaces would change s.
func needsCollapse(s string) bool {
	prevSpace := true // a space at the start needs trimming
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == ' ' {
				if prevSpace {
					return true
				}
				prevSpace = true
			} else if asciiSpace(c) {
				return true
			} else {
				prevSpace = false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			return true
		}
		prevSpace = false
		i += size
	}
	return prevSpace && len(s) > 0 // a trailing space
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// Digits keeps only the ASCII digits of s: "CCCD: 001.203.004.567" -> "001203004567".
func Digits(s string) string {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, i, len(s))
	copy(b, s[:i])
	for ; i < len(s); i++ {
		if isDigit(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Fold makes a search key: lower case, without diacritics, đ as d, white space
// collapsed. "Nguyễn Văn Đức", its decomposed form and "NGUYEN  VAN DUC" all fold
// to "nguyen van duc", so a citizen who types without Vietnamese accents still
// finds their commune, and a table keyed by place names matches however the
// agency spelled them. Fold is idempotent: Fold(Fold(s)) == Fold(s).
//
// Combining marks (Unicode category Mn) are dropped wherever they appear; letters
// outside Latin keep their (lower-cased) form.
func Fold(s string) string {
	if isFolded(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pending := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if asciiSpace(c) {
				pending = b.Len() > 0
				continue
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if pending {
				b.WriteByte(' ')
				pending = false
			}
			b.WriteByte(c)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case unicode.IsSpace(r):
			pending = b.Len() > 0
			continue
		case unicode.Is(unicode.Mn, r):
			continue
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		if !inLatinTables(r) {
			// Outside the Latin tables (Greek tonos, compatibility letters):
			// decompose here, so precomposed and decomposed input fold alike.
			if d := norm.NFD.PropertiesString(s[i-size : i]).Decomposition(); d != nil {
				for _, dr := range string(d) {
					if !unicode.Is(unicode.Mn, dr) {
						writeFolded(&b, dr)
					}
				}
				continue
			}
		}
		writeFolded(&b, r)
	}
	return b.String()
}

// writeFolded writes one rune that carries no combining mark of its own.
func writeFolded(b *strings.Builder, r rune) {
	if r < utf8.RuneSelf {
		c := byte(r)
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
		return
	}
	if base, ok := latinBase(r); ok {
		b.WriteByte(base)
		return
	}
	b.WriteRune(unicode.ToLower(r))
}

// isFolded reports whether Fold would return s unchanged: lower-case ASCII
// without doubled, leading or trailing spaces. Anything else takes the slow path,
// which is still correct for text that happens to be folded already.
func isFolded(s string) bool {
	prevSpace := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf, 'A' <= c && c <= 'Z':
			return false
		case c == ' ':
			if prevSpace {
				return false
			}
			prevSpace = true
		case asciiSpace(c):
			return false
		default:
			prevSpace = false
		}
	}
	return !prevSpace || len(s) == 0
}

// Latin letters with diacritics live in three blocks: Latin-1 Supplement and
// Latin Extended-A/B (U+00C0–U+024F), and Latin Extended Additional
// (U+1E00–U+1EFF), which holds most precomposed Vietnamese vowels such as ễ and ự.
const (
	latinLo, latinHi = 0x00C0, 0x024F
	extLo, extHi     = 0x1E00, 0x1EFF
)

// foldLatin maps each letter of those blocks to its lower-case ASCII base letter,
// or 0 when it has none (æ, ß, þ). Derived once from the Unicode decompositions,
// so it is exactly what "decompose, drop the marks" would give, without doing it
// per rune.
var foldLatin, foldExt = buildFold(latinLo, latinHi), buildFold(extLo, extHi)

func buildFold(lo, hi rune) []byte {
	t := make([]byte, hi-lo+1)
	for r := lo; r <= hi; r++ {
		d := norm.NFD.String(string(r))
		base, size := utf8.DecodeRuneInString(d)
		if base >= utf8.RuneSelf || !isLetter(byte(base)) {
			continue
		}
		marksOnly := true
		for _, m := range d[size:] {
			if !unicode.Is(unicode.Mn, m) {
				marksOnly = false
			}
		}
		if marksOnly {
			t[r-lo] = byte(unicode.ToLower(base))
		}
	}
	// đ/Đ (and the look-alike Ð/ð that old TCVN3/VNI converters produce) have no
	// decomposition but are, for a Vietnamese reader, a d.
	for _, r := range []rune{'đ', 'Đ', 'ð', 'Ð'} {
		if lo <= r && r <= hi {
			t[r-lo] = 'd'
		}
	}
	return t
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

func inLatinTables(r rune) bool {
	return (latinLo <= r && r <= latinHi) || (extLo <= r && r <= extHi)
}

// latinBase returns the ASCII base letter of a Latin letter with diacritics.
func latinBase(r rune) (byte, bool) {
	var c byte
	switch {
	case latinLo <= r && r <= latinHi:
		c = foldLatin[r-latinLo]
	case extLo <= r && r <= extHi:
		c = foldExt[r-extLo]
	}
	return c, c != 0
}
