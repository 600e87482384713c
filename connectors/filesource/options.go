package filesource

import (
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/webfetch"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Defaults.
const (
	DefaultBatchSize = 1000
	// DefaultSettle is how long a dropped file must stay unchanged before it is
	// read: copying a file onto a share, or saving it from Excel, takes a moment.
	DefaultSettle   = 10 * time.Second
	DefaultMaxBytes = 50 << 20
)

// Formats of a file.
const (
	FormatCSV  = "csv"
	FormatXLSX = "xlsx"
)

// Pick values.
const (
	PickAll    = "all"
	PickNewest = "newest"
)

// Options are the `type: file` keys of a source in the config file. The daemon
// decodes the common keys (name, schedule, mapping, agency, zone, ...) itself;
// zone is the zone of the dates in the files (Excel serial dates carry none).
//
// Exactly one of path and url is required.
type Options struct {
	Path    string `yaml:"path" doc:"A folder an agency drops files into, or one file, relative to the config file. Give path or url." example:"/srv/inbox/so-gddt"`
	Pattern string `yaml:"pattern" default:"every .csv and .xlsx file" doc:"Picks the files of a folder by name, a glob." example:"\"ket-qua-thpt-*.xlsx\""`
	Pick    string `yaml:"pick" enum:"all,newest" doc:"all: every matching file, together the current set; newest: only the most recently modified, each file a new version." example:"newest"`
	// Names .*, ~$*, *.tmp, *.part, … are never read, so an agency that writes
	// under such a name and renames into place may set settle: 0s.
	Settle config.Duration `yaml:"settle" doc:"How long a file must be left unchanged before it is read; a poll that meets a younger file fails (nothing counts as gone) and a later one reads it. 0s for agencies that write under a temporary name and rename into place."`
	// The URL may carry a key in its query; errors never quote it.
	URL  string           `yaml:"url" secret:"true" doc:"Reads one file over http or https instead of path (conditional requests: an unchanged file costs a 304). Give path or url; never shown, as it may carry a key."`
	HTTP webfetch.Options `yaml:"http" doc:"How gently and patiently url is asked: timeouts, retries, rate limit, size cap (50 MiB here). Used with url only."`
	// Format falls back on the file name's extension.
	Format    string              `yaml:"format" enum:"csv,xlsx" default:"by the file's extension" doc:"How a file is read: csv or xlsx."`
	Sheet     string              `yaml:"sheet" default:"the first" doc:"The worksheet of an .xlsx file, by name."`
	HeaderRow int                 `yaml:"header_row" min:"0" hint:"0 finds it" doc:"The 1-based row holding the column names; 0 takes the first row with two or more filled cells that are not one merged title."`
	Columns   []string            `yaml:"columns" doc:"The columns the mapping reads. Each matches a header ignoring case, diacritics, spaces and punctuation (Họ tên is HoTen) or one of its aliases, and rows carry it under this name; a file without one fails the poll. Other headers pass through as written." example:"[SBD, HoTen, NgaySinh, Toan]"`
	Aliases   map[string][]string `yaml:"aliases" doc:"Other headers of a column (one of columns)." example:"{ SBD: [\"Số báo danh\"] }"`
	// Cells formatted as dates are read as dates anyway.
	Dates     []string `yaml:"dates" doc:"Columns (of columns) whose numbers are Excel serial dates even where the cell is not formatted as a date." example:"[NgaySinh]"`
	Delimiter string   `yaml:"delimiter" doc:"The field separator of a CSV file, one character."`
	BatchSize int      `yaml:"batch_size" min:"1" max:"100000" doc:"The most rows handed over at once."`
	MaxBytes  int64    `yaml:"max_bytes" min:"1" doc:"The largest file read, in bytes (also caps each unzipped part of an .xlsx)."`
}

// NewOptions returns options with every default set.
func NewOptions() *Options {
	h := webfetch.NewOptions()
	h.MaxBytes = DefaultMaxBytes
	return &Options{
		Pick:      PickAll,
		Settle:    config.Duration(DefaultSettle),
		HTTP:      h,
		Delimiter: ",",
		BatchSize: DefaultBatchSize,
		MaxBytes:  DefaultMaxBytes,
	}
}

var _ pipeline.Validator = (*Options)(nil)

// Validate reports every semantic mistake, with field paths relative to the source.
func (o *Options) Validate(report pipeline.Reporter) {
	config.Check(o, report)
	switch {
	case o.Path == "" && o.URL == "":
		report("path", "is required: a folder (or file) to read, or give url")
	case o.Path != "" && o.URL != "":
		report("url", "give path or url, not both")
	case o.URL != "":
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			report("url", "must be an absolute http or https URL") // not quoted: it may carry a key
		} else if o.Format == "" && formatOf(u.Path) == "" {
			report("format", "is required: the URL does not end in .csv or .xlsx")
		}
		o.HTTP.Validate("http.", report)
	}
	if o.Pattern != "" {
		if _, err := path.Match(o.Pattern, "x"); err != nil {
			report("pattern", "bad glob %q: %v", o.Pattern, err)
		}
	}
	if o.Pick == "" {
		report("pick", "must be all or newest") // another value is reported by config.Check
	}
	if o.Sheet != "" && o.Format == FormatCSV {
		report("sheet", "a CSV file has no sheets")
	}
	seen := map[string]string{}
	for i, c := range o.Columns {
		f := "columns[" + strconv.Itoa(i) + "]"
		k := compact(c)
		switch {
		case k == "":
			report(f, "must have a letter or digit")
		case seen[k] != "":
			report(f, "%q matches the same headers as %q", c, seen[k])
		}
		seen[k] = c
	}
	for c, as := range o.Aliases {
		if !containsFold(o.Columns, c) {
			report("aliases."+c, "%q is not one of columns", c)
		}
		for i, a := range as {
			if compact(a) == "" {
				report("aliases."+c+"["+strconv.Itoa(i)+"]", "must have a letter or digit")
			}
		}
	}
	for i, d := range o.Dates {
		if !containsFold(o.Columns, d) {
			report("dates["+strconv.Itoa(i)+"]", "%q is not one of columns", d)
		}
	}
	if len([]rune(o.Delimiter)) != 1 {
		report("delimiter", "must be one character, got %q", o.Delimiter)
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// formatOf is a file's format by its extension, or "".
func formatOf(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return FormatCSV
	case ".xlsx", ".xlsm":
		return FormatXLSX
	}
	return ""
}
