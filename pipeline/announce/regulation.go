package announce

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/places"
)

// Regulation is the province's regulation on using the Zalo channel (quy chế
// quản lý, khai thác kênh Zalo), as a YAML file the province adopts: who may write,
// approve and send announcements for each agency, to whom each agency may speak,
// when nothing is sent, and how many messages each agency may use. The daemon
// enforces it; README "Announcements and the channel regulation" is the model.
type Regulation struct {
	// QuietHours: no announcement is sent then, and none may be scheduled then
	// (province time). Default 21:00-07:00.
	QuietHours Window `yaml:"quiet_hours"`
	// Caps are the default daily and monthly caps of each agency, in messages.
	Caps Caps `yaml:"caps"`
	// FreeQuota is the proactive messages an OA may send free each month (its
	// package's quota); beyond it each OA message costs Prices.OA.
	FreeQuota int `yaml:"free_quota"`
	// Prices in đồng per message, for previews and the cost per agency.
	Prices Prices `yaml:"prices"`
	// Places is the communes-and-wards crosswalk (CSV: current, former) that area
	// names are resolved through; needed when any agency has areas.
	Places string `yaml:"places"`
	// OA is the zalo sink of the province's OA, for agencies without their own
	// (the config's agencies[].oa); default: the only zalo sink.
	OA string `yaml:"oa"`
	// PhoneField is the record field holding a citizen's phone, for the segment of
	// citizens with open dossiers at an agency; default phone.
	PhoneField string `yaml:"phone_field"`
	// Batch is how many recipients are claimed, sent and recorded together.
	Batch int `yaml:"batch"`
	// Agencies: the rules of each agency, by code (the config's agencies:).
	Agencies map[string]AgencyRules `yaml:"agencies"`
	// Templates are approved texts an announcement may use instead of its own.
	Templates map[string]Template `yaml:"templates"`

	file   string
	places *places.Table
}

// Window is a daily period in the province's zone; start after end spans midnight.
type Window struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
	Off   bool   `yaml:"off"`

	start, end int // minutes after midnight
}

// Caps are message caps per agency; 0 means no cap.
type Caps struct {
	Daily   int `yaml:"daily"`
	Monthly int `yaml:"monthly"`
}

// Prices are đồng per message.
type Prices struct {
	OA  int64 `yaml:"oa"`  // an OA message beyond the free quota
	ZNS int64 `yaml:"zns"` // a ZNS message
}

// AgencyRules are one agency's people and reach.
type AgencyRules struct {
	Authors   []string `yaml:"authors"`
	Approvers []string `yaml:"approvers"`
	Senders   []string `yaml:"senders"`
	// Areas are the communes and wards the agency speaks to, by current or
	// former name; "*" is the whole province. A district lists its own.
	Areas []string `yaml:"areas"`
	// Topics are the subscription topics the agency may address (cupdien, ...).
	Topics []string `yaml:"topics"`
	// AllFollowers lets the agency address every follower of its OA.
	AllFollowers bool `yaml:"all_followers"`
	// Caps override the regulation's caps for this agency.
	Caps *Caps `yaml:"caps"`

	province bool     // areas: ["*"]
	places   []string // resolved place ids
}

// Template is an approved text; {{.name}} marks are filled from the
// announcement's data. ZNSTemplateID, when set, reaches citizens who do not follow
// the OA by phone, with TemplateData's parameters ($title, $text, $link or a data
// name).
type Template struct {
	Title         string            `yaml:"title"`
	Text          string            `yaml:"text" required:"true"`
	ZNSTemplateID string            `yaml:"zns_template_id"`
	TemplateData  map[string]string `yaml:"template_data"`
}

// Defaults of the model regulation (README).
const (
	DefaultQuietStart = "21:00"
	DefaultQuietEnd   = "07:00"
	DefaultDailyCap   = 5000
	DefaultMonthlyCap = 50000
	DefaultFreeQuota  = 1000
	DefaultBatch      = 50
	MaxText           = 2000 // characters of an announcement's text
	MaxTitle          = 100  // a promotion message's header
)

// LoadRegulation reads and checks a regulation file against the config's
// agencies; every mistake is reported with file:line and field.
func LoadRegulation(path string, agencies []figures.Agency) (*Regulation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("announcement regulation: %w", err)
	}
	d := config.NewDecoder(path)
	var r Regulation
	d.DecodeDocument(b, &r)
	if err := d.Err(); err != nil {
		return nil, err
	}
	r.file = path
	if r.Places != "" {
		r.Places = d.Resolve(r.Places)
	}
	r.check(agencies, d.Errorf)
	if err := d.Err(); err != nil {
		return nil, err
	}
	return &r, nil
}

