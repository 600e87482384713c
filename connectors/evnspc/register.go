package evnspc

import (
	"context"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.AddSource("evn_spc_outage", "EVN SPC power-outage schedules (lịch ngừng giảm cung cấp điện) of a list of units, read whole on every poll", NewOptions,
		func(_ context.Context, env pipeline.Env, o *Options) (pipeline.Source, error) {
			return Open(env, o, nil)
		})
}
