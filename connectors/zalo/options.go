package zalo

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Zalo's public endpoints; each base URL can be replaced (a test, a proxy).
const (
	DefaultOAuthURL = "https://oauth.zaloapp.com"
	DefaultOAURL    = "https://openapi.zalo.me"
	DefaultZNSURL   = "https://business.openapi.zalo.me"
)

// Route names, in the order a notice tries them unless its rule says otherwise.
const (
	RouteOA  = "oa"  // a message to the follower linked to the phone (or the event's user_id)
	RouteZNS = "zns" // a ZNS template message by phone
)

// Options are the `type: zalo` keys of a sink. app_id, secret_key, oa_id and
// refresh_token may each be given as ${ENV_VAR}, or read from a file with
// app_id_file, secret_key_file, ...; they never appear in logs or errors.
type Options struct {
	AppID     string `yaml:"app_id" secret:"true" doc:"The Zalo app's id (developers.zalo.me). Required unless dry_run; never logged."`
	SecretKey string `yaml:"secret_key" secret:"true" doc:"The Zalo app's secret key. Required unless dry_run; never logged."`
	OAID      string `yaml:"oa_id" secret:"true" doc:"The Official Account's id. Required unless dry_run."`
	// Zalo rotates the refresh token on every refresh and the store keeps the
	// current one, so the config's is read once.
	RefreshToken string `yaml:"refresh_token" secret:"true" doc:"Seeds the state store the first time only; after re-authorising the app store the new one with egov-bridge zalo token set."`

	OAuthURL string `yaml:"oauth_url" doc:"Base URL of Zalo's OAuth API (a test server, a proxy)."`
	OAURL    string `yaml:"oa_url" doc:"Base URL of Zalo's OA API."`
	ZNSURL   string `yaml:"zns_url" doc:"Base URL of Zalo's ZNS API."`

	Timeout       config.Duration `yaml:"timeout" doc:"Bounds one call to Zalo."`
	RefreshAhead  config.Duration `yaml:"refresh_ahead" doc:"Renews the access token (which lives 25h) this long before it expires."`
	RatePerMinute int             `yaml:"rate_per_minute" min:"0" doc:"Calls to Zalo from this sink per minute at most (Zalo allows about 4,000 OA API calls a minute per app); 0 means the default."`
	RefusedRetry  config.Duration `yaml:"refused_retry" doc:"While Zalo refuses the refresh token (until an operator stores a new one), notices wait this long between tries."`

	DryRun bool `yaml:"dry_run" doc:"Route, render and account for every notice but send nothing: the request that would have been sent is recorded instead."`

	Routes     []string               `yaml:"routes" enum:"oa,zns" noun:"route" doc:"The default order of routes: oa (a message to the follower linked to the phone) and zns (the rule's approved template by phone). A rule may give its own."`
	Rules      map[string]RuleOptions `yaml:"rules" doc:"Notice settings per mapping rule name (dossier.result_ready, …)."`
	QuietHours QuietHours             `yaml:"quiet_hours" doc:"A daily window without ZNS sends; such notices wait for its end."`
	Prices     Prices                 `yaml:"prices" doc:"Đồng per message, for the accounting in state, zalo status and the metrics."`

	OASecretKey string    `yaml:"oa_secret_key" secret:"true" doc:"The key Zalo signs webhook events with (the app's OA secret key); required with citizens. Never logged."`
	Webhook     Webhook   `yaml:"webhook" doc:"Limits of the receiver of citizens' events, POST /webhooks/zalo."`
	Citizens    *Citizens `yaml:"citizens" doc:"What citizens can ask the OA: the webhook, commands, look-ups, subscriptions, feedback, ratings (README, Citizens on the OA). Off when absent."`
}