// check fills defaults and reports mistakes through errorf(path, ...).
func (r *Regulation) check(agencies []figures.Agency, errorf func(path, format string, args ...any)) {
	if r.QuietHours.Start == "" && r.QuietHours.End == "" {
		r.QuietHours.Start, r.QuietHours.End = DefaultQuietStart, DefaultQuietEnd
	}
	if !r.QuietHours.Off {
		var err error
		if r.QuietHours.start, err = clock(r.QuietHours.Start); err != nil {
			errorf("quiet_hours.start", "%v", err)
		}
		if r.QuietHours.end, err = clock(r.QuietHours.End); err != nil {
			errorf("quiet_hours.end", "%v", err)
		}
	}
	if r.Caps == (Caps{}) {
		r.Caps = Caps{Daily: DefaultDailyCap, Monthly: DefaultMonthlyCap}
	}
	checkCaps(r.Caps, "caps", errorf)
	if r.FreeQuota == 0 {
		r.FreeQuota = DefaultFreeQuota
	}
	if r.FreeQuota < 0 {
		errorf("free_quota", "must not be negative")
	}
	if r.Prices.OA < 0 || r.Prices.ZNS < 0 {
		errorf("prices", "prices must not be negative")
	}
	if r.PhoneField == "" {
		r.PhoneField = "phone"
	}
	if r.Batch == 0 {
		r.Batch = DefaultBatch
	}
	if r.Batch < 1 || r.Batch > 1000 {
		errorf("batch", "want 1 to 1000 recipients per batch, got %d", r.Batch)
	}
	needPlaces := false
	for _, a := range r.Agencies {
		if len(a.Areas) > 0 && !slices.Equal(a.Areas, []string{"*"}) {
			needPlaces = true
		}
	}
	if r.Places != "" {
		t, err := places.Load(r.Places)
		if err != nil {
			errorf("places", "%v", err)
		}
		r.places = t
	} else if needPlaces {
		errorf("places", "agencies name areas: give the crosswalk of communes and wards (places: crosswalk.csv)")
	}
	known := map[string]bool{}
	for _, a := range agencies {
		known[a.Code] = true
	}
	for _, code := range sortedKeys(r.Agencies) {
		a := r.Agencies[code]
		p := "agencies." + code
		if !known[code] {
			errorf(p, "no agency has code %q in the config's agencies:", code)
		}
		for _, role := range []struct {
			name  string
			names []string
		}{{"authors", a.Authors}, {"approvers", a.Approvers}, {"senders", a.Senders}} {
			for i, n := range role.names {
				if strings.TrimSpace(n) == "" {
					errorf(fmt.Sprintf("%s.%s[%d]", p, role.name, i), "empty name")
				}
			}
		}
		if len(a.Authors) > 0 && len(a.Approvers) > 0 && subset(a.Approvers, a.Authors) && len(a.Approvers) == 1 && len(a.Authors) == 1 {
			errorf(p+".approvers", "the only approver is the only author: an author cannot approve their own announcement, so nothing could ever be approved")
		}
		for i, name := range a.Areas {
			if name == "*" {
				a.province = true
				continue
			}
			if r.places == nil {
				continue
			}
			found := r.places.Resolve(name)
			switch len(found) {
			case 0:
				errorf(fmt.Sprintf("%s.areas[%d]", p, i), "no commune or ward is called %q in %s (current or former name)", name, r.Places)
			case 1:
				a.places = append(a.places, found[0].ID)
			default:
				errorf(fmt.Sprintf("%s.areas[%d]", p, i), "%q names several communes or wards (%s): write the full name", name, strings.Join(places.Names(found), ", "))
			}
		}
		if a.Caps != nil {
			checkCaps(*a.Caps, p+".caps", errorf)
		}
		r.Agencies[code] = a
	}
	for _, name := range sortedKeys(r.Templates) {
		t := r.Templates[name]
		if n := len([]rune(t.Text)); n > MaxText {
			errorf("templates."+name+".text", "%d characters, at most %d", n, MaxText)
		}
		if _, err := parseTemplate(name, t.Text); err != nil {
			errorf("templates."+name+".text", "%v", err)
		}
	}
}

func checkCaps(c Caps, p string, errorf func(path, format string, args ...any)) {
	if c.Daily < 0 || c.Monthly < 0 {
		errorf(p, "caps must not be negative")
	}
	if c.Daily > 0 && c.Monthly > 0 && c.Daily > c.Monthly {
		errorf(p+".daily", "the daily cap %d is above the monthly cap %d", c.Daily, c.Monthly)
	}
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// clock reads "HH:MM".
func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("want a time of day such as 21:00, got %q", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// In reports whether t falls in the window (in zone) and, if so, when it ends.
func (w Window) In(t time.Time, zone *time.Location) (time.Time, bool) {
	if w.Off || w.start == w.end {
		return time.Time{}, false
	}
	local := t.In(zone)
	m := local.Hour()*60 + local.Minute()
	var in bool
	if w.start < w.end {
		in = m >= w.start && m < w.end
	} else {
		in = m >= w.start || m < w.end
	}
	if !in {
		return time.Time{}, false
	}
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, zone)
	end := day.Add(time.Duration(w.end) * time.Minute)
	if !end.After(local) {
		end = day.AddDate(0, 0, 1).Add(time.Duration(w.end) * time.Minute)
	}
	return end, true
}

// capsOf returns the agency's caps.
func (r *Regulation) capsOf(agency string) Caps {
	if a, ok := r.Agencies[agency]; ok && a.Caps != nil {
		return *a.Caps
	}
	return r.Caps
}

// Role is what a person may do for an agency.
type Role string

const (
	Author   Role = "author"
	Approver Role = "approver"
	Sender   Role = "sender"
)

// has reports whether who holds role for the agency.
func (r *Regulation) has(agency string, role Role, who string) bool {
	a, ok := r.Agencies[agency]
	if !ok {
		return false
	}
	var names []string
	switch role {
	case Author:
		names = a.Authors
	case Approver:
		names = a.Approvers
	case Sender:
		names = a.Senders
	}
	return slices.Contains(names, who)
}
