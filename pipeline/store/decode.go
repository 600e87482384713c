package store

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeFlat decodes a JSON object whose values are all strings, numbers, booleans
// or null (what a record's fields encode to) the way decodeJSON with UseNumber
// does. ok is false for anything else (nested values, malformed input), and the
// caller falls back to encoding/json: a feed hands out every record of a first
// sync, and the reflection decoder was most of that cost.
func decodeFlat(b []byte) (m map[string]any, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	m = make(map[string]any, 16)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := flatString(b, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return nil, false
		}
		var v any
		switch c := b[i]; {
		case c == '"':
			s, j, ok := flatString(b, i)
			if !ok {
				return nil, false
			}
			v, i = s, j
		case c == 't' && hasAt(b, i, "true"):
			v, i = true, i+4
		case c == 'f' && hasAt(b, i, "false"):
			v, i = false, i+5
		case c == 'n' && hasAt(b, i, "null"):
			v, i = nil, i+4
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
				j++
			}
			n := json.Number(b[i:j])
			if _, err := n.Float64(); err != nil {
				return nil, false
			}
			v, i = n, j
		default:
			return nil, false
		}
		m[key] = v
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return m, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasAt(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// flatString reads the JSON string starting at b[i] (a quote); strings with
// escapes go through encoding/json.
func flatString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			raw := b[i+1 : j]
			if !utf8.Valid(raw) {
				return "", 0, false
			}
			return string(raw), j + 1, true
		case c == '\\':
			return escapedString(b, i)
		case c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

func escapedString(b []byte, i int) (string, int, bool) {
	j := i + 1
	for j < len(b) && b[j] != '"' {
		if b[j] == '\\' {
			j++
		}
		j++
	}
	if j >= len(b) {
		return "", 0, false
	}
	var s string
	if err := json.Unmarshal(b[i:j+1], &s); err != nil {
		return "", 0, false
	}
	return s, j + 1, true
}
