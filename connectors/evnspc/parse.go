package evnspc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// ErrUnknownShape is a page in neither known shape that does not say there is no
// schedule either: the site changed, or answered an error page with HTTP 200. The
// poll fails (source health shows it), so no schedule is taken for cancelled.
var ErrUnknownShape = errors.New("EVN page in an unknown shape")

// Outage is one schedule as the site lists it.
type Outage struct {
	Area, Reason string
	Start, End   time.Time // UTC
}

// noneText is what the site writes when a unit has no schedule in the window
// ("không có lịch ngừng giảm cung cấp điện"), folded.
const noneText = "khong co lich ngung giam cung cap dien"

// parsePage reads one unit's answer: the current shape (one div.entry per
// schedule with span.where, span.time and span.cause), or the older one (a table
// of start, end, area, reason), or the text saying there is none. Anything else
// is ErrUnknownShape. Times are read in zone.
func parsePage(body []byte, zone *time.Location) ([]Outage, error) {
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: an empty answer (the site writes a sentence when there is no schedule)", ErrUnknownShape)
	}
	// Some ASP.NET actions wrap the fragment in a JSON string.
	if trimmed[0] == '"' {
		var s string
		if err := json.Unmarshal(trimmed, &s); err == nil {
			trimmed = []byte(s)
		}
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(trimmed))
	if err != nil {
		return nil, fmt.Errorf("%w: not HTML: %v", ErrUnknownShape, err)
	}
	if entries := doc.Find("div.entry"); entries.Length() > 0 {
		return parseEntries(entries, zone)
	}
	if out, ok, err := parseTable(doc, zone); ok || err != nil {
		return out, err
	}
	if strings.Contains(transform.Fold(text(doc.Selection)), noneText) {
		return nil, nil
	}
	return nil, fmt.Errorf("%w: no div.entry, no table of schedules, and no %q (page starts %s)",
		ErrUnknownShape, "không có lịch ngừng giảm cung cấp điện", start(trimmed))
}

func parseEntries(entries *goquery.Selection, zone *time.Location) ([]Outage, error) {
	var out []Outage
	var err error
	entries.EachWithBreak(func(i int, e *goquery.Selection) bool {
		where := stripLabel(text(e.Find("span.where").First()))
		when := text(e.Find("span.time").First())
		cause := stripLabel(text(e.Find("span.cause").First()))
		if where == "" {
			err = fmt.Errorf("%w: entry %d has no span.where (area)", ErrUnknownShape, i+1)
			return false
		}
		var o Outage
		if o.Start, o.End, err = parseSpan(when, zone); err != nil {
			err = fmt.Errorf("%w: entry %d: %v", ErrUnknownShape, i+1, err)
			return false
		}
		o.Area, o.Reason = where, cause
		out = append(out, o)
		return true
	})
	return out, err
}

// clockDateRE finds "07:30:00 ngày 11/08/2026" (seconds optional).
var clockDateRE = regexp.MustCompile(`(\d{1,2}:\d{2}(?::\d{2})?)\D{0,20}?(\d{1,2}/\d{1,2}/\d{4})`)

// parseSpan reads "THỜI GIAN: Từ 07:30:00 ngày 11/08/2026 đến 11:00:00 ngày 11/08/2026".
func parseSpan(s string, zone *time.Location) (time.Time, time.Time, error) {
	m := clockDateRE.FindAllStringSubmatch(s, -1)
	if len(m) != 2 {
		return time.Time{}, time.Time{}, fmt.Errorf("time %q is not \"Từ HH:mm:ss ngày dd/MM/yyyy đến HH:mm:ss ngày dd/MM/yyyy\"", s)
	}
	var t [2]time.Time
	for i, p := range m {
		v, err := transform.ParseTime(p[2]+" "+p[1], []string{"2/1/2006 15:04:05", "2/1/2006 15:04"}, zone)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("time %q: %v", s, err)
		}
		t[i] = v
	}
	if t[1].Before(t[0]) {
		return time.Time{}, time.Time{}, fmt.Errorf("time %q ends before it starts", s)
	}
	return t[0], t[1], nil
}

// parseTable reads the older shape: rows of four cells, start and end written
// dd/mm/yyyy HH:mm. ok is false when there is no such table.
func parseTable(doc *goquery.Document, zone *time.Location) (out []Outage, ok bool, err error) {
	layouts := []string{"2/1/2006 15:04", "2/1/2006 15:04:05", "2/1/2006 15g04"}
	doc.Find("table tr").EachWithBreak(func(i int, tr *goquery.Selection) bool {
		cells := tr.Find("td")
		if cells.Length() < 4 {
			return true // a header row (th) or a row spanning the table ("không có lịch")
		}
		c := func(n int) string { return text(cells.Eq(n)) }
		start, e1 := transform.ParseTime(c(0), layouts, zone)
		if e1 != nil {
			if ok {
				err = fmt.Errorf("%w: table row %d: start %q is not dd/mm/yyyy HH:mm", ErrUnknownShape, i+1, c(0))
				return false
			}
			return true // a header row written with td
		}
		end, e2 := transform.ParseTime(c(1), layouts, zone)
		if e2 != nil || end.Before(start) {
			err = fmt.Errorf("%w: table row %d: end %q is not dd/mm/yyyy HH:mm after the start", ErrUnknownShape, i+1, c(1))
			return false
		}
		ok = true
		if c(2) == "" {
			err = fmt.Errorf("%w: table row %d has no area", ErrUnknownShape, i+1)
			return false
		}
		out = append(out, Outage{Start: start, End: end, Area: c(2), Reason: c(3)})
		return true
	})
	return out, ok || err != nil, err
}

// text is an element's text: entities decoded (twice, for pages that escape
// them twice), NFC, white space collapsed.
func text(s *goquery.Selection) string {
	t := s.Text()
	if strings.Contains(t, "&#") || strings.Contains(t, "&amp;") {
		t = html.UnescapeString(t)
	}
	return transform.CollapseSpaces(transform.NFC(t))
}

// stripLabel drops a leading "KHU VỰC:" or "LÝ DO NGỪNG CUNG CẤP ĐIỆN:".
func stripLabel(s string) string {
	label, rest, ok := strings.Cut(s, ":")
	if !ok {
		return s
	}
	switch f := transform.Fold(label); {
	case f == "khu vuc", strings.HasPrefix(f, "ly do"), f == "dia diem", f == "noi dung":
		return strings.TrimSpace(rest)
	}
	return s
}

func start(b []byte) string {
	s := []rune(string(b))
	if len(s) > 60 {
		return fmt.Sprintf("%q…", string(s[:60]))
	}
	return fmt.Sprintf("%q", string(s))
}
