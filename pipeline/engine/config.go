// Package engine runs egov-bridge: it loads the config, syncs each source on its
// schedule into change events committed with the cursor, and dispatches the outbox
// to sinks. It depends only on the pipeline interfaces; connectors register
// themselves and are found by type name.
package engine

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/figures"
	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// DefaultZone is the province's zone, used wherever the config names none.
const DefaultZone = "Asia/Ho_Chi_Minh"

// Config is the whole daemon configuration.
type Config struct {
	Timezone        string           `yaml:"timezone" doc:"The province's zone: schedules, zone-less times and operator output use it." example:"Asia/Ho_Chi_Minh"`
	Store           store.Config     `yaml:"store" doc:"The state store: cursors, snapshot, outbox, dead letters, quarantine, audit log."`
	HTTP            HTTPConfig       `yaml:"http" doc:"The HTTP server: /healthz, /readyz, /metrics, the steering page and /api/v1."`
	Log             LogConfig        `yaml:"log" doc:"The daemon's own log."`
	Delivery        DeliveryConfig   `yaml:"delivery" doc:"How the outbox is delivered to sinks; a sink's own delivery: block overrides it."`
	Retention       RetentionConfig  `yaml:"retention" doc:"How long the store keeps what has served; citizens' data is kept only as long as it is needed."`
	ShutdownTimeout config.Duration  `yaml:"shutdown_timeout" doc:"How long a stopping daemon waits for runs and deliveries in flight."`
	Demo            *DemoConfig      `yaml:"demo" doc:"Turns on the demo agency database and its activity generator (configs/demo.yaml)."`
	Agencies        []figures.Agency `yaml:"agencies" doc:"The province's agencies: code, name, parent (the department or district) and the sources each owns. The steering figures count per agency and roll up to each parent."`
	Deadlines       DeadlinesConfig  `yaml:"deadlines" doc:"How often timer rules (rules with at:) are evaluated."`
	Sources         []SourceConfig   `yaml:"-"`
	Sinks           []SinkConfig     `yaml:"-"`
	Routes          []Route          `yaml:"routes" doc:"Which events go to which sinks; an event matching several routes reaches each sink once."`

	// Announcements names the channel regulation proactive announcements run
	// under (pipeline/announce); without it there are none.
	Announcements AnnouncementsConfig `yaml:"announcements" doc:"Proactive announcements under the channel regulation (README: Announcements and the channel regulation)."`

	File string         `yaml:"-"` // where it was loaded from
	Zone *time.Location `yaml:"-"`
}

// HTTPConfig is the HTTP server: operations endpoints (/healthz, /readyz,
// /metrics), and the steering page and API, which need a token.
type HTTPConfig struct {
	Listen string `yaml:"listen" doc:"The address to listen on; empty disables the server." example:"127.0.0.1:8080"`
	// Tokens may read the page and /api/v1; see package access.
	Tokens []access.TokenConfig `yaml:"tokens" doc:"Who may open the steering page and /api/v1: each token's name, role (viewer, operator, admin), optional agencies, and the token (token, token_file, ${ENV}) or only its sha256."`
	// Who may read each operations endpoint: public (default), token or off.
	Healthz access.Exposure `yaml:"healthz" enum:"public,token,off" noun:"setting" default:"public" doc:"Who may read /healthz: anyone, a valid token, or nobody (not served)."`
	Readyz  access.Exposure `yaml:"readyz" enum:"public,token,off" noun:"setting" default:"public" doc:"Who may read /readyz: anyone, a valid token, or nobody (not served)."`
	Metrics access.Exposure `yaml:"metrics" enum:"public,token,off" noun:"setting" default:"public" doc:"Who may read /metrics: anyone, a valid token, or nobody (not served)."`
}

// LogConfig sets the daemon's own log.
type LogConfig struct {
	Level  string `yaml:"level" enum:"debug,info,warn,error" default:"info" doc:"The lowest level logged."`
	Format string `yaml:"format" enum:"text,json" default:"text" doc:"Log lines as text or JSON."`
}

