package evnspc

import (
	"net/url"
	"regexp"
	"strconv"

	"github.com/egov-bridge/egov-bridge/internal/webfetch"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Defaults.
const (
	DefaultBaseURL = "https://www.cskh.evnspc.vn"
	// DefaultDays: the window is today to today+4, what the site shows by default.
	DefaultDays = 4
	// PagePath is the public page fetched first for its session cookie; it is also
	// the Referer of the data requests.
	PagePath = "/TraCuu/LichNgungGiamCungCapDien"
	// DataPath answers an HTML fragment with the schedules of one unit.
	DataPath = "/TraCuu/GetThongTinLichNgungGiamCungCapDien"
)

// LongAnUnits are the power companies (Điện lực) of the former Long An province,
// PB0601 to PB0614, with the names used in notices.
var LongAnUnits = map[string]string{
	"PB0601": "Điện lực Tân An",
	"PB0602": "Điện lực Thủ Thừa",
	"PB0603": "Điện lực Đức Hòa",
	"PB0604": "Điện lực Cần Giuộc",
	"PB0605": "Điện lực Kiến Tường",
	"PB0606": "Điện lực Bến Lức",
	"PB0607": "Điện lực Cần Đước",
	"PB0608": "Điện lực Tân Thạnh",
	"PB0609": "Điện lực Tân Trụ",
	"PB0610": "Điện lực Đức Huệ",
	"PB0611": "Điện lực Thạnh Hóa",
	"PB0612": "Điện lực Vĩnh Hưng",
	"PB0613": "Điện lực Tân Hưng",
	"PB0614": "Điện lực Tầm Vu",
}

// Options are the `type: evn_spc_outage` keys of a source in the config file. The
// daemon decodes the common keys (name, schedule, mapping, agency, zone, ...)
// itself; zone is the zone the site writes its times in (the province's).
type Options struct {
	// Validate checks units rather than a `required` tag, so an empty list is
	// caught with the same message.
	Units     []string          `yaml:"units" doc:"The unit codes (madvi) to read, PB and four digits, one request each. Required. PB0601 to PB0614 are the former Long An (Tân An … Tầm Vu)." example:"[PB0601, PB0604]"`
	UnitNames map[string]string `yaml:"unit_names" default:"Long An's known names" doc:"Unit code to the name used in notices (DonVi); the 14 units of the former Long An are known, others default to their code." example:"{ PB0701: Điện lực Mỹ Tho }"`
	Days      int               `yaml:"days" min:"0" max:"31" doc:"The window read: schedules from today to today+days, in the source's zone."`
	BaseURL   string            `yaml:"base_url" doc:"The site; change it only for a test server or a mirror."`
	HTTP      webfetch.Options  `yaml:"http" doc:"How gently and patiently the site is asked: timeouts, retries, rate limit (one request a second by default), size cap."`
}

// NewOptions returns options with every default set.
func NewOptions() *Options {
	return &Options{Days: DefaultDays, BaseURL: DefaultBaseURL, HTTP: webfetch.NewOptions()}
}

var unitRE = regexp.MustCompile(`^PB\d{4}$`)

var _ pipeline.Validator = (*Options)(nil)

// Validate reports every semantic mistake, with field paths relative to the source.
func (o *Options) Validate(report pipeline.Reporter) {
	config.Check(o, report)
	if len(o.Units) == 0 {
		report("units", "is required: the unit codes to read, e.g. [PB0601, PB0602]")
	}
	seen := map[string]bool{}
	for i, u := range o.Units {
		f := "units[" + strconv.Itoa(i) + "]"
		if !unitRE.MatchString(u) {
			report(f, "%q is not a unit code: want PB and four digits, e.g. PB0601", u)
		}
		if seen[u] {
			report(f, "%s is listed twice", u)
		}
		seen[u] = true
	}
	for u := range o.UnitNames {
		if !unitRE.MatchString(u) {
			report("unit_names."+u, "%q is not a unit code: want PB and four digits", u)
		}
	}
	if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		report("base_url", "must be an absolute http or https URL, got %q", o.BaseURL)
	}
	o.HTTP.Validate("http.", report)
}

// name is a unit's name for notices.
func (o *Options) name(unit string) string {
	if n := o.UnitNames[unit]; n != "" {
		return n
	}
	if n := LongAnUnits[unit]; n != "" {
		return n
	}
	return unit
}
