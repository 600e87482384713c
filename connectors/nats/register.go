package natssink

import (
	"context"
	"fmt"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.RegisterSink("nats", pipeline.SinkSpec{
		Summary: "publishes each event to a NATS JetStream stream on <prefix>.<entity>.<agency>, deduplicated by event id",
		Config:  func() any { return NewOptions() },
		Build: func(ctx context.Context, env pipeline.Env, cfg any) (pipeline.Sink, error) {
			o, ok := cfg.(*Options)
			if !ok {
				return nil, fmt.Errorf("nats sink %q: options are %T, want *natssink.Options", env.Name, cfg)
			}
			return New(ctx, env, *o)
		},
	})
}
