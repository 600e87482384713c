package httpfeed

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// placeholderRE finds {{today}}, {{today+4}}, {{today-1|yyyy-MM-dd}} and {{each}}.
var placeholderRE = regexp.MustCompile(`\{\{\s*([a-z]+)\s*(?:([+-])\s*(\d+))?\s*(?:\|\s*([^}]*?))?\s*\}\}`)

// expander fills placeholders for one request of one read.
type expander struct {
	today  time.Time // midnight of the read's day, in the source's zone
	layout string    // Go layout of dates without their own
	each   string
	// hasEach: an each value is being iterated, so {{each}} is allowed.
	hasEach bool
}

func (x expander) expand(s string) (string, error) {
	var err error
	out := placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		p := placeholderRE.FindStringSubmatch(m)
		name, sign, num, layout := p[1], p[2], p[3], p[4]
		switch name {
		case "each":
			if !x.hasEach || sign != "" || layout != "" {
				err = fmt.Errorf("%s: {{each}} needs an each: list and takes no offset or layout", m)
			}
			return x.each
		case "today":
			days := 0
			if num != "" {
				days, _ = strconv.Atoi(num)
				if sign == "-" {
					days = -days
				}
			}
			l := x.layout
			if layout != "" {
				l = transform.GoLayout(layout)
			}
			return x.today.AddDate(0, 0, days).Format(l)
		}
		err = fmt.Errorf("unknown placeholder %s: want {{today}}, {{today+N}}, {{today-N}}, {{today+N|layout}} or {{each}}", m)
		return m
	})
	return out, err
}

// checkPlaceholders reports unknown placeholders and stray braces at config time.
func checkPlaceholders(s string, hasEach bool) error {
	x := expander{today: time.Unix(0, 0), layout: time.DateOnly, hasEach: hasEach}
	out, err := x.expand(s)
	if err != nil {
		return err
	}
	if strings.Contains(out, "{{") {
		// The value is not quoted: url, query, form and headers may hold a secret.
		return fmt.Errorf("has a {{ that is not a placeholder: want {{today}}, {{today+N}}, {{today+N|layout}} or {{each}}")
	}
	return nil
}

// midnight is the start of t's day in zone.
func midnight(t time.Time, zone *time.Location) time.Time {
	y, m, d := t.In(zone).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, zone)
}
