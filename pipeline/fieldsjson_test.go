package pipeline

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestAppendFieldsJSONDecodesLikeEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 28, 1, 2, 3, 456789000, time.UTC)
	cases := []map[string]any{
		nil,
		{},
		{"code": "HS-1", "status": int64(9), "fee": 150000.5, "online": true, "due": at, "phone": nil},
		{"text": "Hồ sơ \"đặc biệt\"\n\tcó \\ và \x01 và <b>&</b> \u2028", "bad": "a\xffb", "big": int64(math.MaxInt64), "tiny": 1e-9, "huge": 1e21},
	}
	for _, fields := range cases {
		got, err := AppendFieldsJSON(nil, fields, nil)
		if err != nil {
			t.Fatalf("%v: %v", fields, err)
		}
		want, _ := json.Marshal(fields)
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s is not JSON: %v", got, err)
		}
		json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	if _, err := AppendFieldsJSON(nil, map[string]any{"x": math.NaN()}, nil); err == nil {
		t.Error("NaN was encoded")
	}
}

func FuzzAppendFieldsJSON(f *testing.F) {
	f.Add("Nguyễn Văn Đức", int64(3), 1.5)
	f.Fuzz(func(t *testing.T, s string, n int64, x float64) {
		fields := map[string]any{"s": s, s: n, "x": x}
		got, err := AppendFieldsJSON(nil, fields, nil)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			if err == nil {
				t.Fatal("NaN/Inf encoded")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(fields)
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%q is not JSON: %v", got, err)
		}
		json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("got %s want %s", got, want)
		}
	})
}
