package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDecodeFlatMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		in   string
		flat bool // decodeFlat takes it (otherwise it declines and the caller falls back)
	}{
		{`{}`, true},
		{` { } `, true},
		{`{"code":"HS1","status":2,"paid":true,"refunded":false,"note":null}`, true},
		{`{"code": "HS1", "fee": -12.50, "big": 12345678901234567890, "e": 1e-3}`, true}, // PostgreSQL's jsonb spacing
		{`{"citizen":"Lê Thị \"Hoa\"\n","path":"a\\b\/c","emoji":"\ud83d\ude00","nul":"x\u0000y"}`, true},
		{`{"due":"2025-03-01T00:30:00.123456Z","a":"","b":"Nguyễn Văn An"}`, true},
		{`{"a":1,"a":2}`, true},
		{`{"a":-0.5e+10,"b":0,"c":-0,"d":1E7,"e":1e400}`, true}, // numbers by their form, as UseNumber reads them
		{`{"a":-}`, false},
		{`{"a":1.}`, false},
		{`{"a":1e}`, false},
		{`{"a":00}`, false},
		{`{"a":--1}`, false},
		{`{"a":1.5.2}`, false},
		{`{"nested":{"x":1}}`, false},
		{`{"list":[1,2]}`, false},
		{`{"a":1,}`, false},
		{`{"a":01x}`, false},
		{`{"a":1} x`, false},
		{`{"a":"unterminated}`, false},
		{`[1]`, false},
		{`{"a":tru}`, false},
	}
	for _, tt := range tests {
		got, ok := decodeFlat([]byte(tt.in))
		if ok != tt.flat {
			t.Errorf("decodeFlat(%s) ok = %v, want %v", tt.in, ok, tt.flat)
			continue
		}
		if !ok {
			continue
		}
		var want map[string]any
		if err := decodeJSON([]byte(tt.in), &want); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decodeFlat(%s) = %#v, want %#v", tt.in, got, want)
		}
	}
}

func TestDecodeFlatArray(t *testing.T) {
	id, vals, ok := decodeFlatArray([]byte(`[123456789012, "a", 2, null, true, "Lê \"b\""]`))
	if !ok || id != 123456789012 || !reflect.DeepEqual(vals, []any{"a", json.Number("2"), nil, true, `Lê "b"`}) {
		t.Errorf("decodeFlatArray = %d %#v %v", id, vals, ok)
	}
	for _, in := range []string{`["x", 1]`, `[1, [2]]`, `[1, {}]`, `[1,`, `{"a":1}`, `[1.5, 2]`} {
		if _, _, ok := decodeFlatArray([]byte(in)); ok {
			t.Errorf("decodeFlatArray(%s) accepted", in)
		}
	}
}
