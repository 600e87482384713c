package natssink

import (
	"encoding/json"
	"testing"

	"github.com/egov-bridge/egov-bridge/internal/testnats"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/sinktest"
)

func TestConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Harness {
		s, o := newSink(t, nil)
		return sinktest.Harness{
			Sink:     s,
			Received: func(t *testing.T) []pipeline.Event { return received(t, o) },
			Dedupes:  true, // Nats-Msg-Id within the duplicate window
		}
	})
}

// received decodes every event the sink's stream holds, in stream order.
func received(t *testing.T, o Options) []pipeline.Event {
	t.Helper()
	var out []pipeline.Event
	for _, m := range testnats.Messages(t, o.URL, o.Stream) {
		var ev pipeline.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatalf("message on %s is not an event: %v", m.Subject(), err)
		}
		out = append(out, ev)
	}
	return out
}
