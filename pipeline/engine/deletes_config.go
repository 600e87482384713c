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
	// AfterMisses applies to full-set sources (feeds, files: every read is the
	// whole current set): a record missing from this many consecutive complete,
	// successful reads is deleted. Default 2; a failed read counts nothing.
	AfterMisses int `yaml:"after_misses"`
	// UnlessPast names a time field of the mapping (an outage's end): a record
	// missed once that time has passed is over, not cancelled, and is never
	// deleted for being missing.
	UnlessPast string `yaml:"unless_past"`
	// Reconcile is a cron schedule on which the source's whole key set is listed
	// (sources that can: sql) and records whose rows are gone are deleted.
	Reconcile string `yaml:"reconcile"`
	// PageSize is how many keys a reconcile reads per query, and how many records
	// either kind of pass compares at once. Default 1000.
	PageSize int `yaml:"page_size"`
	// Column is a soft-delete column: a row whose value there means deleted is a
	// deleted event for its record instead of a change.
	Column string `yaml:"column"`
	// When lists the values of Column that mean deleted, compared as trimmed text
	// ignoring case; without it any value but NULL, "", 0, false, no, n or f does.
	When []string `yaml:"when"`
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
