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
		v, j, ok := flatValue(b, i)
		if !ok {
			return nil, false
		}
		i = j
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

// flatValue reads the scalar JSON value at b[i].
func flatValue(b []byte, i int) (any, int, bool) {
	if i >= len(b) {
		return nil, 0, false
	}
	switch c := b[i]; {
	case c == '"':
		s, j, ok := flatString(b, i)
		return s, j, ok
	case c == 't' && hasAt(b, i, "true"):
		return true, i + 4, true
	case c == 'f' && hasAt(b, i, "false"):
		return false, i + 5, true
	case c == 'n' && hasAt(b, i, "null"):
		return nil, i + 4, true
	case c == '-' || (c >= '0' && c <= '9'):
		j, ok := numberEnd(b, i)
		if !ok {
			return nil, 0, false
		}
		return json.Number(b[i:j]), j, true
	}
	return nil, 0, false
}

// numberEnd reads the JSON number at b[i] by its grammar,
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and returns where it ends. Like
// encoding/json with UseNumber it checks the form only (no parse per value).
func numberEnd(b []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i + 1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// decodeFlatArray decodes a positional record, [shape, v1, v2, ...] with scalar
// values; ok is false for anything else.
func decodeFlatArray(b []byte) (shape int64, vals []any, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return 0, nil, false
	}
	first := true
	vals = make([]any, 0, 16)
	i = skipSpace(b, i+1)
	for {
		v, j, ok := flatValue(b, i)
		if !ok {
			return 0, nil, false
		}
		if first {
			n, isNum := v.(json.Number)
			if !isNum {
				return 0, nil, false
			}
			id, err := n.Int64()
			if err != nil {
				return 0, nil, false
			}
			shape, first = id, false
		} else {
			vals = append(vals, v)
		}
		i = skipSpace(b, j)
		if i >= len(b) {
			return 0, nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return shape, vals, skipSpace(b, i+1) == len(b)
		default:
			return 0, nil, false
		}
	}
}
