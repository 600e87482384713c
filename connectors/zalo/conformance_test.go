package zalo

import (
	"context"
	"sync"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/sinktest"
)

// asNotice gives the suite's plain events a message to a follower, quoting the
// event id, so the citizen's Zalo (the fake) is the consumer the suite inspects.
type asNotice struct {
	*Sink
	mu   sync.Mutex
	sent map[string]pipeline.Event
}

func (a *asNotice) Deliver(ctx context.Context, ev *pipeline.Event) error {
	c := *ev
	c.Message = &pipeline.Message{Phone: phoneN(1), Text: "Hồ sơ " + ev.Key + " đã được cập nhật. [" + ev.ID + "]"}
	a.mu.Lock()
	a.sent[ev.ID] = *ev
	a.mu.Unlock()
	return a.Sink.Deliver(ctx, &c)
}

func TestConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sinktest.Harness {
		h := newHarness(t, nil)
		h.follower("u1", phoneN(1), true)
		a := &asNotice{Sink: h.sink, sent: map[string]pipeline.Event{}}
		received := func(t *testing.T) []pipeline.Event {
			msgs, _, _ := h.fake.snapshot()
			a.mu.Lock()
			defer a.mu.Unlock()
			var out []pipeline.Event
			for _, id := range idsInTexts(msgs) {
				out = append(out, a.sent[id])
			}
			return out
		}
		// The sink records every notice it sent and never sends one twice.
		return sinktest.Harness{Sink: a, Received: received, Dedupes: true}
	})
}
