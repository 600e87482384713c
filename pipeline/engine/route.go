package engine

import (
	"path"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Router decides which sinks receive an event.
type Router struct{ routes []Route }

// NewRouter compiles routes; patterns were checked when the config loaded.
func NewRouter(routes []Route) *Router { return &Router{routes: routes} }

// Sinks returns the names of the sinks an event goes to, each once, in route order.
func (r *Router) Sinks(ev *pipeline.Event) []string {
	var out []string
	seen := map[string]bool{}
	for _, rt := range r.routes {
		if !matchAny(rt.Sources, ev.Source) || !matchAny(rt.Entities, ev.Entity) {
			continue
		}
		name := ev.Type
		if ev.Rule != "" {
			name = ev.Rule
		}
		if !matchAny(rt.Events, name) {
			continue
		}
		for _, s := range rt.To {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

func matchAny(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
