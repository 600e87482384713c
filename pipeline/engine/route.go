package engine

import (
	"path"
	"slices"

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

// routeCache remembers a router's answers within one batch: which sinks an event
// goes to depends only on its source, entity and type (or rule), and a batch's
// events share a handful of those. The lists it returns are shared between
// events and clipped, so appending to one copies it.
type routeCache struct {
	router *Router
	known  map[[4]string][]string
}

func (c *routeCache) sinks(ev *pipeline.Event) []string {
	k := [4]string{ev.Source, ev.Entity, ev.Type, ev.Rule}
	if out, ok := c.known[k]; ok {
		return out
	}
	out := slices.Clip(c.router.Sinks(ev))
	if c.known == nil {
		c.known = make(map[[4]string][]string, 4)
	}
	c.known[k] = out
	return out
}
