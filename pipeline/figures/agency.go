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
	"path"
	"slices"
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
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
	// Officials hear the rules whose notify: says officials: true about the
	// agency's records (and, when an agency under it lists none, about its records).
	Officials []Official `yaml:"officials" doc:"The agency's officials who hear the notices of rules with notify: { officials: true } (deadline alerts) about its records, and about the records of agencies under it that list none."`
}

// Official is one official of an agency, reached on Zalo: by an OA message when
// user_id is given (a follower of the OA that sends the notice), else by ZNS to
// the phone. Officials' contacts are personal data: masked in logs and output.
type Official struct {
	Name   string `yaml:"name" required:"true" doc:"Who the official is, for the operator (not sent)." example:"Phó Chủ tịch UBND xã"`
	UserID string `yaml:"user_id" doc:"The official's Zalo user id as a follower of the OA that sends the notice; an OA message goes there." example:"${ZALO_UID_PCT_PHUOCLAI}"`
	Phone  string `yaml:"phone" doc:"The official's mobile phone (any Vietnamese form); ZNS goes there when there is no user_id or the OA message cannot reach them." example:"0912345678"`
	// Events limits the rules the official hears; empty means every rule that
	// addresses officials.
	Events []string `yaml:"events" doc:"The rules the official hears, as names or patterns (deadline.*); empty: every rule addressed to officials." example:"[deadline.overdue]"`
}

// hears reports whether the official receives the rule's notices.
func (o Official) hears(rule string) bool {
	if len(o.Events) == 0 {
		return true
	}
	for _, p := range o.Events {
		if ok, _ := path.Match(p, rule); ok {
			return true
		}
	}
	return false
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

// Officials returns who hears the rule's notice addressed to the officials of an
// agency: the agency's officials who hear the rule, or, when it has none, those of
// the nearest parent that has some (a commune without officials of its own
// escalates to its district). Phones come normalised to 84xxxxxxxxx.
func (d *Directory) Officials(code, rule string) []pipeline.Official {
	if d == nil {
		return nil
	}
	for _, c := range append([]string{code}, d.Ancestors(code)...) {
		a, ok := d.Lookup(c)
		if !ok {
			return nil
		}
		var out []pipeline.Official
		for _, o := range a.Officials {
			if !o.hears(rule) {
				continue
			}
			phone := strings.TrimSpace(o.Phone)
			if p, err := transform.PhoneVN(phone); err == nil {
				phone = p
			}
			out = append(out, pipeline.Official{Name: o.Name, UserID: strings.TrimSpace(o.UserID), Phone: phone})
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
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
		for j, o := range a.Officials {
			checkOfficial(fmt.Sprintf("%s.officials[%d]", p, j), o, report)
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

// checkOfficial reports an official who cannot be reached or whose events
// cannot match. The contact itself is never quoted: it is personal data.
func checkOfficial(p string, o Official, report func(path, msg string)) {
	if strings.TrimSpace(o.Name) == "" {
		report(p+".name", "an official needs a name")
	}
	user, phone := strings.TrimSpace(o.UserID), strings.TrimSpace(o.Phone)
	switch {
	case user == "" && phone == "":
		report(p, "an official needs a contact: user_id (a follower of the OA) or phone")
	case phone != "":
		if _, err := transform.PhoneVN(phone); err != nil {
			report(p+".phone", fmt.Sprintf("not a Vietnamese mobile number (%s)", transform.MaskPhone(phone)))
		}
	}
	for k, e := range o.Events {
		if _, err := path.Match(e, ""); err != nil || strings.TrimSpace(e) == "" {
			report(fmt.Sprintf("%s.events[%d]", p, k), fmt.Sprintf("%q is not a rule name or pattern", e))
		}
	}
}
