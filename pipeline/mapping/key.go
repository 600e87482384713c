package mapping

import (
	"slices"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// KeyColumns lists the source columns the mapping's key fields read: all a row
// needs to be told apart from the others (a reconcile reads only these).
func (m *Mapping) KeyColumns() []string {
	var out []string
	for _, idx := range m.keyIdx {
		f := m.fields[idx]
		cols := f.cols
		if cols == nil {
			cols = []string{f.from}
		}
		for _, c := range cols {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// KeyFields lists the names of the mapping's key fields.
func (m *Mapping) KeyFields() []string {
	out := make([]string, len(m.keyIdx))
	for i, idx := range m.keyIdx {
		out[i] = m.fields[idx].name
	}
	return out
}

// Key computes a row's record key from its key fields alone, exactly as Apply
// would. ok is false when a key field cannot be read (its value is missing or
// unreadable): the row cannot be matched to a record.
func (m *Mapping) Key(row pipeline.Row) (key string, ok bool) {
	parts := make([]string, len(m.keyIdx))
	ok = true
	for i, idx := range m.keyIdx {
		f := m.fields[idx]
		v, err := f.value(row)
		if err != nil {
			ok = false
		}
		parts[i] = textOf(v)
		if parts[i] == "" {
			ok = false
			parts[i] = rawText(f.raw(row))
		}
	}
	return pipeline.JoinKey(parts...), ok
}

// FieldType returns the type of a field or computed field ("time", "int", …), and
// false when the mapping has no such name.
func (m *Mapping) FieldType(name string) (string, bool) {
	for _, f := range m.fields {
		if f.name == name {
			return f.typ, true
		}
	}
	for _, c := range m.computed {
		if c.name == name {
			return c.typ, true
		}
	}
	return "", false
}

// Agency is the agency of a record with these (typed) fields: its agency field's
// value when the mapping has one and it is set, otherwise def (the source's).
func (m *Mapping) Agency(fields map[string]any, def string) string {
	if m.agencyIdx >= 0 {
		if a := textOf(fields[m.fields[m.agencyIdx].name]); a != "" {
			return a
		}
	}
	return def
}