// RuleOptions are one rule's notice settings.
type RuleOptions struct {
	Routes        []string          `yaml:"routes" enum:"oa,zns" noun:"route" doc:"The route order for this rule, instead of the sink's."`
	ZNSTemplateID string            `yaml:"zns_template_id" doc:"The approved ZNS template; without it the zns route is skipped for this rule." example:"\"123456\""`
	TemplateData  map[string]string `yaml:"template_data" doc:"Fills the ZNS template's parameters: parameter -> record field, or $text (the rendered message), $key (the record's key), $agency." example:"{ ma_ho_so: code, noi_dung: $text }"`
	Transaction   *Transaction      `yaml:"transaction" doc:"Send OA messages as transaction messages with this layout instead of text."`
	MaxAge        Age               `yaml:"max_age" doc:"Drop a notice older than this (counted from when its change was detected) as stale instead of sending it late." example:"7d"`
}

// Transaction is the layout of an OA transaction message for a rule.
type Transaction struct {
	TemplateType string     `yaml:"template_type" default:"transaction_order" doc:"Zalo's template_type of the transaction message."`
	Language     string     `yaml:"language" default:"VI" doc:"The message's language."`
	Header       string     `yaml:"header" required:"true" doc:"The message's header line." example:"Thông báo kết quả hồ sơ"`
	Table        []TableRow `yaml:"table" doc:"Rows shown under the text."`
}

// TableRow is one row of a transaction message's table.
type TableRow struct {
	Key   string `yaml:"key" required:"true" doc:"The label shown." example:"Mã hồ sơ"`
	Field string `yaml:"field" required:"true" doc:"The record field shown (or $key, $agency)." example:"code"`
}

// QuietHours is a daily window without ZNS sends.
type QuietHours struct {
	Start string `yaml:"start" doc:"Start of the window, HH:MM." example:"\"22:00\""`
	End   string `yaml:"end" doc:"End of the window, HH:MM." example:"\"06:00\""`
	Zone  string `yaml:"zone" doc:"The zone of start and end."`
	Off   bool   `yaml:"off" doc:"No quiet hours at all."`
}

// Prices are đồng per message.
type Prices struct {
	ZNS float64 `yaml:"zns" min:"0" doc:"One ZNS message."`
	OA  float64 `yaml:"oa" min:"0" doc:"One OA message."`
	SMS float64 `yaml:"sms" min:"0" doc:"What one SMS would have cost, for the saving figure."`
}

// Age is a duration that also takes whole days: 7d, 36h, 90m.
type Age time.Duration

var dayRE = regexp.MustCompile(`^(\d+)d$`)

// UnmarshalYAML reads 7d or any Go duration.
func (a *Age) UnmarshalYAML(n *yaml.Node) error {
	if m := dayRE.FindStringSubmatch(n.Value); m != nil {
		d, err := strconv.Atoi(m[1])
		if err != nil || d > 3650 {
			return fmt.Errorf("bad age %q: want at most 3650d", n.Value)
		}
		*a = Age(time.Duration(d) * 24 * time.Hour)
		return nil
	}
	var d config.Duration
	if err := d.UnmarshalYAML(n); err != nil {
		return fmt.Errorf("bad age %q: want days such as 7d, or a duration such as 36h", n.Value)
	}
	*a = Age(d)
	return nil
}

