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

// The key may be a citizen identifier (a CCCD number): a poison row's reason shows
// it masked, enough to find the row with the column it names.
func TestPoisonRowReasonNamesTheColumnAndMasksTheKey(t *testing.T) {
	text := layout{cols: []column{{name: "SoCCCD", kind: kindText}, {name: "Diem", kind: kindText}}, key: 0, cursor: 1}
	timed := layout{cols: []column{{name: "SoCCCD", kind: kindText}, {name: "NgayCapNhat", kind: kindTextTime}}, key: 0, cursor: 1}
	integer := layout{cols: []column{{name: "SoCCCD", kind: kindText}, {name: "PhienBan", kind: kindText, integer: true}}, key: 0, cursor: 1}
	at := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		l      layout
		vals   []any
		want   string
		atType [2]string // cursor, key types of the place
	}{
		{"float cursor", text, []any{"079201001234", 8.5}, `cursor column "Diem" holds a floating-point value (row with key *********234)`, [2]string{"float", "string"}},
		{"NULL cursor", text, []any{"079201001234", nil}, `cursor column "Diem" is NULL (row with key *********234)`, [2]string{"null", "string"}},
		{"NULL key", timed, []any{nil, at}, `key column "SoCCCD" is NULL (row with cursor 2025-03-10 09:00:00)`, [2]string{"time", "null"}},
		{"boolean key", timed, []any{true, at}, `key column "SoCCCD" holds a boolean value`, [2]string{"time", "bool"}},
		{"unparseable SQLite time", timed, []any{"079201001234", "2025-13-45 99:00"}, `cursor column "NgayCapNhat" holds "2025-13-45 99:00", which is not a time (row with key *********234): SQLite time cursors must be text`, [2]string{"string", "string"}},
		{"text in an integer cursor", integer, []any{"079201001234", "abc"}, `cursor column "PhienBan" holds "abc", which is not an integer (row with key *********234)`, [2]string{"string", "string"}},
		{"both", text, []any{nil, nil}, `key column "SoCCCD" is NULL (row with cursor NULL): the key must be unique and NOT NULL; cursor column "Diem" is NULL (row with key NULL)`, [2]string{"null", "null"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, err := tt.l.place(tt.vals)
			if err != nil {
				t.Fatal(err)
			}
			if bad == nil || !strings.Contains(bad.Error(), tt.want) || strings.Contains(bad.Error(), "079201001234") {
				t.Fatalf("reason %v, want one containing %q and no unmasked key", bad, tt.want)
			}
			if got.Cursor.Type != tt.atType[0] || got.Key.Type != tt.atType[1] {
				t.Fatalf("place %+v, want cursor %s and key %s so reading can go on after it", got, tt.atType[0], tt.atType[1])
			}
		})
	}
	if _, bad, err := timed.place([]any{"079201001234", at}); bad != nil || err != nil {
		t.Fatalf("a good row: bad %v, err %v", bad, err)
	}
}
