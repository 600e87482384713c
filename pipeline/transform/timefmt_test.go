package transform

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestGoLayout(t *testing.T) {
	tests := []struct{ in, want string }{
		{"yyyyMMddHHmmss", "20060102150405"},
		{"dd/MM/yyyy", "02/01/2006"},
		{"dd/MM/yyyy HH:mm", "02/01/2006 15:04"},
		{"dd/MM/yyyy HH:mm:ss", "02/01/2006 15:04:05"},
		{"d/M/yyyy H:m", "2/1/2006 15:4"},
		{"dd/MM/yy", "02/01/06"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "2006-01-02T15:04:05.000Z07:00"},
		{"yyyy-MM-ddTHH:mm:ss", "2006-01-02T15:04:05"}, // an unquoted T is copied
		{"yyyy-MM-dd HH:mm:ss.SSSSSSS", "2006-01-02 15:04:05.0000000"},
		{"yyyy-MM-dd HH:mm:ssXX", "2006-01-02 15:04:05Z0700"},
		{"yyyy-MM-dd HH:mm:ssZ", "2006-01-02 15:04:05Z0700"},
		{"yyyy-MM-dd HH:mm:ssX", "2006-01-02 15:04:05Z07"},
		{"hh:mm a", "03:04 PM"},
		{"EEE, dd MMM yyyy", "Mon, 02 Jan 2006"},
		{"EEEE d MMMM yyyy", "Monday 2 January 2006"},
		{"'ngày' dd 'tháng' MM 'năm' yyyy", "ngày 02 tháng 01 năm 2006"},
		{"HH'h'mm", "15h04"},
		{"dd/MM/yyyy 'o''clock'", "02/01/2006 o'clock"},
		{"'unclosed", "unclosed"},
		{"2006-01-02 15:04", "2006-01-02 15:04"}, // already Go: as is
		{"02/01/2006", "02/01/2006"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := GoLayout(tt.in); got != tt.want {
			t.Errorf("GoLayout(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseTimeReadsDefaultLayoutsInVietnamTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
	}{
		{"20241127083000", utc(2024, 11, 27, 1, 30, 0, 0)}, // national portal, 08:30 in Vietnam
		{"27/11/2024", utc(2024, 11, 26, 17, 0, 0, 0)},
		{"7/3/2024", utc(2024, 3, 6, 17, 0, 0, 0)},
		{"27/11/2024 08:30", utc(2024, 11, 27, 1, 30, 0, 0)},
		{"27/11/2024 8:30", utc(2024, 11, 27, 1, 30, 0, 0)},
		{"27/11/2024 08:30:15", utc(2024, 11, 27, 1, 30, 15, 0)},
		{"27-11-2024", utc(2024, 11, 26, 17, 0, 0, 0)},
		{"2024-11-27", utc(2024, 11, 26, 17, 0, 0, 0)},
		{"2024-11-27 08:30:00", utc(2024, 11, 27, 1, 30, 0, 0)},
		{"2024-11-27 08:30", utc(2024, 11, 27, 1, 30, 0, 0)},
		{"2024-11-27 08:30:00.123", utc(2024, 11, 27, 1, 30, 0, 123000000)},
		{"2024-11-27 08:30:00.1234567", utc(2024, 11, 27, 1, 30, 0, 123456700)}, // SQL Server datetime2
		{"2024-11-27T08:30:00", utc(2024, 11, 27, 1, 30, 0, 0)},
		{"2024-11-27T08:30", utc(2024, 11, 27, 1, 30, 0, 0)},
		{"2024-11-27T08:30:00.5", utc(2024, 11, 27, 1, 30, 0, 500000000)},
		{"2024-11-27T08:30:00Z", utc(2024, 11, 27, 8, 30, 0, 0)},
		{"2024-11-27T08:30:00.25Z", utc(2024, 11, 27, 8, 30, 0, 250000000)},
		{"2024-11-27T08:30:00+07:00", utc(2024, 11, 27, 1, 30, 0, 0)},
		{"2024-11-27T08:30:00+0700", utc(2024, 11, 27, 1, 30, 0, 0)},
		{"2024-11-27T08:30:00-05:00", utc(2024, 11, 27, 13, 30, 0, 0)},
		{"2024-11-27 08:30:00+07:00", utc(2024, 11, 27, 1, 30, 0, 0)},
		{"  27/11/2024  ", utc(2024, 11, 26, 17, 0, 0, 0)},
		{"20241127083000.5", utc(2024, 11, 27, 1, 30, 0, 500000000)},
		{"2024-11-27 08:30:00.1234567 +07:00", utc(2024, 11, 27, 1, 30, 0, 123456700)}, // datetimeoffset
		{"2024-11-27 08:30:00 +07:00", utc(2024, 11, 27, 1, 30, 0, 0)},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, nil, nil)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTimeUsesTheGivenZoneOnlyForZonelessInput(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	got, err := ParseTime("2024-11-27 08:30:00", nil, tokyo)
	if want := time.Date(2024, 11, 26, 23, 30, 0, 0, time.UTC); err != nil || !got.Equal(want) {
		t.Errorf("zone-less in JST = %v, %v; want %v", got, err, want)
	}
	got, err = ParseTime("2024-11-27T08:30:00Z", nil, tokyo)
	if want := time.Date(2024, 11, 27, 8, 30, 0, 0, time.UTC); err != nil || !got.Equal(want) {
		t.Errorf("explicit Z in JST = %v, %v; want %v", got, err, want)
	}
}

func TestParseTimeWithDeclaredLayouts(t *testing.T) {
	got, err := ParseTime("27.11.2024 08h30", []string{GoLayout("dd.MM.yyyy HH'h'mm")}, nil)
	if want := time.Date(2024, 11, 27, 1, 30, 0, 0, time.UTC); err != nil || !got.Equal(want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	// A layout that does not start with a number is always tried.
	got, err = ParseTime("Nov 27, 2024", []string{"02/01/2006", "Jan 2, 2006"}, nil)
	if want := time.Date(2024, 11, 26, 17, 0, 0, 0, time.UTC); err != nil || !got.Equal(want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
}

func TestParseTimeErrors(t *testing.T) {
	tests := []struct {
		in      string
		layouts []string
		err     string
	}{
		{"", nil, "time is empty"},
		{"   ", nil, "time is empty"},
		{"hôm qua", nil, `time "hôm qua" is not in a layout this mapping can read`},
		{"31/02/2024", nil, `time "31/02/2024" is not a valid date or time: day out of range`},
		{"12/31/2024", nil, "month out of range"}, // day first, never guessed month first
		{"2024-13-01", nil, "month out of range"},
		{"27/11/2024 25:00", nil, "hour out of range"},
		{"20241327083000", nil, "month out of range"},
		{"2024-11-27", []string{"02/01/2006"}, `time "2024-11-27" does not match layout 02/01/2006`},
		{"32/01/2024", []string{"02/01/2006"}, "does not match layout 02/01/2006: day out of range"},
		{"27/11/2024 08:30", []string{"20060102150405"}, "does not match layout 20060102150405"},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, tt.layouts, nil)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseTime(%q, %q) = %v, %v; want error containing %q", tt.in, tt.layouts, got, err, tt.err)
		}
	}
}

func TestDefaultZoneIsVietnam(t *testing.T) {
	z := DefaultZone()
	for _, m := range []time.Month{time.January, time.July} { // no daylight saving time
		if _, off := time.Date(2024, m, 1, 0, 0, 0, 0, z).Zone(); off != 7*3600 {
			t.Errorf("offset in %v = %d, want +7h", m, off)
		}
	}
}

// Layouts and values for the mayMatch checks: every default layout, and Go
// layouts with the tokens mayMatch does not model.
var (
	matchLayouts = append([]string{
		"02.01.2006", "15:04", "2006", "2 Jan 2006", "Jan _2 2006", "_2/01/2006", "060102", "2006Jan02",
		"2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05.000", "2006-01-02 15:04:05,000",
		"2006-01-02 15:04:05 -0700", "2006-01-02T15:04:05-07:00", "02.01.2006 15.04", "2006-01-02 15:04:05 MST",
		"02/01/2006 03:04 PM", "2006-002", time.RFC1123, time.Kitchen,
	}, DefaultLayouts...)
	matchValues = []string{
		"20241127083000", "20241127083000.5", "20241127083000,5", "27/11/2024", "7/3/2024", "27-11-2024",
		"2024-11-27", "2024-11-27T08:30:00Z", "2024-11-27T08:30:00.25+07:00", "2024-11-27T08:30:00+0700",
		"2024-11-27 08:30:00", "2024-11-27 08:30:00.123", "2024-11-27 08:30:00,123", "2024-11-27 08:30",
		"2024-11-27 08:30:00 +0700", "2024-11-27 08:30:00 ICT", "27.11.2024", "08:30", "2024",
		"27 Nov 2024", "Nov 27 2024", " 7/11/2024", "241127", "2024Nov27", "27/11/2024 08:30 PM",
		"2024-331", "Wed, 27 Nov 2024 08:30:00 ICT", "8:30PM",
		"2024-11-27 08:30:00.1234567 +07:00", "2024-11-27 08:30:00,5 +0700", "2024-11-27T08:30:00.5Z",
	}
)

func TestMayMatchNeverSkipsALayoutThatParses(t *testing.T) {
	for _, v := range matchValues {
		for _, l := range matchLayouts {
			if _, err := time.Parse(l, v); err == nil && !mayMatch(l, v) {
				t.Errorf("mayMatch(%q, %q) skips a layout that parses", l, v)
			}
		}
	}
}

func TestMayMatchSkipsLayoutsOfAnotherShape(t *testing.T) {
	tests := []struct{ layout, v string }{
		{"2006-01-02T15:04:05Z07:00", "27/11/2024"},
		{"2006-01-02T15:04:05Z07:00", "2024-11-27 08:30:00"},
		{"2006-01-02 15:04:05", "2024-11-27"},
		{"2006-01-02", "2024-11-27 08:30"},
		{"20060102150405", "2024-11-27"},
		{"2/1/2006 15:04:05", "27/11/2024 08:30"},
		{"2/1/2006", "hôm qua"},
	}
	for _, tt := range tests {
		if mayMatch(tt.layout, tt.v) {
			t.Errorf("mayMatch(%q, %q) = true", tt.layout, tt.v)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, v := range matchValues {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, l := range matchLayouts {
			if _, err := time.Parse(l, v); err == nil && !mayMatch(l, v) {
				t.Fatalf("mayMatch(%q, %q) skips a layout that parses", l, v)
			}
		}
		if got, err := ParseTime(v, nil, nil); err == nil && got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) = %v, not in UTC", v, got)
		}
		_ = GoLayout(v)
	})
}

func BenchmarkParseTime(b *testing.B) {
	for _, in := range []string{"2024-11-27T08:30:00+07:00", "2024-11-27 08:30:00.123", "20241127083000", "27/11/2024 08:30"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseTime(in, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// parsePortal must read exactly what time.ParseInLocation reads with the portal's
// layout, and leave everything else (which it refuses) to the general path.
func TestParsePortalAgreesWithTimeParse(t *testing.T) {
	zones := []*time.Location{DefaultZone(), time.UTC, time.FixedZone("odd", -(3*3600 + 30*60))}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny) // wall clocks that do not exist or occur twice
	}
	values := []string{
		"20241127083000", "20240229235959", "20230229000000", "21000229000000", "20000229000000",
		"20241131000000", "20241301000000", "20240001000000", "20240100000000", "20241127240000",
		"20241127236000", "20241127235960", "00000101000000", "99991231235959", "20240310023000",
		"20241103013000", "2024112708300", "202411270830000", "2024-1127083000", "2024112708300x", "+2024112708300",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, 14)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		if rng.IntN(2) == 0 { // mostly plausible dates, so that many are valid
			copy(b[4:], fmt.Sprintf("%02d%02d%02d%02d%02d", 1+rng.IntN(13), rng.IntN(33), rng.IntN(25), rng.IntN(61), rng.IntN(61)))
		}
		values = append(values, string(b))
	}
	for _, zone := range zones {
		for _, v := range values {
			want, err := time.ParseInLocation(portalLayout, v, zone)
			got, ok := parsePortal(v, zone)
			if ok != (err == nil) || (ok && !got.Equal(want)) || (ok && got.Location() != time.UTC) {
				t.Fatalf("zone %v: parsePortal(%q) = %v, %v; time.ParseInLocation = %v, %v", zone, v, got, ok, want, err)
			}
		}
	}
}
