package mapping

import (
	"fmt"
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Column is a source column that a mapping reads.
type Column struct {
	Name  string // as the mapping spells it
	Field string // the field that reads it
	Pos   string // file:line of the field's from: (or of the field) in the mapping
}

// Columns lists every source column the mapping reads, in field order.
func (m *Mapping) Columns() []Column {
	var out []Column
	for _, f := range m.fields {
		cols := f.cols
		if cols == nil {
			cols = []string{f.from}
		}
		for _, c := range cols {
			out = append(out, Column{Name: c, Field: f.name, Pos: m.pos[f.name]})
		}
	}
	return out
}

// fieldPos is where a field's columns are named, for messages about them.
func fieldPos(d *config.Decoder, file, name string) string {
	n := d.Node("fields." + name + ".from")
	if n == nil {
		return file
	}
	return fmt.Sprintf("%s:%d", file, n.Line)
}

// MissingColumn is a column the mapping reads that the source does not return.
type MissingColumn struct {
	Column
	// Hint suggests the column the integrator probably meant, if any.
	Hint string
}

func (c MissingColumn) Error() string {
	msg := fmt.Sprintf("%s: field %q reads column %q, which the source does not return", c.Pos, c.Field, c.Name)
	if c.Hint != "" {
		msg += "; " + c.Hint
	}
	return msg
}

// CheckColumns compares the columns the mapping reads with those the source returns.
// Names must match exactly: a column that differs only in case is reported with
// a hint (PostgreSQL folds unquoted identifiers to lower case, SQL Server may not),
// never silently read, since guessing could read the wrong one of two.
func (m *Mapping) CheckColumns(have []string) []MissingColumn {
	exact := make(map[string]bool, len(have))
	for _, h := range have {
		exact[h] = true
	}
	var out []MissingColumn
	for _, c := range m.Columns() {
		if exact[c.Name] {
			continue
		}
		mc := MissingColumn{Column: c}
		var folded []string
		for _, h := range have {
			if strings.EqualFold(h, c.Name) {
				folded = append(folded, h)
			}
		}
		switch {
		case len(folded) == 1:
			mc.Hint = fmt.Sprintf("the source has %q, which differs only in case (PostgreSQL folds unquoted names to lower case): write from: %s", folded[0], folded[0])
		case len(folded) > 1:
			mc.Hint = fmt.Sprintf("the source has %s, which differ only in case: name the one to read exactly", strings.Join(quoteAll(folded), ", "))
		default:
			if s := config.Suggest(c.Name, have); s != "" {
				mc.Hint = fmt.Sprintf("did you mean %q?", s)
			}
		}
		out = append(out, mc)
	}
	return out
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}