// RetentionConfig says how long the store keeps what has served; the daemon purges
// every Interval (and `run --once` after delivering). Citizens' data is kept only as
// long as it is needed.
type RetentionConfig struct {
	Events      config.Duration `yaml:"events" doc:"Delivered events and their delivery records are purged this long after."`
	DeadLetters config.Duration `yaml:"dead_letters" doc:"Superseded or dismissed dead letters are purged this long after."`
	Quarantine  config.Duration `yaml:"quarantine" doc:"Quarantine entries not seen again are purged this long after."`
	Interval    config.Duration `yaml:"interval" doc:"How often the daemon purges."`
}

// Store is what the store package needs of it.
func (r RetentionConfig) Store() store.Retention {
	return store.Retention{Events: r.Events.D(), DeadLetters: r.DeadLetters.D(), Quarantine: r.Quarantine.D()}
}

// DeliveryConfig tunes the outbox dispatcher; the top-level block sets defaults and
// a sink's own delivery: block overrides them for that sink.
//
// Retries are bounded by time, not by count: a sink that is down for hours is an
// outage to wait out, not a reason to give events up, so by default an event is
// retried until it is max_age old (counted from its detection or its last replay).
type DeliveryConfig struct {
	// A sink's block that says max_attempts: 0 means no limit even when the
	// top-level block sets one.
	MaxAttempts int             `yaml:"max_attempts" min:"0" hint:"0 means no limit: retry until max_age" doc:"When above 0, also dead-letter an event after this many attempts; 0 means no limit. In a sink's block, 0 means no limit even when the top-level block sets one."`
	MaxAge      config.Duration `yaml:"max_age" doc:"A failing event is retried until it is this old (counted from its detection or its last replay), then dead-lettered."`
	// hold never lets a consumer get an older version after a newer one; skip
	// does not either, by superseding the dead letter.
	OnDead      store.OnDead    `yaml:"on_dead" enum:"hold,skip" doc:"What a dead letter does to its record's later events for the sink: hold keeps them back until it is replayed or dismissed; skip lets them flow, and the dead letter is superseded (never resent) once a newer event of the record reaches the sink."`
	BackoffMin  config.Duration `yaml:"backoff_min" doc:"The first retry's delay; exponential backoff with jitter."`
	BackoffMax  config.Duration `yaml:"backoff_max" doc:"The longest delay between retries (a receiver's longer Retry-After is honoured, up to 1h)."`
	Rate        float64         `yaml:"rate" min:"0" hint:"0 means unlimited" doc:"Deliveries per second at most; 0 means unlimited."`
	Burst       int             `yaml:"burst" doc:"Deliveries allowed at once above rate."`
	Concurrency int             `yaml:"concurrency" min:"1" max:"256" doc:"Deliveries (for log, pgtable and nats: batches) in flight at once, each record's one at a time and in order."`
	Poll        config.Duration `yaml:"poll" doc:"Outbox polling when idle."`
	Batch       int             `yaml:"batch" min:"1" max:"10000" doc:"Events per batch for sinks that take batches (log, pgtable, nats), and rows read per outbox poll."`

	maxAttemptsSet bool // max_attempts was written, so 0 means "no limit", not "inherit"
}

// DemoConfig turns on the demo agency database and its activity generator.
type DemoConfig struct {
	Database string          `yaml:"database" required:"true" doc:"The SQLite file created and seeded on first start."`
	Activity config.Duration `yaml:"activity" doc:"How often dossiers advance; 0 disables."`
	Changes  int             `yaml:"changes" default:"3" doc:"Dossiers advanced per tick."`
}

// DefaultSchedule is a source's schedule when it gives none.
const DefaultSchedule = "@every 1m"

