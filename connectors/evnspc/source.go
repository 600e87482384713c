package evnspc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/webfetch"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// The columns of an emitted row.
const (
	ColKey      = "MaLich"  // unit|area|start (UTC, RFC 3339): the site gives no id
	ColUnit     = "MaDonVi" // PB0601
	ColUnitName = "DonVi"   // Điện lực Tân An
	ColArea     = "KhuVuc"
	ColStart    = "TuNgay" // time.Time, UTC
	ColEnd      = "DenNgay"
	ColReason   = "LyDo"
)

// Columns lists every column of a row, in a stable order.
var Columns = []string{ColKey, ColUnit, ColUnitName, ColArea, ColStart, ColEnd, ColReason}

// Source reads the outage schedules of EVN SPC (the southern power corporation)
// for a list of units. It has no cursor (pipeline.FullSet): a read from the start
// fetches the site's page once for its session cookie, then one unit per batch.
type Source struct {
	o      *Options
	zone   *time.Location
	clock  pipeline.Clock
	client *webfetch.Client
	page   string // the public page: session pre-fetch and Referer
	data   string
}

var (
	_ pipeline.Source    = (*Source)(nil)
	_ pipeline.FullSet   = (*Source)(nil)
	_ pipeline.Describer = (*Source)(nil)
)

// Open builds a source from validated options; settings, when given, replace
// the HTTP client's (tests inject the rate limiter's clock and sleep).
func Open(env pipeline.Env, o *Options, settings *webfetch.Settings) (*Source, error) {
	s := &Source{o: o, zone: env.Zone, clock: env.Clock}
	if s.zone == nil {
		s.zone = transform.DefaultZone()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	ws := o.HTTP.Settings(s.clock)
	if settings != nil {
		ws = *settings
	}
	var err error
	if s.client, err = webfetch.New(ws); err != nil {
		return nil, err
	}
	base := strings.TrimRight(o.BaseURL, "/")
	s.page, s.data = base+PagePath, base+DataPath
	return s, nil
}

// FullSet marks the source as cursor-less.
func (s *Source) FullSet() {}

// Close releases nothing.
func (s *Source) Close() error { return nil }

// Columns names the columns of every row.
func (s *Source) Columns(context.Context) ([]string, error) { return slices.Clone(Columns), nil }

// position: the read's first day (one window for the whole read, even across
// midnight) and the next unit.
type position struct {
	Day  string `json:"day"`
	Unit int    `json:"unit"`
}

// ReadBatch reads one unit's schedules.
func (s *Source) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	var p position
	if pos == nil {
		y, m, d := s.clock().In(s.zone).Date()
		p.Day = time.Date(y, m, d, 0, 0, 0, 0, s.zone).Format(time.DateOnly)
		// The data action answers only within a session started by the page.
		if _, err := s.client.Do(ctx, webfetch.Request{URL: s.page}); err != nil {
			return nil, false, fmt.Errorf("EVN SPC session page: %w", err)
		}
	} else if err := json.Unmarshal(pos, &p); err != nil {
		return nil, false, fmt.Errorf("evn_spc_outage position %q: %w", pos, err)
	}
	if p.Unit >= len(s.o.Units) {
		return nil, true, nil // the unit list shrank under a read
	}
	unit := s.o.Units[p.Unit]
	from, err := time.ParseInLocation(time.DateOnly, p.Day, s.zone)
	if err != nil {
		return nil, false, fmt.Errorf("evn_spc_outage position day %q: %w", p.Day, err)
	}
	const layout = "02-01-2006"
	resp, err := s.client.Do(ctx, webfetch.Request{
		URL: s.data,
		Query: url.Values{
			"madvi":    {unit},
			"tuNgay":   {from.Format(layout)},
			"denNgay":  {from.AddDate(0, 0, s.o.Days).Format(layout)},
			"ChucNang": {"MaDonVi"},
		},
		Headers: map[string]string{"Referer": s.page, "X-Requested-With": "XMLHttpRequest"},
	})
	if err != nil {
		return nil, false, fmt.Errorf("EVN SPC %s: %w", unit, err)
	}
	outages, err := parsePage(resp.Body, s.zone)
	if err != nil {
		if resp.NotModified {
			s.client.Forget()
		}
		return nil, false, fmt.Errorf("EVN SPC %s: %w", unit, err)
	}
	seen := map[string]bool{}
	for _, o := range outages {
		key := Key(unit, o.Area, o.Start)
		if seen[key] { // the site sometimes lists one schedule twice
			continue
		}
		seen[key] = true
		row := pipeline.Row{
			ColKey: key, ColUnit: unit, ColUnitName: s.o.name(unit), ColArea: o.Area,
			ColStart: o.Start, ColEnd: o.End, ColReason: o.Reason,
		}
		if err := out.Emit(row); err != nil {
			return nil, false, err
		}
	}
	p.Unit++
	if p.Unit >= len(s.o.Units) {
		return nil, true, nil
	}
	next, _ := json.Marshal(p)
	return next, false, nil
}

// Key is a schedule's identity: the site gives none, and a schedule is known by
// where and when it starts; a moved end or a new reason is an update of it.
func Key(unit, area string, start time.Time) string {
	return pipeline.JoinKey(unit, transform.CollapseSpaces(transform.NFC(area)), start.UTC().Format(time.RFC3339))
}
