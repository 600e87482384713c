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
