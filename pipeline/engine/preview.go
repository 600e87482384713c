package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// PreviewRow is what one source row would become.
type PreviewRow struct {
	RowKey     string            `json:"row_key"`
	Record     *pipeline.Record  `json:"record,omitempty"`
	Events     []*pipeline.Event `json:"events,omitempty"`
	Quarantine string            `json:"quarantine,omitempty"`
}

// Preview reads up to limit rows of a source from its beginning and shows what they
// would produce against the stored snapshot (st may be nil: everything is new). It
// writes nothing anywhere.
func Preview(ctx context.Context, cfg *Config, source string, limit int, st store.Store, opts Options) ([]PreviewRow, error) {
	var sc *SourceConfig
	for i := range cfg.Sources {
		if cfg.Sources[i].Name == source {
			sc = &cfg.Sources[i]
		}
	}
	if sc == nil {
		return nil, fmt.Errorf("no source named %q in %s", source, cfg.File)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	sc.Map.SetClock(opts.Clock)
	d := &Daemon{Config: cfg, Logger: opts.Logger, Clock: opts.Clock}
	src, err := sc.Spec.Build(ctx, d.env(sc.Name, sc.Location), sc.Options)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	defer src.Close()

	var rows []pipeline.Row
	var pos pipeline.Position
	for len(rows) < limit {
		next, done, err := src.ReadBatch(ctx, pos, pipeline.EmitFunc(func(r pipeline.Row) error {
			if len(rows) < limit {
				rows = append(rows, r)
			}
			return nil
		}))
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", source, err)
		}
		if done {
			break
		}
		pos = next
	}

	now := opts.Clock().UTC()
	out := make([]PreviewRow, 0, len(rows))
	var keys []string
	for _, row := range rows {
		pr := PreviewRow{RowKey: sc.Map.RowKey(row)}
		rec, err := sc.Map.Apply(row, sc.Agency)
		var re *mapping.RowError
		switch {
		case errors.As(err, &re):
			pr.Quarantine = re.Error()
		case err != nil:
			return nil, err
		default:
			pr.Record = &rec
			keys = append(keys, rec.Key)
		}
		out = append(out, pr)
	}
	snap := map[string]store.SnapshotEntry{}
	if st != nil && len(keys) > 0 {
		if snap, err = st.Snapshot(ctx, sc.Name, sc.Map.Entity, keys); err != nil {
			return nil, err
		}
	}
	for i := range out {
		rec := out[i].Record
		if rec == nil {
			continue
		}
		hash := rec.Hash()
		var prior *pipeline.Prior
		if prev, ok := snap[rec.Key]; ok {
			prior = &pipeline.Prior{Hash: prev.Hash, Version: prev.Version, Fields: sc.Map.Typed(prev.Fields), Deleted: prev.Deleted}
		}
		ev := pipeline.Diff(sc.Name, prior, *rec, hash, false, now)
		if ev == nil {
			continue
		}
		fired := sc.Map.Fire(ev)
		reasons := make([]string, len(fired.Failed))
		for k, f := range fired.Failed {
			reasons[k] = f.Error()
		}
		if len(reasons) > 0 {
			out[i].Quarantine = strings.Join(reasons, "; ")
		}
		out[i].Events = append([]*pipeline.Event{ev}, fired.Events...)
	}
	return out, nil
}
