package store

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// A feed event's fields as JSON, made from the stored values' text, are what
// encoding the decoded fields gives, byte for byte, whatever the values: text
// with escapes, U+2028, Vietnamese and control characters, numbers of every
// form, booleans, null, times.
func TestFeedFieldsJSONIsTheEncodingOfTheDecodedFields(t *testing.T) {
	s := &sqlStore{}
	at := time.Date(2026, 11, 28, 7, 30, 0, 123000000, time.FixedZone("ICT", 7*3600))
	records := []map[string]any{
		{"citizen": "Nguyễn Văn Đức", "status": int64(2), "phone": "84912345678", "at": at},
		{"quote": `say "hi"\now`, "ls": "a\u2028b\u2029c", "ctl": "x\x01y\tz\n", "dash": "Cần Giuộc – Long An", "bad": "a\xffb"},
		{"f": 1.5e300, "g": -0.000125, "h": float64(3), "i": int64(math.MinInt64), "j": int64(math.MaxInt64)},
		{"t": true, "f": false, "n": nil, "empty": ""},
		{"one": "x"},
		{"<html>": "&<>", "k\"ey": "v", "ké": "ü"},
	}
	var keys feedKeys
	for _, rec := range records {
		stored, _, err := s.encodeFields(rec)
		if err != nil {
			t.Fatal(err)
		}
		want, ok, err := s.decodeCached(stored)
		if err != nil || !ok {
			t.Fatalf("decodeCached(%s) = %v, %v", stored, ok, err)
		}
		var arena []byte
		got, obj, ok, err := s.decodeFeedFields(stored, &keys, &arena, true)
		if err != nil || !ok {
			t.Fatalf("decodeFeedFields(%s) = %v, %v", stored, ok, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decodeFeedFields(%s) fields = %v, want %v", stored, got, want)
		}
		enc, err := pipeline.AppendFieldsJSON(nil, want, nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(obj) != string(enc) {
			t.Errorf("fields of %s as JSON:\n got  %s\n want %s", stored, obj, enc)
		}
		// For a sink that reads JSON only: the same object, and no map.
		m, only, ok, err := s.decodeFeedFields(stored, &keys, &arena, false)
		if err != nil || !ok || m != nil {
			t.Fatalf("decodeFeedFields(%s) without the map = %v, %v, %v", stored, m, ok, err)
		}
		if string(only) != string(enc) {
			t.Errorf("fields of %s as JSON alone:\n got  %s\n want %s", stored, only, enc)
		}
	}
}

// A number out of float64's range is refused by the encoder: the fields come
// without their JSON, so that a sink's encoding fails as it always did; rows of
// another shape, malformed or not positional are left to the other decoders.
func TestFeedFieldsJSONLeavesOutWhatItCannotCopy(t *testing.T) {
	s := &sqlStore{}
	stored, id, err := s.encodeFields(map[string]any{"a": "x", "b": int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	var keys feedKeys
	var arena []byte
	huge := []byte(`[` + jsonInt(id) + `,"x",1e999]`)
	m, obj, ok, err := s.decodeFeedFields(huge, &keys, &arena, true)
	if err != nil || !ok || obj != nil || m["b"] != json.Number("1e999") {
		t.Errorf("huge number: %v %q %v %v", m, obj, ok, err)
	}
	if m, obj, ok, err := s.decodeFeedFields(huge, &keys, &arena, false); err != nil || ok || obj != nil || m != nil {
		t.Errorf("huge number without the map: %v %q %v %v; want left to the map's decoders", m, obj, ok, err)
	}
	if _, err := pipeline.AppendFieldsJSON(nil, m, nil); err == nil {
		t.Errorf("the encoder accepts 1e999: the copy would change what sinks get")
	}
	for _, withMap := range []bool{true, false} {
		for _, b := range []string{`{"a":"x"}`, `[12345,"x",1]`, `[` + jsonInt(id) + `,"x"`, `[` + jsonInt(id) + `,"x",{"n":1}]`,
			`[` + jsonInt(id) + `,"x",1]x`, "[" + jsonInt(id) + ",\"x\x01\",1]", "[" + jsonInt(id) + ",\"\xff\",1]", `[` + jsonInt(id) + `,"x",01]`,
			`[` + jsonInt(id) + `,"x",tru]`, `[` + jsonInt(id) + `,"x\q",1]`} {
			if _, _, ok, err := s.decodeFeedFields([]byte(b), &keys, &arena, withMap); ok || err != nil {
				t.Errorf("decodeFeedFields(%s, map %v) = %v, %v; want left to the other decoders", b, withMap, ok, err)
			}
		}
		if _, _, _, err := s.decodeFeedFields([]byte(`[`+jsonInt(id)+`,"x",1,2]`), &keys, &arena, withMap); err == nil {
			t.Errorf("more values than names (map %v): no error", withMap)
		}
		if _, _, _, err := s.decodeFeedFields([]byte(`[`+jsonInt(id)+`,"x"]`), &keys, &arena, withMap); err == nil {
			t.Errorf("fewer values than names (map %v): no error", withMap)
		}
	}
	if m, obj, ok, err := s.decodeFeedFields(stored, &keys, &arena, true); !ok || err != nil || string(obj) != `{"a":"x","b":1}` || len(m) != 2 {
		t.Errorf("decodeFeedFields(%s) = %v %s %v %v", stored, m, obj, ok, err)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
