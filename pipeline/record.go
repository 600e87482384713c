package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Row is one raw row as a source read it: column name to driver value.
type Row map[string]any

// Text is the row as text, the way quarantine keeps it: NULL as "", bytes as their
// text, times as RFC 3339 in UTC, anything else printed.
func (r Row) Text() map[string]string {
	out := make(map[string]string, len(r))
	for k, v := range r {
		switch x := v.(type) {
		case nil:
			out[k] = ""
		case []byte:
			out[k] = string(x)
		case time.Time:
			out[k] = x.UTC().Format(time.RFC3339Nano)
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

// Record is a normalised row: typed fields keyed by the mapping's field names.
// Field values are nil, string, int64, float64, bool or time.Time (always UTC).
type Record struct {
	Entity string
	Key    string
	Agency string
	Fields map[string]any
	// Sorted, when set by the producer (a mapping knows its field names), is the
	// sorted list of every name in Fields; Hash uses it instead of sorting per row.
	Sorted []string
	// Dropped names the fields whose unreadable value was dropped (a mapping's
	// invalid: "null"), so the loss is counted rather than silent.
	Dropped []string
}

// Hash is the content hash that change detection compares; it covers the fields only,
// so a record re-read without change hashes the same. It is a canonical encoding of
// the fields in key order (type-tagged, so 1 and "1" differ) fed to SHA-256, written
// by hand because it runs once per row read and encoding/json was half the cost.
func (r Record) Hash() string {
	keys := r.Sorted
	if len(keys) != len(r.Fields) {
		keys = make([]string, 0, len(r.Fields))
		for k := range r.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	// One buffer and one Sum256: the digest of the whole encoding is what streaming
	// it in pieces gave, without allocating a hash state per row.
	var arr [512]byte
	buf := arr[:0]
	for _, k := range keys {
		buf = append(buf, k...)
		buf = append(buf, 0)
		buf = appendValue(buf, r.Fields[k])
		buf = append(buf, 0)
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:16])
}

func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 'n')
	case string:
		b = append(b, 's')
		return append(b, x...)
	case int64:
		b = append(b, 'i')
		return strconv.AppendInt(b, x, 10)
	case float64:
		b = append(b, 'f')
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case bool:
		b = append(b, 'b')
		return strconv.AppendBool(b, x)
	case time.Time:
		b = append(b, 't')
		return x.UTC().AppendFormat(b, time.RFC3339Nano)
	}
	// Fields hold only the types above by construction; anything else still hashes
	// deterministically through its JSON form.
	j, err := json.Marshal(v)
	if err != nil {
		j = fmt.Appendf(nil, "%v", v)
	}
	b = append(b, 'j')
	return append(b, j...)
}

// ChangedFields lists, sorted, the names whose values differ between before and after.
func ChangedFields(before, after map[string]any) []string {
	var out []string
	for k, a := range after {
		b, ok := before[k]
		if !ok || !sameValue(a, b) {
			out = append(out, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func sameValue(a, b any) bool {
	// The types a mapping produces compare directly; anything else, and the
	// cases where == and canonical JSON could disagree (invalid UTF-8, which JSON
	// replaces; floats, where it tells -0 from 0), compare as JSON. A poll compares
	// every field of every changed record, and two encodings per field were most
	// of that.
	switch x := a.(type) {
	case nil:
		if b == nil {
			return true
		}
	case string:
		if y, ok := b.(string); ok && (x == y || utf8.ValidString(x) && utf8.ValidString(y)) {
			return x == y
		}
	case int64:
		if y, ok := b.(int64); ok {
			return x == y
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Equal(y)
		}
	}
	// Values coming back from the store are JSON-decoded, so compare canonical JSON.
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// JoinKey builds a record key from its key field values; "|" cannot be confused
// because each part is escaped.
func JoinKey(parts ...string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = strings.NewReplacer(`\`, `\\`, `|`, `\|`).Replace(p)
	}
	return strings.Join(esc, "|")
}