// SourceConfig is one source: the keys every source has, plus its connector's options.
type SourceConfig struct {
	Name     string `yaml:"name" required:"true" doc:"The source's name: lower-case letters, digits, '-', '_' or '.'; unique. Cursors and events carry it." example:"motcua-cangiuoc"`
	Type     string `yaml:"type" required:"true" doc:"The source connector."`
	Schedule string `yaml:"schedule" doc:"When the source is read: a cron expression of five fields, with an optional leading seconds field, or a descriptor such as @every 30s or @hourly; evaluated in timezone." example:"\"@every 30s\""`
	Mapping  string `yaml:"mapping" required:"true" doc:"The mapping file that turns its rows into records, relative to the config file." example:"../mappings/dossier-dvcqg.yaml"`
	Agency   string `yaml:"agency" doc:"The agency its records belong to (unless the mapping's agency_field says otherwise)." example:"UBND-HUYEN-CANGIUOC"`
	Zone     string `yaml:"zone" default:"the top-level timezone" doc:"The zone of the source's zone-less times."`
	// The disappearance settings are the engine's, not the connector's (decision 0017).
	Deletes DeletesConfig `yaml:"deletes" doc:"How records that disappear from the source become deleted events: misses of a full-set source, a scheduled reconcile, a soft-delete column."`

	Options  any                 `yaml:"-"`
	Spec     pipeline.SourceSpec `yaml:"-"`
	Map      *mapping.Mapping    `yaml:"-"`
	Location *time.Location      `yaml:"-"`
}

// SinkConfig is one sink and its connector's options.
type SinkConfig struct {
	Name     string          `yaml:"name" required:"true" doc:"The sink's name, used in routes: lower-case letters, digits, '-', '_' or '.'; unique." example:"ioc"`
	Type     string          `yaml:"type" required:"true" doc:"The sink connector."`
	Delivery *DeliveryConfig `yaml:"delivery" doc:"This sink's delivery settings, over the top-level delivery block."`

	Options any               `yaml:"-"`
	Spec    pipeline.SinkSpec `yaml:"-"`
}

// Route sends matching events to sinks. Empty filters match everything.
type Route struct {
	Events   []string `yaml:"events" doc:"Event types or rule names, as globs; empty matches all." example:"[\"dossier.*\", created]"`
	Sources  []string `yaml:"sources" doc:"Source names; empty matches all."`
	Entities []string `yaml:"entities" doc:"Entity names; empty matches all."`
	To       []string `yaml:"to" required:"true" doc:"The sinks that receive the matching events." example:"[events, ioc]"`
}

var commonSourceKeys = map[string]bool{"name": true, "type": true, "schedule": true, "mapping": true, "agency": true, "zone": true, "deletes": true}
var commonSinkKeys = map[string]bool{"name": true, "type": true, "delivery": true}

// CronParser accepts standard five-field specs, an optional leading seconds field,
// and descriptors such as @every 30s and @daily.
var CronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// LoadFile reads and validates a config file; see Load.
func LoadFile(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, config.Errors{{File: file, Msg: fmt.Sprintf("cannot read config: %v", err)}}
	}
	return Load(file, data, nil)
}

