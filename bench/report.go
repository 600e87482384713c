package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// result is one line of the table.
type result struct {
	what  string
	store string // "" for references
	sink  string
	count int    // rows or events handled
	unit  string // "rows" or "events"
	dur   time.Duration
	cpu   time.Duration // the daemon's user+system CPU; 0 when not measured
	rss   int64         // bytes; 0 when not measured
	note  string
	// done is false when the phase was stopped by the timeout: the rate is then
	// what it managed before it was stopped.
	done bool
}

// storeSize is the store's disk size at the points the benchmark looks.
type storeSize struct {
	store        string
	afterSync    int64  // after the first sync and its delivery
	afterIncr    int64  // after the incremental poll
	tables       string // the largest tables with their indexes
	records      int
	measuredIncr bool
	// undelivered is set when the timeout stopped the delivery: the outbox still
	// held events when the size was taken.
	undelivered bool
}

type report struct {
	header  []string
	floor   time.Duration
	results []result
	sizes   []storeSize
	notes   []string
}

func (r *report) add(res result) { r.results = append(r.results, res) }

// markdown renders the report: header, table, store sizes, notes.
func (r *report) markdown() string {
	var b strings.Builder
	for _, h := range r.header {
		b.WriteString(h + "\n")
	}
	b.WriteString("\n| measurement | store | sink | rows / events | seconds | per second | × COPY floor | daemon CPU s | peak RSS | note |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, res := range r.results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			res.what, dash(res.store), dash(res.sink), countText(res), secondsText(res.dur),
			rateText(res), r.ratioText(res), secondsText(res.cpu), mbText(res.rss), res.note)
	}
	if len(r.sizes) > 0 {
		b.WriteString("\n| store | size after first sync + delivery | bytes per record | largest tables (with their indexes) | size after incremental poll |\n")
		b.WriteString("|---|---:|---:|---|---:|\n")
		for _, s := range r.sizes {
			per := "—"
			if s.records > 0 {
				per = fmt.Sprintf("%d", s.afterSync/int64(s.records))
			}
			incr := "—"
			if s.measuredIncr {
				incr = mbText(s.afterIncr)
			}
			after := mbText(s.afterSync)
			if s.undelivered {
				after += " (delivery stopped by -timeout)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.store, after, per, dash(s.tables), incr)
		}
	}
	if len(r.notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func countText(res result) string {
	if res.count == 0 && res.unit == "" {
		return "—"
	}
	return fmt.Sprintf("%s %s", thousands(res.count), res.unit)
}

func secondsText(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	s := d.Seconds()
	switch {
	case s < 1:
		return fmt.Sprintf("%.3f", s)
	case s < 100:
		return fmt.Sprintf("%.2f", s)
	default:
		return fmt.Sprintf("%.0f", s)
	}
}

func rateText(res result) string {
	if res.dur <= 0 || res.count == 0 {
		return "—"
	}
	t := thousands(int(float64(res.count) / res.dur.Seconds()))
	if !res.done {
		t += " (stopped)"
	}
	return t
}

// ratioText is the phase's time over the floor's.
func (r *report) ratioText(res result) string {
	if r.floor <= 0 || res.dur <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f×", res.dur.Seconds()/r.floor.Seconds())
}

func mbText(b int64) string {
	switch {
	case b <= 0:
		return "—"
	case b < 1<<20:
		return fmt.Sprintf("%.0f KB", float64(b)/(1<<10))
	case b < 10<<20:
		return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.0f MB", float64(b)/(1<<20))
}

func thousands(n int) string {
	s := fmt.Sprintf("%d", n)
	if n < 0 {
		return s
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// writeOut puts the report into path between markers named by key, replacing an
// earlier report with the same key or appending a new one; other text is kept.
func writeOut(path, key, body string) error {
	begin := "<!-- bench:begin " + key + " -->"
	end := "<!-- bench:end " + key + " -->"
	block := begin + "\n" + body + end + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	i := strings.Index(text, begin)
	j := strings.Index(text, end)
	switch {
	case i >= 0 && j > i:
		text = text[:i] + block + strings.TrimPrefix(text[j+len(end):], "\n")
	case text == "" || strings.HasSuffix(text, "\n\n"):
		text += block
	case strings.HasSuffix(text, "\n"):
		text += "\n" + block
	default:
		text += "\n\n" + block
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
