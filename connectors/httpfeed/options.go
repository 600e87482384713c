package httpfeed

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/andybalholm/cascadia"

	"github.com/egov-bridge/egov-bridge/internal/webfetch"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
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
// url and format are required; Validate checks them rather than `required` tags, so
// that a key present but empty (url: "${FEED_URL}" with FEED_URL unset) is caught
// too. Values of url, query, form and headers may hold placeholders: {{today}},
// {{today+N}}, {{today-N}} (a date in the source's zone, written with date_layout),
// {{today+N|yyyy-MM-dd}} (with its own layout) and {{each}} (the current value of
// each.values).
//
// url, query, form and headers are secrets: an API key or a password travels in
// them, so they are redacted wherever options are shown.
type Options struct {
	URL        string            `yaml:"url" secret:"true" doc:"The address of the data, http or https; it may hold placeholders. Required. It may carry a key in its query, so it is never shown." example:"https://api.capnuoc.example.vn/v1/interruptions"`
	Method     string            `yaml:"method" enum:"GET,POST" doc:"GET, or POST to send form as the body."`
	Query      map[string]string `yaml:"query" secret:"true" doc:"Query parameters added to the URL; values may hold placeholders and ${VAR}." example:"{ from: \"{{today}}\", to: \"{{today+7}}\" }"`
	Form       map[string]string `yaml:"form" secret:"true" doc:"The form-encoded body of a POST; values may hold placeholders and ${VAR}."`
	Headers    map[string]string `yaml:"headers" secret:"true" doc:"Headers sent with every request of this source (Referer, X-Requested-With, an API key); values may hold placeholders and ${VAR}." example:"{ X-Api-Key: \"${CAPNUOC_API_KEY}\" }"`
	DateLayout string            `yaml:"date_layout" doc:"How {{today…}} placeholders without their own layout are written (dd, MM, yyyy)." example:"yyyy-MM-dd"`
	Each       EachOptions       `yaml:"each" doc:"One request sequence per value, e.g. per unit code."`
	Session    SessionOptions    `yaml:"session" doc:"A page fetched first on every poll, for the cookies the data requests need."`
	Format     string            `yaml:"format" enum:"json,html,csv" doc:"How the answer is read: json, html or csv. Required." example:"json"`
	JSON       JSONOptions       `yaml:"json" doc:"Where the records are in a JSON answer."`
	HTML       HTMLOptions       `yaml:"html" doc:"How records and fields are found in an HTML answer (CSS selectors)."`
	CSV        CSVOptions        `yaml:"csv" doc:"How a CSV answer is read."`
	Pagination PaginationOptions `yaml:"pagination" doc:"How every page is read: by page number or by a next link; without it one request is the whole answer."`
	HTTP       webfetch.Options  `yaml:"http" doc:"How gently and patiently the server is asked: timeouts, retries, rate limit, size cap."`
}

// EachOptions: one request per value.
type EachOptions struct {
	Values []string `yaml:"values" doc:"Substituted for {{each}}, one request sequence each, in this order, e.g. unit codes."`
	// For when the answer does not say which value a record came from.
	Column string `yaml:"column" doc:"Adds the current value to every record under this column name. Needs values."`
}

// SessionOptions: a page fetched first for cookies.
type SessionOptions struct {
	URL string `yaml:"url" doc:"Fetched (GET) at the start of every poll; its cookies go with the data requests. Empty: no pre-fetch."`
}

// JSONOptions: where the records are.
type JSONOptions struct {
	// A missing path is an unknown shape, never an empty set: an empty set would
	// make every record look deleted.
	Records string `yaml:"records" default:"the answer itself" doc:"The dot path of the list of records; nested objects become a.b columns. A path missing from an answer fails the poll." example:"data.items"`
}

// HTMLOptions: records and fields by CSS selector (github.com/PuerkitoBio/goquery).
type HTMLOptions struct {
	Records string            `yaml:"records" doc:"A CSS selector matching one element per record, such as table.lich tbody tr. Required for format html."`
	Fields  map[string]string `yaml:"fields" doc:"Column name to a CSS selector inside the record: sel@attr reads an attribute, . (or empty) the record's own text; text is trimmed with white space collapsed. Required for format html, such as { name: \"td:nth-child(1)\", link: \"a@href\" }."`
	// A page with no record and none of these texts is an unknown shape.
	Empty []string `yaml:"empty" doc:"Texts that mean no records, matched ignoring case and diacritics; a page with no record and none of them fails the poll."`
}

// CSVOptions: how to read a CSV answer.
type CSVOptions struct {
	Delimiter string `yaml:"delimiter" doc:"The field separator, one character."`
	HeaderRow int    `yaml:"header_row" min:"1" doc:"The 1-based line holding the column names; lines before it are skipped."`
}

// PaginationOptions: how to get every page.
type PaginationOptions struct {
	Type      string `yaml:"type" enum:"page,next" noun:"pagination" default:"one request" doc:"page: a page-number parameter; next: a next link in the answer or the Link header." example:"page"`
	Param     string `yaml:"param" doc:"The page-number parameter (type page)."`
	Start     int    `yaml:"start" doc:"The first page number (type page)."`
	SizeParam string `yaml:"size_param" doc:"A page-size parameter sent with size (type page); then a page with fewer records is the last, otherwise an empty page is." example:"pageSize"`
	Size      int    `yaml:"size" min:"0" doc:"Records asked for a page, with size_param." example:"100"`
	Next      string `yaml:"next" default:"the Link header" doc:"Where the next link is (type next): a JSON dot path (json) or a CSS selector whose href is read (html); without it the Link: rel=\"next\" header. A missing or empty link ends the pages; a link to another host is refused."`
	// More pages are an error, not a silent cut, which would make the records on
	// the pages not read look deleted.
	MaxPages int `yaml:"max_pages" min:"1" doc:"The most pages one sequence reads; more fail the poll."`
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
	config.Check(o, report)
	hasEach := len(o.Each.Values) > 0
	if strings.TrimSpace(o.URL) == "" {
		report("url", "is required")
	} else {
		checkURL(report, "url", o.URL, false)
		if err := checkPlaceholders(o.URL, hasEach); err != nil {
			report("url", "%v", err)
		}
	}
	if o.Session.URL != "" {
		checkURL(report, "session.url", o.Session.URL, true)
	}
	if o.Method == "GET" && len(o.Form) > 0 { // another method is reported by config.Check
		report("form", "is the body of a POST: set method: POST or use query")
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
	}
	p := o.Pagination
	switch p.Type {
	case "":
	case "page":
		if p.Param == "" {
			report("pagination.param", "is required for page pagination")
		}
		if p.SizeParam != "" && p.Size == 0 {
			report("pagination.size", "is required with size_param")
		}
	case "next":
		if p.Next != "" && o.Format == FormatCSV {
			report("pagination.next", "a CSV answer has no next link: leave next out to follow the Link header")
		}
	}
	o.HTTP.Validate("http.", report)
}

// checkURL reports a URL that is not absolute http(s), quoting it only when it
// cannot hold a secret.
func checkURL(report pipeline.Reporter, field, raw string, quote bool) {
	u, err := url.Parse(placeholderRE.ReplaceAllString(raw, "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if quote {
			report(field, "must be an absolute http or https URL, got %q", raw)
		} else {
			report(field, "must be an absolute http or https URL")
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
