package evnspc

import (
	"context"
	"fmt"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.RegisterSource("evn_spc_outage", pipeline.SourceSpec{
		Summary: "EVN SPC power-outage schedules (lịch ngừng giảm cung cấp điện) of a list of units, read whole on every poll",
		Config:  func() any { return NewOptions() },
		Build: func(_ context.Context, env pipeline.Env, cfg any) (pipeline.Source, error) {
			o, ok := cfg.(*Options)
			if !ok {
				return nil, fmt.Errorf("evn_spc_outage source %q: options are %T, want *evnspc.Options", env.Name, cfg)
			}
			return Open(env, o, nil)
		},
	})
}
