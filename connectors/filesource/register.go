package filesource

import (
	"context"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.AddSource("file", "CSV and Excel (.xlsx) files an agency drops into a folder (or one at a URL), read whole on every poll", NewOptions,
		func(_ context.Context, env pipeline.Env, o *Options) (pipeline.Source, error) {
			return Open(env, o, nil)
		})
}
