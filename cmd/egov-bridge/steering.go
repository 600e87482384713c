package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/egov-bridge/egov-bridge/connectors/zalo"
	"github.com/egov-bridge/egov-bridge/pipeline/api"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
	"github.com/egov-bridge/egov-bridge/pipeline/page"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// steering mounts the API (/api/v1) and the steering page (/) on the daemon's
// HTTP server; feedback answers go out through the first zalo sink.
func steering() []func(*http.ServeMux, *engine.Daemon) {
	return []func(*http.ServeMux, *engine.Daemon){
		func(mux *http.ServeMux, d *engine.Daemon) {
			api.New(d, api.Options{Answerer: zaloAnswerer(d)}).Register(mux)
		},
		page.Mount,
	}
}

// zaloAnswerer is the first zalo sink, in config order, or nil.
func zaloAnswerer(d *engine.Daemon) api.FeedbackAnswerer {
	for _, sc := range d.Config.Sinks {
		if z, ok := d.Sinks[sc.Name].(*zalo.Sink); ok {
			return answerer{z}
		}
	}
	return nil
}

// answerer tells the API when the zalo sink takes no citizens' messages.
type answerer struct{ z *zalo.Sink }

func (a answerer) AnswerFeedback(ctx context.Context, ref, text, by string) (store.Feedback, error) {
	f, err := a.z.AnswerFeedback(ctx, ref, text, by)
	if errors.Is(err, zalo.ErrNoCitizens) {
		return f, api.ErrAnswersOff
	}
	return f, err
}
