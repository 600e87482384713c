package httpfeed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/webfetch"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Source reads a feed. It has no cursor (pipeline.FullSet): a read from a nil
// position fetches every page of every each value, one page per batch, and ends
// when the last page has been read; any failure or unknown shape on the way is an
// error, so the engine never mistakes a broken poll for disappeared records.
type Source struct {
	o      *Options
	name   string
	zone   *time.Location
	clock  pipeline.Clock
	client *webfetch.Client
	parse  parser
	html   *htmlParser
}

var (
	_ pipeline.Source  = (*Source)(nil)
	_ pipeline.FullSet = (*Source)(nil)
)

// Open builds a source from validated options; settings, when given, replace
// the HTTP client's (tests inject the rate limiter's clock and sleep).
func Open(env pipeline.Env, o *Options, settings *webfetch.Settings) (*Source, error) {
	s := &Source{o: o, name: env.Name, zone: env.Zone, clock: env.Clock}
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
	ws.Headers = nil // per request: they may hold placeholders
	var err error
	if s.client, err = webfetch.New(ws); err != nil {
		return nil, err
	}
	switch o.Format {
	case FormatJSON:
		jp := jsonParser{records: splitPath(o.JSON.Records)}
		if o.Pagination.Type == "next" && o.Pagination.Next != "" {
			jp.next = splitPath(o.Pagination.Next)
		}
		s.parse = jp
	case FormatHTML:
		next := ""
		if o.Pagination.Type == "next" {
			next = o.Pagination.Next
		}
		hp, err := newHTMLParser(o.HTML, next)
		if err != nil {
			return nil, err
		}
		s.parse, s.html = hp, &hp
	case FormatCSV:
		s.parse = csvParser{comma: []rune(o.CSV.Delimiter)[0], headerRow: o.CSV.HeaderRow}
	default:
		return nil, fmt.Errorf("httpfeed source %q: unknown format %q", env.Name, o.Format)
	}
	return s, nil
}

// FullSet marks the source as cursor-less.
func (s *Source) FullSet() {}

// Close releases nothing: the client's connections idle out.
func (s *Source) Close() error { return nil }

// position is where a read is: the read's day (so that {{today}} means one day
// for the whole read, even across midnight), the each value, and the page.
type position struct {
	Day   string `json:"day"`
	Each  int    `json:"each"`
	Page  int    `json:"page,omitempty"`
	Next  string `json:"next,omitempty"`
	Pages int    `json:"pages"` // pages read in this sequence
}

// ReadBatch fetches one page after pos and emits its records.
func (s *Source) ReadBatch(ctx context.Context, pos pipeline.Position, out pipeline.Emitter) (pipeline.Position, bool, error) {
	var p position
	if pos == nil {
		p = position{Day: midnight(s.clock(), s.zone).Format(time.DateOnly), Page: s.o.Pagination.Start}
		if s.o.Session.URL != "" {
			if _, err := s.client.Do(ctx, webfetch.Request{URL: s.o.Session.URL, Headers: s.expandHeaders(p)}); err != nil {
				return nil, false, fmt.Errorf("session page: %w", err)
			}
		}
	} else if err := json.Unmarshal(pos, &p); err != nil {
		return nil, false, fmt.Errorf("httpfeed position %q: %w", pos, err)
	}
	x, err := s.expander(p)
	if err != nil {
		return nil, false, err
	}
	req, err := s.request(p, x)
	if err != nil {
		return nil, false, err
	}
	resp, err := s.client.Do(ctx, req)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", s.where(p), err)
	}
	pg, err := s.parse.parse(resp.Body)
	// Only the first page of a sequence must hold records or say it has none; a
	// later empty page ends the sequence.
	if err == nil && len(pg.rows) == 0 && s.html != nil && p.Pages == 0 && !s.html.saysEmpty(resp.Body) {
		err = fmt.Errorf("%w: no element matches html.records %q and the page says none of html.empty", ErrUnknownShape, s.o.HTML.Records)
	}
	if err != nil {
		if resp.NotModified {
			s.client.Forget()
		}
		return nil, false, fmt.Errorf("%s: %w", s.where(p), err)
	}
	if pg.next == "" && s.o.Pagination.Type == "next" && s.o.Pagination.Next == "" {
		pg.next = linkNext(resp.Header)
	}
	for _, row := range pg.rows {
		if s.o.Each.Column != "" {
			row[s.o.Each.Column] = x.each
		}
		if err := out.Emit(row); err != nil {
			return nil, false, err
		}
	}
	next, done, err := s.advance(p, pg, resp.URL)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", s.where(p), err)
	}
	if done {
		return nil, true, nil
	}
	b, _ := json.Marshal(next)
	return b, false, nil
}

