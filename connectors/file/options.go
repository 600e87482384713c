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
	MaxBatchSize     = 100000
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
	// Path is a folder that an agency drops files into, or one file; relative to
	// the config file.
	Path string `yaml:"path"`
	// Pattern picks the files of a folder by name (a glob such as "diem-thi-*.xlsx");
	// default every .csv and .xlsx file.
	Pattern string `yaml:"pattern"`
	// Pick is all (every matching file; together they are the current set) or
	// newest (only the most recently modified: each file is a new version).
	Pick string `yaml:"pick"`
	// Settle is how long a file must be left unchanged before it is read; a poll
	// that meets a younger file fails (nothing counts as gone) and a later one
	// reads it. Files named .*, ~$*, *.tmp, *.part are never read: an agency that
	// writes under such a name and renames into place may set settle: 0s.
	Settle config.Duration `yaml:"settle"`
	// URL reads one file over HTTP instead (conditional requests: an unchanged
	// file costs a 304).
	URL string `yaml:"url"`
	// HTTP is how gently and patiently the URL is asked.
	HTTP webfetch.Options `yaml:"http"`
	// Format is csv or xlsx; default from the file name.
	Format string `yaml:"format"`
	// Sheet names the worksheet of an .xlsx file; default the first.
	Sheet string `yaml:"sheet"`
	// HeaderRow is the 1-based row holding the column names. 0 (default) takes
	// the first row with two or more filled cells that are not one merged title.
	HeaderRow int `yaml:"header_row"`
	// Columns are the columns the mapping reads. Each matches a header ignoring
	// case, diacritics, spaces and punctuation ("Họ tên" is HoTen, "Ngữ văn" is
	// NguVan) or one of its aliases, and rows carry it under this name; a file
	// without one of them is an error. Other headers pass through as written.
	Columns []string `yaml:"columns"`
	// Aliases are other headers of a column, e.g. SBD: ["Số báo danh"].
	Aliases map[string][]string `yaml:"aliases"`
	// Dates names columns whose numbers are Excel serial dates even where the cell
	// is not formatted as a date. Cells formatted as dates are read as dates anyway.
	Dates []string `yaml:"dates"`
	// Delimiter of a CSV file, one character; default ",".
	Delimiter string `yaml:"delimiter"`
	// BatchSize is the most rows handed over at once.
	BatchSize int `yaml:"batch_size"`
	// MaxBytes caps the size of a file (and of an unzipped .xlsx part).
	MaxBytes int64 `yaml:"max_bytes"`
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
	switch {
	case o.Path == "" && o.URL == "":
		report("path", "is required: a folder (or file) to read, or give url")
	case o.Path != "" && o.URL != "":
		report("url", "give path or url, not both")
	case o.URL != "":
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			report("url", "must be an absolute http or https URL, got %q", o.URL)
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
	if o.Pick != PickAll && o.Pick != PickNewest {
		report("pick", "must be all or newest, got %q", o.Pick)
	}
	switch o.Format {
	case "", FormatCSV, FormatXLSX:
	default:
		report("format", "unknown format %q: want csv or xlsx", o.Format)
	}
	if o.Sheet != "" && o.Format == FormatCSV {
		report("sheet", "a CSV file has no sheets")
	}
	if o.HeaderRow < 0 {
		report("header_row", "must be 1 or more (or 0 to find it)")
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
	if o.BatchSize < 1 || o.BatchSize > MaxBatchSize {
		report("batch_size", "must be between 1 and %d, got %d", MaxBatchSize, o.BatchSize)
	}
	if o.MaxBytes < 1 {
		report("max_bytes", "must be at least 1")
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
