package evnspc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// 18:30 UTC on 10 August is 01:30 on 11 August in Vietnam: the window is the
// 11th to the 15th.
func aug10Evening() time.Time { return time.Date(2026, 8, 10, 18, 30, 0, 0, time.UTC) }

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestFourteenUnitsYieldTheirSchedulesInUTC(t *testing.T) {
	s := newSite(t)
	s.set("PB0603", fixture(t, "entries.html")) // current shape, entities
	s.set("PB0604", fixture(t, "table.html"))   // older shape
	s.set("PB0611", fixture(t, "none.html"))
	src := openEVN(t, s, longAn, aug10Evening, nil)

	rows, batches, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		unit, name, area, reason string
		start, end               time.Time
	}
	wants := []want{
		{"PB0603", "Điện lực Đức Hòa", "Ấp Bình Tả 1, xã Đức Hòa Đông", "Bảo trì, sửa chữa lưới điện", utc("2026-08-11T00:30:00Z"), utc("2026-08-11T04:00:00Z")},
		{"PB0603", "Điện lực Đức Hòa", "Trạm Hựu Thạnh 4; Trạm Hựu Thạnh 5", "Thi công đường dây 22kV", utc("2026-08-12T06:00:00Z"), utc("2026-08-12T10:30:00Z")},
		{"PB0603", "Điện lực Đức Hòa", "Một phần ấp Tân Hòa & ấp Tân Phú", "Đấu nối trạm biến áp", utc("2026-08-14T15:00:00Z"), utc("2026-08-14T21:00:00Z")},
		{"PB0604", "Điện lực Cần Giuộc", "Ấp Tân Điền, xã Phước Lại", "Bảo trì, sửa chữa lưới điện", utc("2026-08-11T00:00:00Z"), utc("2026-08-11T08:30:00Z")},
		{"PB0604", "Điện lực Cần Giuộc", "Khu công nghiệp Long Hậu", "Nâng cấp thiết bị", utc("2026-08-13T01:00:00Z"), utc("2026-08-13T03:00:00Z")},
	}
	if len(rows) != len(wants) {
		t.Fatalf("got %d rows, want %d: %v", len(rows), len(wants), rows)
	}
	for i, w := range wants {
		r := rows[i]
		start, _ := r[ColStart].(time.Time)
		end, _ := r[ColEnd].(time.Time)
		if r[ColUnit] != w.unit || r[ColUnitName] != w.name || r[ColArea] != w.area || r[ColReason] != w.reason ||
			!start.Equal(w.start) || start.Location() != time.UTC || !end.Equal(w.end) || end.Location() != time.UTC {
			t.Errorf("row %d = %v\nwant %+v", i, r, w)
		}
		if key := Key(w.unit, w.area, w.start); r[ColKey] != key {
			t.Errorf("row %d key %v, want %v", i, r[ColKey], key)
		}
	}
	if batches != 14 || s.pages != 1 || len(s.requests) != 14 || len(s.refused) != 0 {
		t.Fatalf("%d batches, %d session pages, %d data requests, refused %v; want 14, 1, 14, none", batches, s.pages, len(s.requests), s.refused)
	}
	for i, r := range s.requests {
		if want := longAn[i] + " 11-08-2026 15-08-2026"; r != want {
			t.Errorf("request %d: %q, want %q", i, r, want)
		}
	}
}

func TestPagesInNoKnownShapeFailThePoll(t *testing.T) {
	for name, body := range map[string]string{
		"maintenance page":     "unknown.html",
		"empty answer":         "",
		"entry without time":   `<div class="entry"><span class="where">KHU VỰC: Ấp 1</span><span class="time">THỜI GIAN: sáng mai</span></div>`,
		"table with a bad end": `<table><tr><td>11/08/2026 07:00</td><td>chiều</td><td>Ấp 1</td><td>x</td></tr></table>`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newSite(t)
			if strings.HasSuffix(body, ".html") {
				body = fixture(t, body)
			}
			s.set("PB0602", body)
			rows, _, err := readAll(t, openEVN(t, s, []string{"PB0601", "PB0602", "PB0603"}, aug10Evening, nil))
			if !errors.Is(err, ErrUnknownShape) || !strings.Contains(err.Error(), "PB0602") {
				t.Fatalf("err = %v, want ErrUnknownShape naming PB0602", err)
			}
			if len(rows) != 0 {
				t.Fatalf("rows %v before the failure; want none (PB0601 has no schedule)", rows)
			}
		})
	}
}

