package pgtable

import (
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/sinktest"
)

func TestConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Harness {
		f := newFixture(t)
		return sinktest.Harness{
			Sink:     f.sink,
			Received: func(t *testing.T) []pipeline.Event { return f.received(t) },
			Dedupes:  true, // event_id is the primary key
		}
	}, sinktest.Parallel()) // each case has a schema of its own
}
