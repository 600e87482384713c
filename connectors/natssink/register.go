package natssink

import (
	"context"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.AddSink("nats", "publishes each event to a NATS JetStream stream on <prefix>.<entity>.<agency>, deduplicated by event id", NewOptions,
		func(ctx context.Context, env pipeline.Env, o *Options) (pipeline.Sink, error) {
			return New(ctx, env, *o)
		})
}
