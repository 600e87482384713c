package engine

import (
	"strings"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func TestRouterMatchesEventsSourcesAndEntities(t *testing.T) {
	r := NewRouter([]Route{
		{Events: []string{"*"}, To: []string{"log"}},
		{Events: []string{"dossier.*"}, To: []string{"zalo"}},
		{Events: []string{"created", "updated"}, Entities: []string{"dossier"}, To: []string{"pg", "log"}},
		{Sources: []string{"evn-*"}, To: []string{"ioc"}},
	})
	tests := []struct {
		ev   pipeline.Event
		want string
	}{
		{pipeline.Event{Type: "created", Entity: "dossier", Source: "motcua"}, "log pg"},
		{pipeline.Event{Type: "updated", Rule: "dossier.result_ready", Entity: "dossier", Source: "motcua"}, "log zalo"},
		{pipeline.Event{Type: "created", Entity: "outage", Source: "evn-longan"}, "log ioc"},
		{pipeline.Event{Type: "deleted", Entity: "dossier", Source: "motcua"}, "log"},
	}
	for _, tt := range tests {
		if got := strings.Join(r.Sinks(&tt.ev), " "); got != tt.want {
			t.Errorf("Sinks(%s/%s/%s) = %q, want %q", tt.ev.Source, tt.ev.Entity, tt.ev.Type+tt.ev.Rule, got, tt.want)
		}
	}
	// A batch's cache answers as the router does, asked in any order and again.
	c := routeCache{router: r}
	for range 2 {
		for i := len(tests) - 1; i >= 0; i-- {
			tt := tests[i]
			if got := strings.Join(c.sinks(&tt.ev), " "); got != tt.want {
				t.Errorf("cached sinks(%s/%s/%s) = %q, want %q", tt.ev.Source, tt.ev.Entity, tt.ev.Type+tt.ev.Rule, got, tt.want)
			}
		}
	}
}