// Load decodes and validates a config, compiling every mapping it names. It returns
// all mistakes at once as config.Errors (file:line: path: message). Nothing is
// opened or connected.
func Load(file string, data []byte, env config.LookupEnv) (*Config, error) {
	d := config.NewDecoder(file)
	d.Env = env
	root := d.Parse(data)
	if root == nil {
		return nil, d.Err()
	}
	if root.Kind != yaml.MappingNode {
		d.Errorf("", "the config must be a mapping of keys")
		return nil, d.Err()
	}
	cfg := &Config{File: file}
	var sourceNodes, sinkNodes *yaml.Node
	top := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "sources":
			sourceNodes = root.Content[i+1]
		case "sinks":
			sinkNodes = root.Content[i+1]
		default:
			top.Content = append(top.Content, root.Content[i], root.Content[i+1])
		}
	}
	d.Decode(top, "", cfg)
	cfg.applyDefaults()

	zone, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		d.Errorf("timezone", "unknown time zone %q", cfg.Timezone)
		zone = time.UTC
	}
	cfg.Zone = zone
	checkDelivery(d, "delivery", &cfg.Delivery)
	if v, ok := any(&cfg.Store).(pipeline.Validator); ok {
		v.Validate(func(field, format string, args ...any) { d.Errorf("store."+field, format, args...) })
	}
	if cfg.Store.Path != "" {
		cfg.Store.Path = d.Resolve(cfg.Store.Path)
	}
	if cfg.Demo != nil {
		cfg.Demo.Database = d.Resolve(cfg.Demo.Database)
	}
	access.Check(cfg.HTTP.Tokens, func(field, format string, args ...any) { d.Errorf("http.tokens"+field, format, args...) })
	config.Check(&cfg.HTTP, func(field, format string, args ...any) { d.Errorf("http."+field, format, args...) })
	config.Check(&cfg.Log, func(field, format string, args ...any) { d.Errorf("log."+field, format, args...) })
	config.Check(&cfg.Retention, func(field, format string, args ...any) { d.Errorf("retention."+field, format, args...) })

	cfg.Sources = loadSources(d, sourceNodes, cfg.Zone)
	cfg.Sinks = loadSinks(d, sinkNodes)
	checkRoutes(d, cfg)
	checkAgencies(d, cfg)
	loadRegulation(d, cfg)
	if err := d.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// DefaultConfig returns the settings of a config file that says nothing; the
// reference pages and the schema read the defaults from it.
func DefaultConfig() *Config {
	c := &Config{Store: store.DefaultConfig()}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.Timezone == "" {
		c.Timezone = DefaultZone
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = config.Duration(20 * time.Second)
	}
	c.Delivery = c.Delivery.withDefaults(DefaultDelivery)
	for _, d := range []struct {
		v   *config.Duration
		def time.Duration
	}{
		{&c.Retention.Events, 7 * 24 * time.Hour},
		{&c.Retention.DeadLetters, 30 * 24 * time.Hour},
		{&c.Retention.Quarantine, 30 * 24 * time.Hour},
		{&c.Retention.Interval, 10 * time.Minute},
		{&c.Deadlines.Interval, time.Minute},
	} {
		if *d.v <= 0 {
			*d.v = config.Duration(d.def)
		}
	}
	if c.Demo != nil && c.Demo.Changes == 0 {
		c.Demo.Changes = 3
	}
}

// DefaultDelivery holds the built-in delivery settings. Retries are bounded by
// max_age only (MaxAttempts 0): with backoff capped at 5 minutes, a count limit
// would give events up after well under an hour of sink outage.
var DefaultDelivery = DeliveryConfig{
	MaxAttempts: 0, MaxAge: config.Duration(72 * time.Hour), OnDead: store.OnDeadHold,
	BackoffMin: config.Duration(time.Second), BackoffMax: config.Duration(5 * time.Minute),
	Burst: 1, Concurrency: 4, Poll: config.Duration(time.Second), Batch: 500,
}

// withDefaults fills unset (zero) fields from def: a sink's delivery block inherits
// whatever it does not set from the top-level block, which inherits the built-in
// defaults.
func (c DeliveryConfig) withDefaults(def DeliveryConfig) DeliveryConfig {
	if c.MaxAttempts == 0 && !c.maxAttemptsSet {
		c.MaxAttempts = def.MaxAttempts
	}
	if c.MaxAge == 0 {
		c.MaxAge = def.MaxAge
	}
	if c.OnDead == "" {
		c.OnDead = def.OnDead
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = def.BackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = def.BackoffMax
	}
	if c.Rate == 0 {
		c.Rate = def.Rate
	}
	if c.Burst == 0 {
		c.Burst = def.Burst
	}
	if c.Concurrency == 0 {
		c.Concurrency = def.Concurrency
	}
	if c.Poll == 0 {
		c.Poll = def.Poll
	}
	if c.Batch == 0 {
		c.Batch = def.Batch
	}
	return c
}

