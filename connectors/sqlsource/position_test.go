package sqlsource

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValuesRoundTripWithTheirDriverType(t *testing.T) {
	ict := time.FixedZone("", 7*3600)
	tests := []struct {
		name string
		in   any
		want any
		enc  value
	}{
		{"zone-less time keeps its wall clock", time.Date(2025, 3, 10, 8, 59, 0, 123456700, time.UTC), time.Date(2025, 3, 10, 8, 59, 0, 123456700, time.UTC), value{"time", "2025-03-10T08:59:00.1234567Z"}},
		{"zoned time keeps its offset", time.Date(2025, 3, 10, 8, 59, 0, 0, ict), time.Date(2025, 3, 10, 8, 59, 0, 0, ict), value{"time", "2025-03-10T08:59:00+07:00"}},
		{"int64", int64(-42), int64(-42), value{"int", "-42"}},
		{"int64 beyond float precision", int64(1<<62 + 1), int64(1<<62 + 1), value{"int", "4611686018427387905"}},
		{"int32 widens", int32(7), int64(7), value{"int", "7"}},
		{"string", "HS-000123", "HS-000123", value{"string", "HS-000123"}},
		{"rowversion", []byte{0, 0, 0, 0, 0, 0, 0x07, 0xd1}, []byte{0, 0, 0, 0, 0, 0, 0x07, 0xd1}, value{"bytes", "00000000000007d1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := encodeValue(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if enc != tt.enc {
				t.Fatalf("encoded %+v, want %+v", enc, tt.enc)
			}
			got, err := enc.decode()
			if err != nil {
				t.Fatal(err)
			}
			if gt, ok := got.(time.Time); ok {
				wt := tt.want.(time.Time)
				_, go1 := gt.Zone()
				_, wo := wt.Zone()
				if !gt.Equal(wt) || go1 != wo {
					t.Fatalf("decoded %v, want %v", gt, wt)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestValuesThatCannotBeACursorAreRefused(t *testing.T) {
	for _, v := range []any{nil, 1.5, true, struct{}{}, uint64(1 << 63)} {
		if _, err := encodeValue(v); err == nil {
			t.Errorf("encodeValue(%#v) succeeded, want an error", v)
		}
	}
}

func TestDecodePositionRejectsDamage(t *testing.T) {
	tests := map[string]string{
		"not json":      `{"v":1,`,
		"other version": `{"v":2}`,
		"bad time":      `{"v":1,"after":{"cursor":{"type":"time","value":"yesterday"},"key":{"type":"int","value":"1"}}}`,
		"bad type":      `{"v":1,"from":{"type":"decimal","value":"1.5"}}`,
		"bad float":     `{"v":1,"after":{"cursor":{"type":"float","value":"x"},"key":{"type":"int","value":"1"}}}`,
		"bad swept key": `{"v":1,"swept":{"type":"int","value":"one"}}`,
	}
	for name, in := range tests {
		if _, err := decodePosition([]byte(in)); err == nil {
			t.Errorf("%s: decoded %s without error", name, in)
		}
	}
	if p, err := decodePosition(nil); err != nil || p.After != nil || p.From != nil || p.High != nil {
		t.Errorf("nil position: got %+v, %v; want the start", p, err)
	}
}

func tv(s string) value { return value{"time", s} }
func iv(s string) value { return value{"int", s} }

func TestRewind(t *testing.T) {
	high := &point{tv("2025-03-10T08:58:00Z"), iv("9")}
	tests := []struct {
		name     string
		in       position
		lookback time.Duration
		ids      int64
		want     position
		moved    bool
	}{
		{
			name: "re-reads from high minus lookback, keeping the mark",
			in:   position{After: high, High: high}, lookback: 10 * time.Minute,
			want: position{From: ptr(tv("2025-03-10T08:48:00Z")), High: high}, moved: true,
		},
		{
			name: "a read point inside the window moves back to the window start",
			in:   position{After: &point{tv("2025-03-10T08:50:00Z"), iv("3")}, High: high}, lookback: 10 * time.Minute,
			want: position{From: ptr(tv("2025-03-10T08:48:00Z")), High: high}, moved: true,
		},
		{
			name: "never forward: a read point before the window stays",
			in:   position{After: &point{tv("2025-03-10T08:40:00Z"), iv("3")}, High: high}, lookback: 10 * time.Minute,
			want: position{After: &point{tv("2025-03-10T08:40:00Z"), iv("3")}, High: high},
		},
		{
			name: "zone offset of the stored value is kept",
			in:   position{After: &point{tv("2025-03-10T15:58:00+07:00"), iv("9")}, High: &point{tv("2025-03-10T15:58:00+07:00"), iv("9")}}, lookback: time.Hour,
			want: position{From: ptr(tv("2025-03-10T14:58:00+07:00")), High: &point{tv("2025-03-10T15:58:00+07:00"), iv("9")}}, moved: true,
		},
		{
			name: "lookback 0",
			in:   position{After: high, High: high},
			want: position{After: high, High: high},
		},
		{
			name: "integer cursor ignores the time lookback",
			in:   position{After: &point{iv("100"), iv("1")}, High: &point{iv("100"), iv("1")}}, lookback: time.Minute,
			want: position{After: &point{iv("100"), iv("1")}, High: &point{iv("100"), iv("1")}},
		},
		{
			name: "integer cursor re-reads from high minus ids, inclusive",
			in:   position{After: &point{iv("5000"), iv("1")}, High: &point{iv("5000"), iv("1")}}, ids: 1000,
			want: position{From: ptr(iv("4000")), High: &point{iv("5000"), iv("1")}}, moved: true,
		},
		{
			name: "integer window stops at the smallest integer",
			in:   position{After: &point{iv("-9223372036854775000"), iv("1")}, High: &point{iv("-9223372036854775000"), iv("1")}}, ids: 1000,
			want: position{From: ptr(iv("-9223372036854775808")), High: &point{iv("-9223372036854775000"), iv("1")}}, moved: true,
		},
		{
			name: "integer read point before the window stays",
			in:   position{After: &point{iv("3000"), iv("1")}, High: &point{iv("5000"), iv("1")}}, ids: 1000,
			want: position{After: &point{iv("3000"), iv("1")}, High: &point{iv("5000"), iv("1")}},
		},
		{
			name: "a poison read point of another type does not keep the window from moving",
			in:   position{After: &point{value{"string", "abc"}, iv("1")}, High: &point{iv("5000"), iv("1")}}, ids: 1000,
			want: position{From: ptr(iv("4000")), High: &point{iv("5000"), iv("1")}}, moved: true,
		},
		{
			name: "the sweep for poison cursors survives a rewind",
			in:   position{After: high, High: high, Swept: ptr(iv("77"))}, lookback: 10 * time.Minute,
			want: position{From: ptr(tv("2025-03-10T08:48:00Z")), High: high, Swept: ptr(iv("77"))}, moved: true,
		},
		{
			name: "nothing read yet",
			in:   position{}, lookback: time.Minute,
			want: position{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, moved := tt.in.rewind(tt.lookback, tt.ids)
			if moved != tt.moved || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("rewind = %s (moved %v), want %s (moved %v)", js(got), moved, js(tt.want), tt.moved)
			}
		})
	}
}

// A rejected row's place holds values a good row's cannot; each binds back as the
// driver returned it.
func TestPlaceValuesRoundTrip(t *testing.T) {
	for _, in := range []any{nil, 1.5, 0.1, -2e-308, true, false, int64(7), "abc"} {
		enc, err := placeValue(in)
		if err != nil {
			t.Fatalf("placeValue(%#v): %v", in, err)
		}
		got, err := enc.decode()
		if err != nil || !reflect.DeepEqual(got, in) && !(in == int64(7) && got == int64(7)) {
			t.Fatalf("placeValue(%#v) decoded to %#v, %v", in, got, err)
		}
	}
}

func TestSourceRewindKeepsStoredBytesWhenNothingMoves(t *testing.T) {
	s := &Source{opts: Options{}}
	stored := []byte(`{"v":1,"after":{"cursor":{"type":"time","value":"2025-03-10T08:58:00Z"},"key":{"type":"int","value":"9"}}}`)
	if got := s.Rewind(stored); !bytes.Equal(got, stored) {
		t.Fatalf("Rewind with lookback 0 = %s, want the stored bytes", got)
	}
	if got := s.Rewind([]byte("garbage")); string(got) != "garbage" {
		t.Fatalf("Rewind of a damaged position = %s, want it unchanged for ReadBatch to report", got)
	}
}

func TestHigherKeepsTheGreatestPoint(t *testing.T) {
	a := point{tv("2025-03-10T08:58:00Z"), iv("9")}
	b := point{tv("2025-03-10T08:58:00Z"), iv("10")}
	c := point{tv("2025-03-10T08:57:00Z"), iv("99")}
	if got := higher(&a, b); *got != b {
		t.Errorf("same cursor, greater key: got %+v", *got)
	}
	if got := higher(&b, c); *got != b {
		t.Errorf("re-reading an older row must keep the mark: got %+v", *got)
	}
	if got := higher(nil, c); *got != c {
		t.Errorf("first row: got %+v", *got)
	}
}

// A batch raises its mark with highWater, which keeps the mark's decoded values;
// row after row it must end where comparing freshly decoded values ends, over
// equal cursors, keys of another type, values that do not decode and older rows.
func TestHighWaterKeepsWhatHigherKept(t *testing.T) {
	reference := func(high *point, last point) *point {
		if high == nil {
			return &last
		}
		c, ok := compareValues(high.Cursor, last.Cursor)
		if ok && c == 0 {
			c, ok = compareValues(high.Key, last.Key)
		}
		if ok && c > 0 {
			return high
		}
		return &last
	}
	rows := []point{
		{tv("2025-03-10T08:58:00Z"), iv("9")},
		{tv("2025-03-10T08:58:00Z"), iv("10")},
		{tv("2025-03-10T08:57:00Z"), iv("99")},
		{tv("2025-03-10T15:58:00+07:00"), iv("11")}, // the same instant written in another zone
		{tv("2025-03-10T08:58:00Z"), value{"string", "10"}},
		{tv("2025-03-10T08:59:00Z"), iv("1")},
		{value{"time", "not a time"}, iv("2")},
		{tv("2025-03-10T08:59:00Z"), iv("3")},
		{value{"int", "7"}, iv("4")},
		{tv("2025-03-10T08:59:00Z"), value{"int", "x"}},
		{tv("2025-03-10T08:59:00Z"), iv("5")},
		{tv("2025-03-10T09:00:00.5Z"), value{"bytes", "0a"}},
		{tv("2025-03-10T09:00:00.5Z"), value{"bytes", "09"}},
		{tv("2025-03-10T08:00:00Z"), iv("1")},
	}
	for _, start := range []*point{nil, {tv("2025-03-10T08:58:30Z"), iv("1")}} {
		want := start
		h := newHighWater(start)
		for i, r := range rows {
			want = reference(want, r)
			h.add(r)
			if got := h.point(); got == nil || *got != *want {
				t.Fatalf("start %v, after row %d: mark %+v, want %+v", start, i, got, *want)
			}
		}
	}
	if h := newHighWater(nil); h.point() != nil {
		t.Errorf("no mark and no rows: got %+v", *h.point())
	}
}

func TestPositionJSONShape(t *testing.T) {
	p := position{After: &point{tv("2025-03-10T08:59:00Z"), iv("42")}, High: &point{tv("2025-03-10T08:59:00Z"), iv("42")}}
	b, err := p.encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"after":{"cursor":{"type":"time","value":"2025-03-10T08:59:00Z"},"key":{"type":"int","value":"42"}},"high":{"cursor":{"type":"time","value":"2025-03-10T08:59:00Z"},"key":{"type":"int","value":"42"}}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func ptr[T any](v T) *T { return &v }

func js(v any) string {
	b, _ := json.Marshal(v)
	return strings.TrimSpace(string(b))
}
