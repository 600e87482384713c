package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Row is one raw row as a source read it: column name to driver value.
type Row map[string]any

// Record is a normalised row: typed fields keyed by the mapping's field names.
// Field values are nil, string, int64, float64, bool or time.Time (always UTC).
type Record struct {
	Entity string
	Key    string
	Agency string
	Fields map[string]any
}

// Hash is the content hash that change detection compares; it covers the fields only,
// so a record re-read without change hashes the same.
func (r Record) Hash() string {
	b, err := json.Marshal(r.Fields) // map keys are sorted by encoding/json
	if err != nil {
		// Fields hold only JSON-safe types by construction; fall back to fmt so a
		// surprise value still hashes deterministically instead of panicking.
		b = []byte(fmt.Sprintf("%v", r.Fields))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
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
	if ta, ok := a.(time.Time); ok {
		if tb, ok := b.(time.Time); ok {
			return ta.Equal(tb)
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
