// Package figures computes the leadership's steering figures from the records the
// daemon has synced, at query time: dossiers received, in progress, finished, on
// time, overdue now and due soon per agency and parent (department or district)
// and period; citizens reached by route and the saving against SMS; outages
// announced; feedback; and the indicators of the national service-quality index
// (Decision 766/QĐ-TTg) the data supports. Counts come from the store's facts
// (store.FactStore), kept per record at commit and indexed, so a query costs what
// it counts, not the size of the store; nothing that depends on the clock is
// stored, so "overdue now" means now.
package figures

import (
	"fmt"
	"slices"
	"strings"
)

// Agency is one agency of the province, as the config's top-level agencies: list
// declares it. Records name their agency by code (a source's agency: or the
// mapping's agency_field); figures roll up to each parent.
type Agency struct {
	Code string `yaml:"code" required:"true" doc:"The agency's code, as records name it (a source's agency:, or the value of a mapping's agency_field)." example:"UBND-XA-PHUOCLAI"`
	Name string `yaml:"name" required:"true" doc:"The agency's name, as pages show it." example:"UBND xã Phước Lại"`
	// Parent is the code of the department or district the agency belongs to,
	// itself declared in the list; "" for a top-level unit.
	Parent string `yaml:"parent" doc:"The code of the department or district the agency belongs to, itself declared in agencies." example:"HUYEN-CANGIUOC"`
	// Sources are the sources the agency owns: a source listed here without an
	// agency: of its own takes this one.
	Sources []string `yaml:"sources" doc:"The sources the agency owns: such a source without an agency: of its own takes this one." example:"[motcua-phuoclai]"`
	// OA names the zalo sink of the agency's own Official Account (its own app
	// and credentials); "" speaks through the parent's, else the province's.
	OA string `yaml:"oa" doc:"The zalo sink of the agency's own Official Account (its own app and credentials); without it the agency speaks through its parent's, else the province's." example:"zalo-sotttt"`
}

// Directory is the province's agencies, by code.
type Directory struct {
	list   []Agency
	byCode map[string]int
}

// NewDirectory indexes a list of agencies (validated by Check).
func NewDirectory(list []Agency) *Directory {
	d := &Directory{list: slices.Clone(list), byCode: make(map[string]int, len(list))}
	for i, a := range d.list {
		d.byCode[a.Code] = i
	}
	return d
}

// List returns the agencies in config order.
func (d *Directory) List() []Agency {
	if d == nil {
		return nil
	}
	return slices.Clone(d.list)
}

// Lookup returns the agency with the code.
func (d *Directory) Lookup(code string) (Agency, bool) {
	if d == nil {
		return Agency{}, false
	}
	i, ok := d.byCode[code]
	if !ok {
		return Agency{}, false
	}
	return d.list[i], true
}

// Name is the agency's name, or its code when it is not declared.
func (d *Directory) Name(code string) string {
	if a, ok := d.Lookup(code); ok {
		return a.Name
	}
	return code
}

// Ancestors lists the agency's parent, its parent's parent, and so on.
func (d *Directory) Ancestors(code string) []string {
	var out []string
	for seen := map[string]bool{code: true}; ; {
		a, ok := d.Lookup(code)
		if !ok || a.Parent == "" || seen[a.Parent] {
			return out
		}
		out = append(out, a.Parent)
		seen[a.Parent] = true
		code = a.Parent
	}
}

// Within reports whether the agency is one of the codes or under one of them;
// an empty list means everything (no scope).
func (d *Directory) Within(code string, codes []string) bool {
	if len(codes) == 0 {
		return true
	}
	if slices.Contains(codes, code) {
		return true
	}
	for _, a := range d.Ancestors(code) {
		if slices.Contains(codes, a) {
			return true
		}
	}
	return false
}

// Check validates a list of agencies against the configured source names and
// reports each mistake through report(path, message): codes present and unique,
// parents declared and acyclic, sources existing and owned by one agency.
func Check(list []Agency, sources map[string]bool, report func(path, msg string)) {
	codes := map[string]int{}
	for i, a := range list {
		p := fmt.Sprintf("agencies[%d]", i)
		if strings.TrimSpace(a.Code) != a.Code || a.Code == "" {
			if a.Code != "" {
				report(p+".code", fmt.Sprintf("code %q has spaces around it", a.Code))
			}
			continue
		}
		if j, dup := codes[a.Code]; dup {
			report(p+".code", fmt.Sprintf("agencies[%d] already has code %q", j, a.Code))
			continue
		}
		codes[a.Code] = i
	}
	owner := map[string]string{}
	for i, a := range list {
		p := fmt.Sprintf("agencies[%d]", i)
		if a.Parent != "" {
			if _, ok := codes[a.Parent]; !ok {
				report(p+".parent", fmt.Sprintf("no agency has code %q", a.Parent))
			} else if a.Parent == a.Code {
				report(p+".parent", "an agency cannot be its own parent")
			}
		}
		for j, s := range a.Sources {
			sp := fmt.Sprintf("%s.sources[%d]", p, j)
			if !sources[s] {
				report(sp, fmt.Sprintf("no source is named %q", s))
				continue
			}
			if o, taken := owner[s]; taken && o != a.Code {
				report(sp, fmt.Sprintf("source %q is already owned by agency %q", s, o))
				continue
			}
			owner[s] = a.Code
		}
	}
	// A cycle of parents would make every roll-up loop.
	for i, a := range list {
		seen := map[string]bool{a.Code: true}
		for code := a.Parent; code != ""; {
			if seen[code] {
				report(fmt.Sprintf("agencies[%d].parent", i), fmt.Sprintf("parents form a cycle through %q", code))
				break
			}
			seen[code] = true
			j, ok := codes[code]
			if !ok {
				break
			}
			code = list[j].Parent
		}
	}
}
