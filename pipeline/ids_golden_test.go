package pipeline

import (
	"strings"
	"testing"
	"time"
)

// The content hash and the event ids are stored and delivered: a store compares
// new hashes with those it holds, and sinks deduplicate by id. A faster way to
// compute either must give the same values, which these pin (computed by the
// streaming implementations of session 5).
func TestHashAndEventIDAreStable(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 123000000, time.FixedZone("ICT", 7*3600))
	rec := Record{Fields: map[string]any{"status": int64(9), "name": "Nguyễn Văn Đức", "due": at, "fee": 8.75, "ok": true, "none": nil}}
	long := Record{Fields: map[string]any{"a": strings.Repeat("Đăng ký biến động ", 40), "b": int64(-1), "c": 1e21}}
	for _, tt := range []struct{ name, got, want string }{
		{"hash", rec.Hash(), "0a73a59552a6ea967d483894483b0b51"},
		{"hash of a record longer than the buffer", long.Hash(), "a63376a1463c4fae636626efb433d638"},
		{"hash of no fields", Record{Fields: map[string]any{}}.Hash(), "e3b0c44298fc1c149afbf4c8996fb924"},
		{"event id", EventID("motcua", "dossier", "000.00.12.H45-261120-0001", 7, EventUpdated, rec.Hash()), "e227ebd926409231c93e26cea1ae0382"},
		{"event id of long parts", EventID(strings.Repeat("s", 300), "dossier", strings.Repeat("k|", 100), -3, EventCreated, ""), "139ba223e37834bac235f00338dffe04"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}
