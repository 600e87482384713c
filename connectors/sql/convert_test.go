package sqlsource

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEmitValue(t *testing.T) {
	ict := time.FixedZone("ICT", 7*3600)
	wall := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC) // 09:00 as a driver returns a zone-less value
	guid := []byte{0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	tests := []struct {
		name string
		in   any
		kind colKind
		want any
	}{
		{"text bytes become a string", []byte("12.50"), kindText, "12.50"},
		{"binary stays bytes", []byte{0, 1, 2}, kindBinary, []byte{0, 1, 2}},
		{"uniqueidentifier in canonical form", guid, kindGUID, "01234567-89AB-CDEF-0123-456789ABCDEF"},
		{"zone-less time is wall clock in the source zone", wall, kindLocalTime, time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC)},
		{"zone-aware time is the same instant in UTC", time.Date(2025, 3, 10, 9, 0, 0, 0, ict), kindAwareTime, time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC)},
		{"sqlite text without offset is wall clock", wall, kindTextTime, time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC)},
		{"sqlite text with an offset is an instant", time.Date(2025, 3, 10, 9, 0, 0, 0, time.FixedZone("", 3600)), kindTextTime, time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC)},
		{"time of day", time.Date(0, 1, 1, 7, 30, 0, 0, time.UTC), kindTimeOfDay, "07:30:00"},
		{"other values pass", int64(5), kindText, int64(5)},
		{"null", nil, kindLocalTime, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := emitValue(tt.in, tt.kind, ict)
			if gt, ok := got.(time.Time); ok {
				if gt.Location() != time.UTC || !gt.Equal(tt.want.(time.Time)) {
					t.Fatalf("got %v (%s), want %v in UTC", gt, gt.Location(), tt.want)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestCursorKeepsTheRawTime(t *testing.T) {
	wall := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	if got := keyValue(wall, kindLocalTime); got != wall {
		t.Fatalf("keyValue changed a zone-less time: %v", got)
	}
	if got := keyValue([]byte("123.45"), kindText); got != "123.45" {
		t.Fatalf("numeric key = %#v, want text", got)
	}
}

// The key may be a citizen identifier (a CCCD number): the error shows it masked,
// enough to find the row with the cursor column it names.
func TestRowWithUnencodableCursorNamesItsMaskedKey(t *testing.T) {
	l := layout{cols: []column{{name: "SoCCCD", kind: kindText}, {name: "Diem", kind: kindText}}, key: 0, cursor: 1}
	_, err := l.point([]any{"079201001234", 8.5})
	if err == nil || !strings.Contains(err.Error(), `row with key *********234: cursor column "Diem"`) || strings.Contains(err.Error(), "079201001234") {
		t.Fatalf("got %v, want an error naming the masked key", err)
	}
	_, err = l.point([]any{nil, int64(3)})
	if err == nil || !strings.Contains(err.Error(), `key column "SoCCCD": value is NULL`) {
		t.Fatalf("got %v, want an error about the NULL key", err)
	}
}
