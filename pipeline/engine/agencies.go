package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/announce"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
)

// DeadlinesConfig sets the evaluation of timer rules (rules with at:).
type DeadlinesConfig struct {
	// Interval is how often each source's due timers are evaluated; default 1m.
	Interval config.Duration `yaml:"interval" default:"1m" doc:"How often each source's due timers are evaluated."`
}

// checkAgencies validates the agencies: list and gives a source owned by an
// agency that agency, unless the source names its own (which must then agree).
func checkAgencies(d *config.Decoder, cfg *Config) {
	sources := map[string]bool{}
	for _, s := range cfg.Sources {
		sources[s.Name] = true
	}
	figures.Check(cfg.Agencies, sources, func(path, msg string) { d.Errorf(path, "%s", msg) })
	sinks := map[string]bool{}
	for _, s := range cfg.Sinks {
		sinks[s.Name] = true
	}
	owned := map[string]bool{} // a second owner is reported by figures.Check
	for i, a := range cfg.Agencies {
		if a.OA != "" && !sinks[a.OA] {
			d.Errorf(fmt.Sprintf("agencies[%d].oa", i), "no sink is named %q (an agency's own OA is a zalo sink with its credentials)", a.OA)
		}
		for j, name := range a.Sources {
			if owned[name] {
				continue
			}
			owned[name] = true
			for k := range cfg.Sources {
				sc := &cfg.Sources[k]
				if sc.Name != name {
					continue
				}
				switch sc.Agency {
				case "":
					sc.Agency = a.Code
				case a.Code:
				default:
					d.Errorf(fmt.Sprintf("agencies[%d].sources[%d]", i, j), "source %q says agency: %s, but agency %q lists it", name, sc.Agency, a.Code)
				}
			}
		}
	}
	checkOfficialRules(d, cfg)
}

// checkOfficialRules reports a source whose mapping addresses the officials of
// the record's agency while its agency is not among the declared agencies: its
// records would reach no official. (Without any agencies: list there are no
// officials at all; such notices are recorded as undeliverable.)
func checkOfficialRules(d *config.Decoder, cfg *Config) {
	if len(cfg.Agencies) == 0 {
		return
	}
	dir := figures.NewDirectory(cfg.Agencies)
	for i, sc := range cfg.Sources {
		if sc.Map == nil || sc.Agency == "" {
			continue
		}
		rules := sc.Map.OfficialRules()
		if len(rules) == 0 {
			continue
		}
		if _, ok := dir.Lookup(sc.Agency); !ok {
			d.Errorf(fmt.Sprintf("sources[%d].agency", i), "no agency has code %q in agencies: (rule %s of the mapping notifies the officials of the record's agency)", sc.Agency, rules[0])
		}
	}
}

// officials is what sinks see of the agencies' officials (pipeline.Env.Officials).
func (d *Daemon) officials() func(agency, rule string) []pipeline.Official {
	if len(d.Config.Agencies) == 0 {
		return nil
	}
	return figures.NewDirectory(d.Config.Agencies).Officials
}

// AnnouncementsConfig points to the regulation file (see announce.Regulation).
type AnnouncementsConfig struct {
	Regulation string `yaml:"regulation" doc:"The channel regulation file (roles, reach, quiet hours, caps per agency); without it there are no announcements." example:"regulation.yaml"`
	// Poll is how often due announcements are looked for; default 5s.
	Poll config.Duration `yaml:"poll" default:"5s" doc:"How often the daemon looks for announcements due."`
	// Residence locates citizens for the area segment (announce.Residence).
	Residence []announce.Residence `yaml:"residence" doc:"The synced records that place a citizen in a commune or ward: the area segment also reaches the followers whose linked phone is the phone of a record naming one of its communes (current or former name, through the regulation's crosswalk)."`

	Rules *announce.Regulation `yaml:"-"` // loaded from Regulation
}

// loadRegulation reads the announcements' regulation, its mistakes reported
// with its own file and lines.
func loadRegulation(d *config.Decoder, cfg *Config) {
	a := &cfg.Announcements
	if a.Poll <= 0 {
		a.Poll = config.Duration(5 * time.Second)
	}
	if a.Regulation == "" {
		if len(a.Residence) > 0 {
			d.Errorf("announcements.residence", "needs the channel regulation (announcements.regulation) and its crosswalk")
		}
		return
	}
	a.Regulation = d.Resolve(a.Regulation)
	r, err := announce.LoadRegulation(a.Regulation, cfg.Agencies)
	var errs config.Errors
	switch {
	case errors.As(err, &errs):
		d.Add(errs...)
	case err != nil:
		d.Errorf("announcements.regulation", "%v", err)
	}
	a.Rules = r
	if r != nil && len(a.Residence) > 0 && r.Places == "" {
		d.Errorf("announcements.residence", "the regulation %s has no crosswalk of communes and wards (places:) to match the records' places with", a.Regulation)
	}
}
