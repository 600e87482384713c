package zalo

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// splitText cuts text into parts of at most max characters, in order, breaking
// after a sentence (. ! ? … or a line break) where it can, else after a word, and
// only inside a word when one is longer than max. Parts are trimmed; empty text
// gives no parts.
func splitText(text string, max int) []string {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	var parts []string
	for utf8.RuneCountInString(text) > max {
		cut := cutAt(text, max)
		if p := strings.TrimSpace(text[:cut]); p != "" {
			parts = append(parts, p)
		}
		text = strings.TrimSpace(text[cut:])
	}
	if text != "" {
		parts = append(parts, text)
	}
	return parts
}

// cutAt returns the byte offset at which to cut text, which is longer than max
// characters, so the first part holds at most max characters.
func cutAt(text string, max int) int {
	limit, n := len(text), 0 // byte offset just after the max-th character
	for i := range text {
		if n == max {
			limit = i
			break
		}
		n++
	}
	sentence, word := -1, -1
	prev := rune(0)
	for i, r := range text[:limit] {
		if unicode.IsSpace(r) {
			word = i
			if r == '\n' || strings.ContainsRune(".!?…", prev) {
				sentence = i
			}
		}
		prev = r
	}
	// The character right after the limit may itself end a sentence's last word.
	if r, _ := utf8.DecodeRuneInString(text[limit:]); unicode.IsSpace(r) {
		word = limit
		if r == '\n' || strings.ContainsRune(".!?…", prev) {
			sentence = limit
		}
	}
	switch {
	case sentence > 0:
		return sentence
	case word > 0:
		return word
	default:
		return limit
	}
}
