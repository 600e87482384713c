package filesource

import (
	"context"
	"fmt"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.RegisterSource("file", pipeline.SourceSpec{
		Summary: "CSV and Excel (.xlsx) files an agency drops into a folder (or one at a URL), read whole on every poll",
		Config:  func() any { return NewOptions() },
		Build: func(_ context.Context, env pipeline.Env, cfg any) (pipeline.Source, error) {
			o, ok := cfg.(*Options)
			if !ok {
				return nil, fmt.Errorf("file source %q: options are %T, want *filesource.Options", env.Name, cfg)
			}
			return Open(env, o, nil)
		},
	})
}
