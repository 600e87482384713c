package pgtable

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/lib/pq"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Defaults for the options.
const (
	DefaultSchema           = "egov_sync"
	DefaultEventsTable      = "events"
	DefaultStateTablePrefix = "current_"
	DefaultMaxOpenConns     = 4
)

// maxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN-1 bytes). Longer names
// are truncated silently by the server, so two entities could end up sharing a table;
// we refuse them instead.
const maxIdentLen = 63

// maxEventsTableLen leaves room for the longest index suffix ("_agency_idx", …)
// within maxIdentLen, so index names are never truncated into each other.
const maxEventsTableLen = maxIdentLen - len("_detected_idx")

// Options are the `type: pgtable` keys of a sink in the config file.
//
// dsn (or dsn_file) is required. Validate checks it rather than a `required` tag, so
// that a key that is present but empty (dsn: "${DSN}" with DSN unset to "") is caught
// with the same message.
type Options struct {
	DSN              string `yaml:"dsn" secret:"true" doc:"The BI database's PostgreSQL connection string (URL or key=value form). Required; dsn_file reads it from a file so the password need not sit in the config." example:"postgres://egov_sync@bi-db:5432/bi?sslmode=require"`
	Schema           string `yaml:"schema" doc:"The schema holding the sink's tables; created when missing. Lower-case letters, digits and underscores."`
	EventsTable      string `yaml:"events_table" doc:"The append-only table of every delivered event: event_id primary key, ordered by seq."`
	StateTablePrefix string `yaml:"state_table_prefix" doc:"Names the per-entity current-state tables: the state of entity dossier lives in <prefix>dossier."`
	// A small pool never crowds out the dashboards reading the same server.
	MaxOpenConns int `yaml:"max_open_conns" min:"1" doc:"Connections to the BI database at most."`
}

// NewOptions returns options with every default set.
func NewOptions() *Options {
	return &Options{
		Schema:           DefaultSchema,
		EventsTable:      DefaultEventsTable,
		StateTablePrefix: DefaultStateTablePrefix,
		MaxOpenConns:     DefaultMaxOpenConns,
	}
}

var _ pipeline.Validator = (*Options)(nil)

// Validate reports every semantic mistake, with field paths relative to the sink.
func (o *Options) Validate(report pipeline.Reporter) {
	config.Check(o, report)
	if strings.TrimSpace(o.DSN) == "" {
		report("dsn", "is required: give dsn or dsn_file")
	} else if _, err := pq.NewConnector(o.DSN); err != nil {
		// Parsing only; the message may quote the DSN, so it is redacted.
		report("dsn", "%v", newRedactor(o.DSN).Err(err))
	}
	if msg := checkName(o.Schema, maxIdentLen); msg != "" {
		report("schema", "%s", msg)
	}
	if msg := checkName(o.EventsTable, maxEventsTableLen); msg != "" {
		report("events_table", "%s", msg)
	}
	if msg := checkName(o.StateTablePrefix, maxIdentLen-1); msg != "" {
		report("state_table_prefix", "%s", msg)
	}
}

// nameRE is what the sink accepts for schema and table names: lower-case, so BI
// users can write them without quotes, and nothing that needs escaping.
var nameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// entityRE is what an entity name may hold to become a table-name suffix.
var entityRE = regexp.MustCompile(`^[a-z0-9_]+$`)

func checkName(s string, maxLen int) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > maxLen:
		return fmt.Sprintf("%q is too long: PostgreSQL would truncate it (at most %d characters)", s, maxLen)
	case !nameRE.MatchString(s):
		return fmt.Sprintf("%q is not a plain name: use lower-case letters, digits and underscores, not starting with a digit", s)
	}
	return ""
}
