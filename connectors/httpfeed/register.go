package httpfeed

import (
	"context"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.AddSource("httpfeed", "a JSON, HTML or CSV feed over HTTP, read whole on every poll (pages, one request per each value)", NewOptions,
		func(_ context.Context, env pipeline.Env, o *Options) (pipeline.Source, error) {
			return Open(env, o, nil)
		})
}
