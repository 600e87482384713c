package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
)

// DeletesConfig says how records that disappear from a source become deleted
// events (decision 0017). Every part is optional.
type DeletesConfig struct {
	// A failed read counts nothing: one truncated answer must not read as a mass
	// cancellation.
	AfterMisses int `yaml:"after_misses" default:"2" doc:"Full-set sources (feeds, files: every read is the whole current set): a record missing from this many consecutive complete, successful polls becomes a deleted event. A failed poll, or a page in an unknown shape, counts nothing."`
	// An outage that happened leaves the EVN window; it was not cancelled.
	UnlessPast string `yaml:"unless_past" doc:"A time field of the mapping (an outage's end): a record missed once that time has passed is over, not cancelled, and is never deleted for being missing." example:"end"`
	Reconcile  string `yaml:"reconcile" doc:"A cron schedule (in timezone) on which every key of the source is listed, page by page (sources that can: sql), and each live record whose row is gone becomes a deleted event at once. Off when empty." example:"\"0 2 * * *\""`
	PageSize   int    `yaml:"page_size" default:"1000" max:"100000" doc:"Keys a reconcile reads per query, and records either kind of pass compares at once."`
	Column     string `yaml:"column" doc:"A soft-delete column: a row whose value there means deleted is a deleted event for its record instead of a change. The source must return it." example:"DaXoa"`
	// Without a list, a deleted_at time works as well as a 0/1 flag.
	When []string `yaml:"when" doc:"The values of column that mean deleted, compared as trimmed text ignoring case; without it any value but NULL, empty, 0, false, f, no or n does." example:"[\"1\"]"`
}

// Defaults for DeletesConfig.
const (
	DefaultAfterMisses = 2
	DefaultDeletesPage = 1000
)

func (c *DeletesConfig) applyDefaults() {
	if c.AfterMisses == 0 {
		c.AfterMisses = DefaultAfterMisses
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultDeletesPage
	}
}

// checkDeletes validates a source's deletes block against its mapping.
func checkDeletes(d *config.Decoder, p string, c *DeletesConfig, m *mapping.Mapping) {
	p += ".deletes"
	if c.AfterMisses < 0 {
		d.Errorf(p+".after_misses", "must be at least 1 (default %d)", DefaultAfterMisses)
	}
	if c.PageSize < 0 || c.PageSize > 100000 {
		d.Errorf(p+".page_size", "must be between 1 and 100000 (default %d)", DefaultDeletesPage)
	}
	if c.Reconcile != "" {
		if _, err := CronParser.Parse(c.Reconcile); err != nil {
			d.Errorf(p+".reconcile", "bad cron expression %q: %v (example: \"0 2 * * *\", nightly at 02:00)", c.Reconcile, err)
		}
	}
	if c.Column == "" && len(c.When) > 0 {
		d.Errorf(p+".when", "needs column: the soft-delete column whose values these are")
	}
	if c.UnlessPast != "" && m != nil {
		typ, ok := m.FieldType(c.UnlessPast)
		switch {
		case !ok:
			d.Errorf(p+".unless_past", "the mapping has no field %q", c.UnlessPast)
		case typ != mapping.TypeTime:
			d.Errorf(p+".unless_past", "field %q is of type %s; want a time field (an end time)", c.UnlessPast, typ)
		}
	}
	c.applyDefaults()
}

// softDeleted reports whether a row's soft-delete column says the row is deleted.
func (c *DeletesConfig) softDeleted(row map[string]any) bool {
	if c.Column == "" {
		return false
	}
	v := row[c.Column]
	if v == nil {
		return false
	}
	var text string
	switch x := v.(type) {
	case []byte:
		text = string(x)
	case string:
		text = x
	case bool:
		text = "false"
		if x {
			text = "true"
		}
	default:
		text = fmt.Sprint(x)
	}
	text = strings.ToLower(strings.TrimSpace(text))
	if len(c.When) > 0 {
		return slices.ContainsFunc(c.When, func(w string) bool { return strings.ToLower(strings.TrimSpace(w)) == text })
	}
	return !slices.Contains([]string{"", "0", "false", "f", "no", "n"}, text)
}
