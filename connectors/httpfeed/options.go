package httpfeed

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/andybalholm/cascadia"

	"github.com/egov-bridge/egov-bridge/internal/webfetch"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Defaults.
const (
	DefaultDateLayout = "dd/MM/yyyy"
	DefaultMaxPages   = 100
	DefaultPageParam  = "page"
)

// Formats of an answer.
const (
	FormatJSON = "json"
	FormatHTML = "html"
	FormatCSV  = "csv"
)

// Options are the `type: httpfeed` keys of a source in the config file. The daemon
// decodes the common keys (name, schedule, mapping, agency, zone, ...) itself.
//
// url and format are required. Values of url, query, form and headers may hold
// placeholders: {{today}}, {{today+N}}, {{today-N}} (a date in the source's zone,
// written with date_layout), {{today+N|yyyy-MM-dd}} (with its own layout) and
// {{each}} (the current value of each.values).
type Options struct {
	// URL is the address of the data, http or https.
	URL string `yaml:"url"`
	// Method is GET (default) or POST.
	Method string `yaml:"method"`
	// Query parameters added to the URL.
	Query map[string]string `yaml:"query"`
	// Form is the body of a POST, form-encoded.
	Form map[string]string `yaml:"form"`
	// Headers sent with every request of this source (Referer, X-Requested-With,
	// an API key with ${VAR}).
	Headers map[string]string `yaml:"headers"`
	// DateLayout writes {{today…}} placeholders without their own layout.
	DateLayout string `yaml:"date_layout"`
	// Each makes one request (one page sequence) per value, e.g. per unit code.
	Each EachOptions `yaml:"each"`
	// Session is fetched first on every poll, for the cookies the data needs.
	Session SessionOptions `yaml:"session"`
	// Format is how the answer is read: json, html or csv.
	Format string `yaml:"format"`
	// JSON says where the records are in a JSON answer.
	JSON JSONOptions `yaml:"json"`
	// HTML says how to find records and fields in an HTML answer.
	HTML HTMLOptions `yaml:"html"`
	// CSV says how to read a CSV answer.
	CSV CSVOptions `yaml:"csv"`
	// Pagination follows pages by number or by a next link.
	Pagination PaginationOptions `yaml:"pagination"`
	// HTTP is how gently and patiently the server is asked.
	HTTP webfetch.Options `yaml:"http"`
}

// EachOptions: one request per value.
type EachOptions struct {
	// Values are substituted for {{each}}, one request each, in this order.
	Values []string `yaml:"values"`
	// Column, when set, adds the value to every record under this name (the unit
	// a record came from, when the answer does not say).
	Column string `yaml:"column"`
}

// SessionOptions: a page fetched first for cookies.
type SessionOptions struct {
	// URL is fetched (GET) at the start of every poll; its cookies go with the
	// data requests. Empty: no pre-fetch.
	URL string `yaml:"url"`
}

// JSONOptions: where the records are.
type JSONOptions struct {
	// Records is the dot path of the array of records, e.g. data.items; empty
	// means the answer itself is the array. A path that is missing from an answer
	// is an error (an unknown shape), never an empty set.
	Records string `yaml:"records"`
}

// HTMLOptions: records and fields by CSS selector (github.com/PuerkitoBio/goquery).
type HTMLOptions struct {
	// Records selects one element per record, e.g. "table.lich tbody tr".
	Records string `yaml:"records"`
	// Fields maps a column name to a selector inside the record; "sel@attr" reads
	// an attribute, "" or "." the record's own text. Text is trimmed with white
	// space collapsed.
	Fields map[string]string `yaml:"fields"`
	// Empty lists texts that mean "no records" (matched ignoring case and
	// diacritics). A page with no record and none of these texts is an error.
	Empty []string `yaml:"empty"`
}

// CSVOptions: how to read a CSV answer.
type CSVOptions struct {
	// Delimiter is one character; default ",".
	Delimiter string `yaml:"delimiter"`
	// HeaderRow is the 1-based line with the column names; lines before it are
	// skipped. Default 1.
	HeaderRow int `yaml:"header_row"`
}