// DeliveryFor returns the delivery settings of a sink: its own over the top-level ones.
func (c *Config) DeliveryFor(sink string) DeliveryConfig {
	for _, s := range c.Sinks {
		if s.Name == sink && s.Delivery != nil {
			return s.Delivery.withDefaults(c.Delivery)
		}
	}
	return c.Delivery
}

func checkDelivery(d *config.Decoder, p string, dc *DeliveryConfig) {
	if dc == nil {
		return
	}
	dc.maxAttemptsSet = d.Has(p + ".max_attempts")
	// Zero values inherit (from the top-level block, then the built-in defaults), so
	// the spec's ranges are checked on the settings as they will apply.
	full := dc.withDefaults(DefaultDelivery)
	config.Check(&full, func(field, format string, args ...any) { d.Errorf(p+"."+field, format, args...) })
	if dc.BackoffMin > 0 && dc.BackoffMax > 0 && dc.BackoffMin > dc.BackoffMax {
		d.Errorf(p+".backoff_min", "is larger than backoff_max")
	}
}

// splitNode separates the keys every connector shares from the connector's own.
func splitNode(n *yaml.Node, common map[string]bool) (shared, own *yaml.Node) {
	shared = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	own = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if common[n.Content[i].Value] {
			shared.Content = append(shared.Content, n.Content[i], n.Content[i+1])
		} else {
			own.Content = append(own.Content, n.Content[i], n.Content[i+1])
		}
	}
	return shared, own
}

func loadSources(d *config.Decoder, list *yaml.Node, zone *time.Location) []SourceConfig {
	if list == nil {
		d.Errorf("", "no sources: add a sources: list")
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		d.Add(&config.Error{File: d.File, Line: list.Line, Column: list.Column, Path: "sources", Msg: "want a list of sources"})
		return nil
	}
	var out []SourceConfig
	names := map[string]bool{}
	for i, n := range list.Content {
		p := fmt.Sprintf("sources[%d]", i)
		if n.Kind != yaml.MappingNode {
			d.Add(&config.Error{File: d.File, Line: n.Line, Column: n.Column, Path: p, Msg: "want a mapping with name, type, mapping, …"})
			continue
		}
		shared, own := splitNode(n, commonSourceKeys)
		sc := SourceConfig{Schedule: DefaultSchedule}
		d.Decode(shared, p, &sc)
		checkName(d, p, "source", sc.Name, names)
		if sc.Schedule == "" {
			sc.Schedule = DefaultSchedule
		} else if _, err := CronParser.Parse(sc.Schedule); err != nil {
			d.Errorf(p+".schedule", "bad cron expression %q: %v (examples: \"@every 30s\", \"*/5 * * * *\", \"0 */10 * * * *\")", sc.Schedule, err)
		}
		sc.Location = zone
		if sc.Zone != "" {
			z, err := time.LoadLocation(sc.Zone)
			if err != nil {
				d.Errorf(p+".zone", "unknown time zone %q", sc.Zone)
			} else {
				sc.Location = z
			}
		}
		if sc.Mapping != "" {
			m, err := mapping.Load(d.Resolve(sc.Mapping), mapping.Options{Zone: sc.Location})
			if errs, ok := err.(config.Errors); ok {
				if len(errs) == 1 && errs[0].Line == 0 { // unreadable file: point at the config line
					d.Errorf(p+".mapping", "%s", errs[0].Msg)
				} else {
					d.Add(errs...)
				}
			} else if err != nil {
				d.Errorf(p+".mapping", "%v", err)
			}
			sc.Map = m
		}
		checkDeletes(d, p, &sc.Deletes, sc.Map)
		if sc.Type != "" {
			spec, ok := pipeline.LookupSource(sc.Type)
			if !ok {
				d.Errorf(p+".type", "unknown source type %q (known: %s)", sc.Type, strings.Join(pipeline.SourceTypes(), ", "))
			} else {
				sc.Spec = spec
				sc.Options = decodeOptions(d, own, p, spec.Config)
			}
		}
		out = append(out, sc)
	}
	return out
}

