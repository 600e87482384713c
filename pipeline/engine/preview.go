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
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
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
// writes nothing anywhere. Citizen fields (the mapping's `mask:`) are masked in
// records, events, messages and quarantine reasons unless unmasked is set.
func Preview(ctx context.Context, cfg *Config, source string, limit int, st store.Store, unmasked bool, opts Options) ([]PreviewRow, error) {
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
	var records []pipeline.Record
	var recordRow []int          // out index of each record
	var raws []map[string]string // each out row's raw text, to mask its reasons
	for _, row := range rows {
		pr := PreviewRow{RowKey: sc.Map.RowKey(row)}
		raws = append(raws, row.Text())
		rec, err := sc.Map.Apply(row, sc.Agency)
		var re *mapping.RowError
		switch {
		case errors.As(err, &re):
			pr.Quarantine = re.Error()
		case err != nil:
			return nil, err
		default:
			pr.Record = &rec
			records = append(records, rec)
			recordRow = append(recordRow, len(out))
		}
		out = append(out, pr)
	}
	// The job's own change detection, into a batch that is shown and never
	// committed, so a preview cannot drift from what a run does.
	j := &Job{Name: sc.Name, Map: sc.Map, Agency: sc.Agency, Router: NewRouter(cfg.Routes),
		Clock: opts.Clock, Logger: opts.Logger, Metrics: NewMetrics()}
	snap := map[string]store.SnapshotEntry{}
	snapshotMode := true // nothing stored: a run would take these rows as its first sync
	if st != nil {
		j.Store = st
		cur, err := st.Cursor(ctx, sc.Name)
		if err != nil {
			return nil, err
		}
		snapshotMode = !cur.InitialDone
		if len(records) > 0 {
			if snap, err = j.stored(ctx, records); err != nil {
				return nil, err
			}
		}
	}
	var b store.Batch
	j.detect(records, nil, snap, func(int, bool) bool { return snapshotMode }, now, &b)
	byKey := map[string]int{}
	for i, rec := range records {
		byKey[rec.Key] = recordRow[i] // a key read twice: its events belong to its last row
	}
	for _, oe := range b.Events {
		if i, ok := byKey[oe.Event.Key]; ok {
			out[i].Events = append(out[i].Events, oe.Event)
		}
	}
	for _, q := range b.Quarantine {
		if i, ok := byKey[q.RowKey]; ok {
			out[i].Quarantine = strings.TrimPrefix(out[i].Quarantine+"; "+q.Reason, "; ")
		}
	}
	if !unmasked {
		for i := range out {
			maskPreview(sc.Map, &out[i], raws[i])
		}
	}
	return out, nil
}

// maskPreview masks the citizen data of one preview row in place; the record and
// events are copies made for the preview, so nothing else sees the change.
func maskPreview(m *mapping.Mapping, r *PreviewRow, raw map[string]string) {
	r.RowKey = m.MaskText(r.RowKey, raw)
	r.Quarantine = m.MaskText(r.Quarantine, raw)
	if r.Record == nil {
		return
	}
	fields := r.Record.Fields
	masked := *r.Record
	masked.Fields = m.MaskRecord(fields)
	r.Record = &masked
	for k, ev := range r.Events {
		e := *ev
		e.Before, e.After, e.AfterJSON = m.MaskRecord(ev.Before), m.MaskRecord(ev.After), nil
		if ev.Message != nil {
			msg := *ev.Message
			msg.Text = m.MaskRecordText(msg.Text, fields)
			if msg.Phone != "" {
				msg.Phone = transform.MaskPhone(msg.Phone)
			}
			e.Message = &msg
		}
		r.Events[k] = &e
	}
}
