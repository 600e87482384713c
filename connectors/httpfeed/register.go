package httpfeed

import (
	"context"
	"fmt"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.RegisterSource("httpfeed", pipeline.SourceSpec{
		Summary: "a JSON, HTML or CSV feed over HTTP, read whole on every poll (pages, one request per each value)",
		Config:  func() any { return NewOptions() },
		Build: func(_ context.Context, env pipeline.Env, cfg any) (pipeline.Source, error) {
			o, ok := cfg.(*Options)
			if !ok {
				return nil, fmt.Errorf("httpfeed source %q: options are %T, want *httpfeed.Options", env.Name, cfg)
			}
			return Open(env, o, nil)
		},
	})
}