// PaginationOptions: how to get every page.
type PaginationOptions struct {
	// Type is "" (one request), "page" (a page-number parameter) or "next" (a
	// next link in the answer or the Link header).
	Type string `yaml:"type"`
	// Param is the page-number parameter (page); Start its first value (1).
	Param string `yaml:"param"`
	Start int    `yaml:"start"`
	// SizeParam and Size, when set, ask for Size records a page; a page with
	// fewer is the last. Otherwise an empty page is the last.
	SizeParam string `yaml:"size_param"`
	Size      int    `yaml:"size"`
	// Next is where the next link is: a JSON dot path (json) or a CSS selector
	// whose href is read (html). Empty: the Link header (rel="next"). A missing
	// or empty link ends the sequence.
	Next string `yaml:"next"`
	// MaxPages bounds one sequence; more pages are an error, not a silent cut
	// (which would make the records on the pages not read look deleted).
	MaxPages int `yaml:"max_pages"`
}

// NewOptions returns options with every default set.
func NewOptions() *Options {
	return &Options{
		Method:     "GET",
		DateLayout: DefaultDateLayout,
		CSV:        CSVOptions{Delimiter: ",", HeaderRow: 1},
		Pagination: PaginationOptions{Param: DefaultPageParam, Start: 1, MaxPages: DefaultMaxPages},
		HTTP:       webfetch.NewOptions(),
	}
}

var _ pipeline.Validator = (*Options)(nil)

// Validate reports every semantic mistake, with field paths relative to the source.
func (o *Options) Validate(report pipeline.Reporter) {
	hasEach := len(o.Each.Values) > 0
	if strings.TrimSpace(o.URL) == "" {
		report("url", "is required")
	} else {
		checkURL(report, "url", o.URL)
		if err := checkPlaceholders(o.URL, hasEach); err != nil {
			report("url", "%v", err)
		}
	}
	if o.Session.URL != "" {
		checkURL(report, "session.url", o.Session.URL)
	}
	switch strings.ToUpper(o.Method) {
	case "GET":
		if len(o.Form) > 0 {
			report("form", "is the body of a POST: set method: POST or use query")
		}
	case "POST":
	default:
		report("method", "must be GET or POST, got %q", o.Method)
	}
	for _, m := range []struct {
		field string
		vals  map[string]string
	}{{"query", o.Query}, {"form", o.Form}, {"headers", o.Headers}} {
		for k, v := range m.vals {
			if err := checkPlaceholders(v, hasEach); err != nil {
				report(m.field+"."+k, "%v", err)
			}
		}
	}
	for i, v := range o.Each.Values {
		if strings.TrimSpace(v) == "" {
			report("each.values["+itoa(i)+"]", "must not be empty")
		}
	}
	if o.Each.Column != "" && !hasEach {
		report("each.column", "needs each.values")
	}
	switch o.Format {
	case "":
		report("format", "is required: json, html or csv")
	case FormatJSON:
	case FormatHTML:
		if o.HTML.Records == "" {
			report("html.records", "is required for format html: a CSS selector matching one element per record")
		} else if _, err := cascadia.Compile(o.HTML.Records); err != nil {
			report("html.records", "bad CSS selector: %v", err)
		}
		if len(o.HTML.Fields) == 0 {
			report("html.fields", "is required for format html: column name to CSS selector")
		}
		for k, sel := range o.HTML.Fields {
			s, _, _ := strings.Cut(sel, "@")
			if s == "" || s == "." {
				continue
			}
			if _, err := cascadia.Compile(s); err != nil {
				report("html.fields."+k, "bad CSS selector: %v", err)
			}
		}
	case FormatCSV:
		if len([]rune(o.CSV.Delimiter)) != 1 {
			report("csv.delimiter", "must be one character, got %q", o.CSV.Delimiter)
		}
		if o.CSV.HeaderRow < 1 {
			report("csv.header_row", "must be at least 1")
		}
	default:
		report("format", "unknown format %q: want json, html or csv", o.Format)
	}
	p := o.Pagination
	switch p.Type {
	case "":
	case "page":
		if p.Param == "" {
			report("pagination.param", "is required for page pagination")
		}
		if p.Size < 0 {
			report("pagination.size", "must not be negative")
		}
		if p.SizeParam != "" && p.Size == 0 {
			report("pagination.size", "is required with size_param")
		}
	case "next":
		if p.Next != "" && o.Format == FormatCSV {
			report("pagination.next", "a CSV answer has no next link: leave next out to follow the Link header")
		}
	default:
		report("pagination.type", "unknown pagination %q: want page or next", p.Type)
	}
	if p.MaxPages < 1 {
		report("pagination.max_pages", "must be at least 1")
	}
	o.HTTP.Validate("http.", report)
}

func checkURL(report pipeline.Reporter, field, raw string) {
	u, err := url.Parse(placeholderRE.ReplaceAllString(raw, "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		report(field, "must be an absolute http or https URL, got %q", raw)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
