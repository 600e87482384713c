package mapping

import (
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Kinds of citizen data a field can hold; they are masked wherever rows are shown
// or logged (quarantine listings, reasons), never in what is delivered.
var maskers = map[string]func(string) string{
	"phone": transform.MaskPhone,
	"name":  transform.MaskName,
	"id":    transform.MaskID,
}

// MaskRaw returns a copy of a raw row with the citizen fields' columns masked.
func (m *Mapping) MaskRaw(raw map[string]string) map[string]string {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		out[k] = v
	}
	for _, f := range m.fields {
		if f.mask == nil {
			continue
		}
		for _, c := range f.columns() {
			if v, ok := out[c]; ok && v != "" {
				out[c] = f.mask(v)
			}
		}
	}
	return out
}

// MaskText masks, inside a text such as a quarantine reason, every value the raw
// row holds in a citizen field.
func (m *Mapping) MaskText(text string, raw map[string]string) string {
	for _, f := range m.fields {
		if f.mask == nil {
			continue
		}
		for _, c := range f.columns() {
			if v := strings.TrimSpace(raw[c]); v != "" {
				text = strings.ReplaceAll(text, v, f.mask(v))
			}
		}
	}
	return text
}

// columns lists the source columns a field reads.
func (f *field) columns() []string {
	if f.cols != nil {
		return f.cols
	}
	return []string{f.from}
}

// MaskRecord returns a copy of a record's fields (as in an event's before or
// after) with the citizen fields masked, for pages and API answers.
func (m *Mapping) MaskRecord(fields map[string]any) map[string]any {
	if fields == nil {
		return nil
	}
	out := make(map[string]any, len(fields))
	for k, v := range fields {
		out[k] = v
	}
	for _, f := range m.fields {
		if s, ok := out[f.name].(string); ok && f.mask != nil && s != "" {
			out[f.name] = f.mask(s)
		}
	}
	return out
}

// MaskRecordText masks, inside a text such as a rendered message, every value the
// record's citizen fields hold.
func (m *Mapping) MaskRecordText(text string, fields map[string]any) string {
	for _, f := range m.fields {
		if s, ok := fields[f.name].(string); ok && f.mask != nil && strings.TrimSpace(s) != "" {
			text = strings.ReplaceAll(text, strings.TrimSpace(s), f.mask(strings.TrimSpace(s)))
		}
	}
	return text
}
