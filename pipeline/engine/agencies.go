package engine

import (
	"fmt"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
)

// DeadlinesConfig sets the evaluation of timer rules (rules with at:).
type DeadlinesConfig struct {
	// Interval is how often each source's due timers are evaluated; default 1m.
	Interval config.Duration `yaml:"interval"`
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
	for i, a := range cfg.Agencies {
		if a.OA != "" && !sinks[a.OA] {
			d.Errorf(fmt.Sprintf("agencies[%d].oa", i), "no sink is named %q (an agency's own OA is a zalo sink with its credentials)", a.OA)
		}
		for j, name := range a.Sources {
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
}