func loadSinks(d *config.Decoder, list *yaml.Node) []SinkConfig {
	if list == nil {
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		d.Add(&config.Error{File: d.File, Line: list.Line, Column: list.Column, Path: "sinks", Msg: "want a list of sinks"})
		return nil
	}
	var out []SinkConfig
	names := map[string]bool{}
	for i, n := range list.Content {
		p := fmt.Sprintf("sinks[%d]", i)
		if n.Kind != yaml.MappingNode {
			d.Add(&config.Error{File: d.File, Line: n.Line, Column: n.Column, Path: p, Msg: "want a mapping with name and type"})
			continue
		}
		shared, own := splitNode(n, commonSinkKeys)
		var sc SinkConfig
		d.Decode(shared, p, &sc)
		checkDelivery(d, p+".delivery", sc.Delivery)
		checkName(d, p, "sink", sc.Name, names)
		if sc.Type != "" {
			spec, ok := pipeline.LookupSink(sc.Type)
			if !ok {
				d.Errorf(p+".type", "unknown sink type %q (known: %s)", sc.Type, strings.Join(pipeline.SinkTypes(), ", "))
			} else {
				sc.Spec = spec
				sc.Options = decodeOptions(d, own, p, spec.Config)
			}
		}
		out = append(out, sc)
	}
	return out
}

// checkName checks a source's or sink's name and that it is unique among its kind.
func checkName(d *config.Decoder, p, kind, name string, seen map[string]bool) {
	if name == "" {
		return // reported as a missing required field
	}
	if !nameRE.MatchString(name) {
		d.Errorf(p+".name", "name %q must be lower-case letters, digits, '-', '_' or '.'", name)
	}
	if seen[name] {
		d.Errorf(p+".name", "another %s is already named %q", kind, name)
	}
	seen[name] = true
}

func decodeOptions(d *config.Decoder, n *yaml.Node, p string, newCfg func() any) any {
	if newCfg == nil {
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.Add(&config.Error{File: d.File, Line: n.Content[i].Line, Column: n.Content[i].Column, Path: p + "." + n.Content[i].Value, Msg: "unknown field"})
		}
		return nil
	}
	opts := newCfg()
	d.Decode(n, p, opts)
	report := func(field, format string, args ...any) { d.Errorf(p+"."+field, format, args...) }
	// The spec's enums and ranges, whether or not Validate checks them too (the
	// decoder drops an error reported twice).
	config.Check(opts, report)
	if v, ok := opts.(pipeline.Validator); ok {
		v.Validate(report)
	}
	return opts
}

func checkRoutes(d *config.Decoder, cfg *Config) {
	sinks := map[string]bool{}
	for _, s := range cfg.Sinks {
		sinks[s.Name] = true
	}
	sources := map[string]bool{}
	for _, s := range cfg.Sources {
		sources[s.Name] = true
	}
	if len(cfg.Sinks) > 0 && len(cfg.Routes) == 0 {
		d.Errorf("", "sinks are configured but no routes send events to them: add routes: [{events: [\"*\"], to: [...]}]")
	}
	for i, r := range cfg.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		for j, to := range r.To {
			if !sinks[to] {
				d.Errorf(fmt.Sprintf("%s.to[%d]", p, j), "no sink is named %q", to)
			}
		}
		for j, s := range r.Sources {
			if !sources[s] {
				d.Errorf(fmt.Sprintf("%s.sources[%d]", p, j), "no source is named %q", s)
			}
		}
		for j, pat := range r.Events {
			if _, err := path.Match(pat, ""); err != nil {
				d.Errorf(fmt.Sprintf("%s.events[%d]", p, j), "bad pattern %q: %v", pat, err)
			}
		}
	}
}