func TestServerErrorsAndSlowAnswersAreRetried(t *testing.T) {
	s := newSite(t)
	s.set("PB0605", fixture(t, "entries.html"))
	s.fails["PB0605"] = 1
	s.slow["PB0605"] = 1
	src := openEVN(t, s, []string{"PB0605"}, aug10Evening, func(o *Options) { o.HTTP.Timeout = cfgDur(100 * time.Millisecond) })
	rows, _, err := readAll(t, src)
	if err != nil || len(rows) != 3 {
		t.Fatalf("rows %d, err %v; want the 3 schedules after a 503 and a timeout", len(rows), err)
	}
}

func TestTimeoutsAndServerErrorsBeyondRetriesFailThePoll(t *testing.T) {
	t.Run("timeouts", func(t *testing.T) {
		s := newSite(t)
		s.slow["PB0601"] = 10
		src := openEVN(t, s, []string{"PB0601"}, aug10Evening, func(o *Options) {
			o.HTTP.Timeout, o.HTTP.Retries = cfgDur(50*time.Millisecond), 1
		})
		if _, _, err := readAll(t, src); err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("err = %v, want a timeout", err)
		}
	})
	t.Run("session page down", func(t *testing.T) {
		s := newSite(t)
		s.pageFails = 10
		if _, _, err := readAll(t, openEVN(t, s, longAn, aug10Evening, nil)); err == nil || !strings.Contains(err.Error(), "session page") {
			t.Fatalf("err = %v, want the session page's failure", err)
		}
		if len(s.requests) != 0 {
			t.Fatalf("%d data requests without a session", len(s.requests))
		}
	})
}

func TestParseSpanAndEntities(t *testing.T) {
	for _, c := range []struct{ in, start, end string }{
		{"THỜI GIAN: Từ 07:30:00 ngày 11/08/2026 đến 11:00:00 ngày 11/08/2026", "2026-08-11T00:30:00Z", "2026-08-11T04:00:00Z"},
		{"Từ 7:30 ngày 1/8/2026 đến 17:00 ngày 1/8/2026", "2026-08-01T00:30:00Z", "2026-08-01T10:00:00Z"},
		{"TỪ 22:00:00 NGÀY 14/08/2026 ĐẾN 04:00:00 NGÀY 15/08/2026", "2026-08-14T15:00:00Z", "2026-08-14T21:00:00Z"},
	} {
		s, e, err := parseSpan(c.in, ict)
		if err != nil || !s.Equal(utc(c.start)) || !e.Equal(utc(c.end)) {
			t.Errorf("parseSpan(%q) = %v, %v, %v; want %s, %s", c.in, s, e, err, c.start, c.end)
		}
	}
	if _, _, err := parseSpan("Từ 11:00:00 ngày 11/08/2026 đến 07:00:00 ngày 11/08/2026", ict); err == nil {
		t.Error("an end before the start was accepted")
	}
	// Escaped twice, and wrapped in a JSON string as some ASP.NET actions do.
	body := fmt.Sprintf("%q", `<div class="entry"><span class="where">KHU VỰC: &amp;#7844;p 3</span><span class="time">Từ 07:00:00 ngày 11/08/2026 đến 09:00:00 ngày 11/08/2026</span><span class="cause">LÝ DO: x</span></div>`)
	got, err := parsePage([]byte(body), ict)
	if err != nil || len(got) != 1 || got[0].Area != "Ấp 3" || got[0].Reason != "x" {
		t.Fatalf("parsePage = %+v, %v", got, err)
	}
}

func TestOptionsValidation(t *testing.T) {
	o := NewOptions()
	o.Units = []string{"PB0601", "pb0602", "PB0601"}
	o.Days = 40
	o.HTTP.Retries = 11
	var got []string
	o.Validate(func(field, format string, args ...any) { got = append(got, field+": "+fmt.Sprintf(format, args...)) })
	want := []string{
		"days: must be between 0 and 31, got 40",
		"http.retries: must be between 0 and 10, got 11",
		`units[1]: "pb0602" is not a unit code: want PB and four digits, e.g. PB0601`,
		"units[2]: PB0601 is listed twice",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("reported\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
