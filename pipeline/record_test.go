package pipeline

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"
)

// The direct comparisons of sameValue must say what comparing canonical JSON says.
func TestSameValueAgreesWithJSON(t *testing.T) {
	at := time.Date(2026, 11, 28, 8, 30, 0, 0, time.UTC)
	ict := at.In(time.FixedZone("ICT", 7*3600))
	values := []any{
		nil, "", "Nguyễn Văn An", "Nguyen Van An", "1", "\xff", "\xfe", "\ufffd", "a\xffb", "<b>", `\u003cb\u003e`,
		int64(0), int64(1), int64(-1), int64(math.MaxInt64),
		0.0, math.Copysign(0, -1), 1.0, 8.75,
		true, false,
		at, ict, at.Add(time.Nanosecond),
		json.Number("1"), json.Number("1.0"), at.Format(time.RFC3339Nano),
	}
	for _, a := range values {
		for _, b := range values {
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			want := string(ja) == string(jb)
			if ta, ok := a.(time.Time); ok {
				if tb, ok := b.(time.Time); ok {
					want = ta.Equal(tb)
				}
			}
			if got := sameValue(a, b); got != want {
				t.Errorf("sameValue(%#v, %#v) = %v, canonical JSON says %v", a, b, got, want)
			}
		}
	}
}

func TestChangedFieldsNamesEveryDifference(t *testing.T) {
	at := time.Date(2026, 11, 28, 8, 30, 0, 0, time.UTC)
	before := map[string]any{"status": int64(2), "citizen": "Trần Thị Bình", "due": at, "gone": "x", "fee": 8.75, "online": true}
	after := map[string]any{"status": int64(3), "citizen": "Trần Thị Bình", "due": at.In(time.FixedZone("ICT", 7*3600)), "fee": 8.75, "online": false, "new": nil}
	got := ChangedFields(before, after)
	want := []string{"gone", "new", "online", "status"}
	if !slices.Equal(got, want) {
		t.Fatalf("ChangedFields = %v, want %v", got, want)
	}
}

func BenchmarkChangedFields(b *testing.B) {
	at := time.Date(2026, 11, 28, 8, 30, 0, 0, time.UTC)
	before := map[string]any{
		"code": "G22.45-261128-0001", "procedure": "Cấp giấy phép xây dựng", "citizen": "Trần Thị Bình", "phone": "84912345678",
		"unit": "UBND XÃ AN BÌNH", "channel": "trực tuyến", "online": true, "status": int64(2),
		"received_at": at, "due_at": at.Add(72 * time.Hour), "finished_at": nil, "updated_at": at,
	}
	after := map[string]any{}
	for k, v := range before {
		after[k] = v
	}
	after["status"], after["finished_at"] = int64(3), at.Add(24*time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		ChangedFields(before, after)
	}
}
