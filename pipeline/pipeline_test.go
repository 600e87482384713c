package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHashIsCanonicalAndTyped(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.FixedZone("ICT", 7*3600))
	a := Record{Fields: map[string]any{"status": int64(9), "name": "Đức", "due": at, "fee": 8.75, "ok": true, "none": nil}}
	b := Record{Fields: map[string]any{"none": nil, "ok": true, "fee": 8.75, "due": at.UTC(), "name": "Đức", "status": int64(9)},
		Sorted: []string{"due", "fee", "name", "none", "ok", "status"}}
	if a.Hash() != b.Hash() {
		t.Fatal("the same content hashed differently (key order, zone of an instant, pre-sorted keys)")
	}
	for name, change := range map[string]func(m map[string]any){
		"int vs text":  func(m map[string]any) { m["status"] = "9" },
		"value":        func(m map[string]any) { m["status"] = int64(10) },
		"nil vs empty": func(m map[string]any) { m["none"] = "" },
		"instant":      func(m map[string]any) { m["due"] = at.Add(time.Second) },
		"new field":    func(m map[string]any) { m["x"] = nil },
		"key boundary": func(m map[string]any) { delete(m, "name"); m["nam"] = "eĐức" },
	} {
		c := Record{Fields: map[string]any{}}
		for k, v := range a.Fields {
			c.Fields[k] = v
		}
		change(c.Fields)
		if c.Hash() == a.Hash() {
			t.Errorf("%s: different content hashed the same", name)
		}
	}
}

func TestDiffAndEventIDs(t *testing.T) {
	at := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	rec := Record{Entity: "dossier", Key: "A1", Agency: "UBND", Fields: map[string]any{"status": int64(4)}}
	created := Diff("motcua", nil, rec, rec.Hash(), true, at)
	if created.Type != EventCreated || created.Version != 1 || !created.Snapshot || created.Before != nil {
		t.Fatalf("created = %+v", created)
	}
	prior := &Prior{Hash: rec.Hash(), Version: 1, Fields: rec.Fields}
	if ev := Diff("motcua", prior, rec, rec.Hash(), false, at); ev != nil {
		t.Fatalf("unchanged record produced %+v", ev)
	}
	next := Record{Entity: "dossier", Key: "A1", Fields: map[string]any{"status": int64(9), "note": "x"}}
	upd := Diff("motcua", prior, next, next.Hash(), false, at)
	if upd.Type != EventUpdated || upd.Version != 2 || fmt.Sprint(upd.Changed) != "[note status]" {
		t.Fatalf("updated = %+v", upd)
	}
	if upd.ID != EventID("motcua", "dossier", "A1", 2, EventUpdated, next.Hash()) || upd.ID == created.ID || len(upd.ID) != 32 {
		t.Fatalf("event id %q is not the deterministic 32-hex id", upd.ID)
	}
	// A store that lost its tail counts version 2 again, for other content: the id
	// must differ, or a deduplicating sink drops the real change.
	other := Record{Entity: "dossier", Key: "A1", Fields: map[string]any{"status": int64(7), "note": "khác"}}
	if again := Diff("motcua", prior, other, other.Hash(), false, at); again.Version != 2 || again.ID == upd.ID {
		t.Fatalf("version 2 of other content got id %s, the same as %s", again.ID, upd.ID)
	}
	gone := &Prior{Hash: rec.Hash(), Version: 5, Fields: rec.Fields, Deleted: true}
	if back := Diff("motcua", gone, rec, rec.Hash(), false, at); back.Type != EventCreated || back.Version != 6 {
		t.Fatalf("a deleted record coming back = %+v, want created at version 6", back)
	}
}

func TestErrorClasses(t *testing.T) {
	base := errors.New("HTTP 422")
	perm := fmt.Errorf("webhook: %w", Permanent(base))
	if !IsPermanent(perm) || !errors.Is(perm, base) || IsPermanent(base) || Permanent(nil) != nil {
		t.Fatal("Permanent does not classify or unwrap")
	}
	ra := fmt.Errorf("zalo: %w", RetryAfter(errors.New("-32 rate limit"), time.Minute))
	if d, ok := RetryAfterOf(ra); !ok || d != time.Minute || IsPermanent(ra) {
		t.Fatalf("RetryAfterOf = %v, %v", d, ok)
	}
	if _, ok := RetryAfterOf(base); ok {
		t.Fatal("a plain error carries no Retry-After")
	}
}

func TestDetailsStayOutOfLogText(t *testing.T) {
	body := `{"error":"bad phone 0912345678 for Nguyễn Văn An"}`
	err := fmt.Errorf("webhook %q: %w", "ioc", Permanent(WithDetail(errors.New("HTTP 422"), body)))
	if !strings.Contains(err.Error(), body) {
		t.Fatalf("the stored reason lost the receiver's answer: %q", err)
	}
	if got := LogText(err); strings.Contains(got, "0912345678") || got != `webhook "ioc": HTTP 422` {
		t.Fatalf("LogText = %q", got)
	}
	if !IsPermanent(err) || WithDetail(nil, "x") != nil || LogText(nil) != "" {
		t.Fatal("WithDetail changed the error's class or nil handling")
	}
}

func TestRuleEventIDDerivesFromTheChangeID(t *testing.T) {
	sum := sha256.Sum256([]byte("0123abcd\x00rule:dossier.result_ready"))
	if got, want := RuleEventID("0123abcd", "dossier.result_ready"), hex.EncodeToString(sum[:16]); got != want {
		t.Fatalf("RuleEventID = %s, want %s", got, want)
	}
	a, b := RuleEventID("change-1", "r"), RuleEventID("change-2", "r")
	if a == b || len(a) != 32 || RuleEventID("change-1", "s") == a {
		t.Fatalf("rule event ids do not follow the change id and rule name: %s %s", a, b)
	}
}

// EventID hashes its values each followed by a zero byte: ids stored by earlier
// versions must come out the same. IsEventID agrees with it.
func TestEventIDIsStableAndChecked(t *testing.T) {
	long := strings.Repeat("Nguyễn Văn Đức ", 40) // past the stack buffer
	for _, c := range [][6]string{
		{"motcua", "dossier", "A1", "1", string(EventCreated), "abc"},
		{"", "", "", "0", "", ""},
		{"src", "d", long, "-7", string(EventUpdated), long},
	} {
		v, _ := strconv.ParseInt(c[3], 10, 64)
		h := sha256.New()
		for _, s := range c {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		want := hex.EncodeToString(h.Sum(nil)[:16])
		got := EventID(c[0], c[1], c[2], v, c[4], c[5])
		if got != want {
			t.Errorf("EventID%q = %s, want %s", c, got, want)
		}
		if !IsEventID(want, c[0], c[1], c[2], v, c[4], c[5]) {
			t.Errorf("IsEventID(%s, %q) = false", want, c)
		}
		if IsEventID(want, c[0], c[1], c[2], v+1, c[4], c[5]) || IsEventID(want[:31], c[0], c[1], c[2], v, c[4], c[5]) {
			t.Errorf("IsEventID accepts %s for another version or a cut id", want)
		}
	}
}