// SpecOption describes an age for the reference pages and the schema.
func (Age) SpecOption() config.Option {
	return config.Option{Kind: config.KindDuration, Schema: map[string]any{"type": "string", "pattern": `^[0-9]+d$|^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}}
}

// D returns the age as a time.Duration.
func (a Age) D() time.Duration { return time.Duration(a) }

// Defaults.
const (
	DefaultTimeout       = 15 * time.Second
	DefaultRefreshAhead  = time.Hour
	DefaultRatePerMinute = 4000
	DefaultRefusedRetry  = 15 * time.Minute
	DefaultQuietStart    = "22:00"
	DefaultQuietEnd      = "06:00"
	DefaultZone          = "Asia/Ho_Chi_Minh"
	// MaxText is the longest text one OA message may carry, in characters.
	MaxText = 2000
	// MaxTrackingID is the longest ZNS tracking_id Zalo takes.
	MaxTrackingID = 48
)

// NewOptions returns options with every default set.
func NewOptions() *Options {
	return &Options{
		OAuthURL: DefaultOAuthURL, OAURL: DefaultOAURL, ZNSURL: DefaultZNSURL,
		Timeout: config.Duration(DefaultTimeout), RefreshAhead: config.Duration(DefaultRefreshAhead),
		RatePerMinute: DefaultRatePerMinute, RefusedRetry: config.Duration(DefaultRefusedRetry),
		Routes:     []string{RouteOA, RouteZNS},
		QuietHours: QuietHours{Start: DefaultQuietStart, End: DefaultQuietEnd, Zone: DefaultZone},
		Webhook:    Webhook{Window: config.Duration(DefaultWebhookWindow), MaxBody: DefaultWebhookMaxBody},
	}
}

var _ pipeline.Validator = (*Options)(nil)

// Validate reports every mistake with its field path; it never quotes a secret.
func (o *Options) Validate(report pipeline.Reporter) {
	config.Check(o, report)
	if !o.DryRun {
		for _, f := range []struct{ name, v string }{{"app_id", o.AppID}, {"secret_key", o.SecretKey}, {"oa_id", o.OAID}} {
			if strings.TrimSpace(f.v) == "" {
				report(f.name, "is required (give %s, %s_file or ${ENV}); only dry_run: true works without it", f.name, f.name)
			}
		}
	}
	for _, f := range []struct{ name, v string }{{"oauth_url", o.OAuthURL}, {"oa_url", o.OAURL}, {"zns_url", o.ZNSURL}} {
		if problem := checkBaseURL(f.v); problem != "" {
			report(f.name, "%s", problem)
		}
	}
	if o.Timeout <= 0 {
		report("timeout", "must be more than 0, such as 15s")
	}
	checkRoutes(report, "routes", o.Routes)
	names := make([]string, 0, len(o.Rules))
	for name := range o.Rules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		o.Rules[name].validate(report, "rules."+name)
	}
	if _, _, _, err := o.QuietHours.parse(); err != nil {
		report("quiet_hours", "%v", err)
	}
	if o.Webhook.Window <= 0 {
		report("webhook.window", "must be more than 0, such as 5m")
	}
	if o.Citizens != nil {
		o.Citizens.validate(report, "citizens", o.OASecretKey)
	}
}

func (r RuleOptions) validate(report pipeline.Reporter, p string) {
	if r.Routes != nil {
		checkRoutes(report, p+".routes", r.Routes)
	}
	if len(r.TemplateData) > 0 && r.ZNSTemplateID == "" {
		report(p+".template_data", "needs zns_template_id")
	}
	if t := r.Transaction; t != nil && strings.TrimSpace(t.Header) == "" {
		report(p+".transaction.header", "must not be empty")
	}
}

func checkRoutes(report pipeline.Reporter, field string, routes []string) {
	if len(routes) == 0 {
		report(field, "name at least one route: %s or %s", RouteOA, RouteZNS)
	}
	seen := map[string]bool{}
	for i, r := range routes {
		if seen[r] { // an unknown route is reported by config.Check
			report(fmt.Sprintf("%s[%d]", field, i), "route %q is named twice", r)
		}
		seen[r] = true
	}
}

func checkBaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "must be an absolute http or https URL"
	}
	if u.RawQuery != "" || u.User != nil {
		return "must not carry a query or credentials"
	}
	return ""
}

// parse returns the quiet window's start and end as minutes after midnight and
// its zone; start == end means no quiet hours.
func (q QuietHours) parse() (start, end int, zone *time.Location, err error) {
	name := q.Zone
	if name == "" {
		name = DefaultZone
	}
	zone, err = time.LoadLocation(name)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("zone %q: %w", name, err)
	}
	if q.Off {
		return 0, 0, zone, nil
	}
	if start, err = clockMinutes(q.Start, DefaultQuietStart); err != nil {
		return 0, 0, nil, fmt.Errorf("start: %w", err)
	}
	if end, err = clockMinutes(q.End, DefaultQuietEnd); err != nil {
		return 0, 0, nil, fmt.Errorf("end: %w", err)
	}
	return start, end, zone, nil
}

func clockMinutes(s, def string) (int, error) {
	if s == "" {
		s = def
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day such as 22:00", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}