// advance moves past the page just read.
func (s *Source) advance(p position, pg page, base *url.URL) (position, bool, error) {
	pag := s.o.Pagination
	more := false
	switch pag.Type {
	case "page":
		more = len(pg.rows) > 0 && (pag.Size == 0 || len(pg.rows) >= pag.Size)
		p.Page++
		p.Next = ""
	case "next":
		if pg.next != "" {
			u, err := base.Parse(pg.next)
			if err != nil {
				return p, false, fmt.Errorf("%w: next link %q: %v", ErrUnknownShape, pg.next, err)
			}
			if u.Host != base.Host {
				return p, false, fmt.Errorf("next link %q leaves %s: refused", pg.next, base.Host)
			}
			if u.String() == base.String() {
				return p, false, fmt.Errorf("%w: the next link points to the page itself", ErrUnknownShape)
			}
			p.Next, more = u.String(), true
		}
	}
	if more {
		p.Pages++
		if p.Pages >= pag.MaxPages {
			return p, false, fmt.Errorf("more than pagination.max_pages (%d) pages: raise it if the feed really is that long", pag.MaxPages)
		}
		return p, false, nil
	}
	p = position{Day: p.Day, Each: p.Each + 1, Page: pag.Start}
	return p, p.Each >= max(1, len(s.o.Each.Values)), nil
}

func (s *Source) expander(p position) (expander, error) {
	day, err := time.ParseInLocation(time.DateOnly, p.Day, s.zone)
	if err != nil {
		return expander{}, fmt.Errorf("httpfeed position day %q: %w", p.Day, err)
	}
	x := expander{today: day, layout: transform.GoLayout(s.o.DateLayout)}
	if len(s.o.Each.Values) > 0 {
		if p.Each >= len(s.o.Each.Values) {
			return x, fmt.Errorf("httpfeed position each %d: only %d values (the config changed under a read)", p.Each, len(s.o.Each.Values))
		}
		x.each, x.hasEach = s.o.Each.Values[p.Each], true
	}
	return x, nil
}

// request builds the request for position p.
func (s *Source) request(p position, x expander) (webfetch.Request, error) {
	req := webfetch.Request{Method: s.o.Method, Headers: map[string]string{}}
	var err error
	for k, v := range s.o.Headers {
		if req.Headers[k], err = x.expand(v); err != nil {
			return req, err
		}
	}
	if p.Next != "" {
		req.Method, req.URL = http.MethodGet, p.Next
		return req, nil
	}
	if req.URL, err = x.expand(s.o.URL); err != nil {
		return req, err
	}
	values := func(m map[string]string) (url.Values, error) {
		if len(m) == 0 {
			return nil, nil
		}
		out := url.Values{}
		for k, v := range m {
			e, err := x.expand(v)
			if err != nil {
				return nil, err
			}
			out.Set(k, e)
		}
		return out, nil
	}
	if req.Query, err = values(s.o.Query); err != nil {
		return req, err
	}
	if req.Form, err = values(s.o.Form); err != nil {
		return req, err
	}
	if pag := s.o.Pagination; pag.Type == "page" {
		target := &req.Query
		if strings.EqualFold(req.Method, http.MethodPost) {
			target = &req.Form
		}
		if *target == nil {
			*target = url.Values{}
		}
		(*target).Set(pag.Param, fmt.Sprint(p.Page))
		if pag.SizeParam != "" {
			(*target).Set(pag.SizeParam, fmt.Sprint(pag.Size))
		}
	}
	return req, nil
}

func (s *Source) expandHeaders(p position) map[string]string {
	x, err := s.expander(p)
	out := map[string]string{}
	for k, v := range s.o.Headers {
		if err == nil {
			if e, err := x.expand(v); err == nil {
				out[k] = e
			}
		}
	}
	return out
}

// where names the request of p in an error.
func (s *Source) where(p position) string {
	w := "httpfeed"
	if len(s.o.Each.Values) > 0 && p.Each < len(s.o.Each.Values) {
		w += " " + s.o.Each.Values[p.Each]
	}
	if s.o.Pagination.Type != "" {
		w += fmt.Sprintf(" page %d", p.Pages+1)
	}
	return w
}

// linkNext reads the rel="next" target of a Link header.
func linkNext(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(part, ";")
			if !ok {
				continue
			}
			for _, prm := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(prm), "=")
				if strings.EqualFold(k, "rel") && strings.EqualFold(strings.Trim(val, `"`), "next") {
					return strings.Trim(strings.TrimSpace(target), "<>")
				}
			}
		}
	}
	return ""
}
