package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Env is what the engine hands a connector when it builds one.
type Env struct {
	Name    string // the source's or sink's name from the config
	Logger  *slog.Logger
	Clock   Clock
	Zone    *time.Location           // zone for zone-less times; the province's unless set
	Resolve func(path string) string // makes a config-relative path usable
	// State is the daemon's state store (a store.Store, which this package cannot
	// name without an import cycle), for sinks that keep state of their own, such
	// as the zalo sink's tokens; each such connector type-asserts the narrow
	// interface it needs. nil where no store is open.
	State any
	// Route returns the sinks the config's routes send an event to, for
	// connectors that raise events of their own (the zalo sink's citizen feedback);
	// nil where there are no routes.
	Route func(ev *Event) []string
	// Wake tells the dispatcher that events were queued outside a source's
	// commit (a citizen's answer), so they go out without waiting for its poll;
	// nil where there is no dispatcher.
	Wake func()
	// Officials returns who hears a notice addressed to the officials of an
	// agency for a rule (Message.Officials), from the config's agencies; nil
	// where the config declares none.
	Officials func(agency, rule string) []Official
}

// Reporter records a config mistake against a field of the connector's own options,
// e.g. report("cursor.column", "must not be empty").
type Reporter func(field, format string, args ...any)

// Validator is implemented by option structs that check themselves after decoding,
// for what the spec's tags cannot say. The engine checks the tags (config.Check)
// before calling Validate; a Validate that starts with config.Check(o, report) makes
// those checks too when called on its own, as in a connector's tests.
type Validator interface {
	Validate(report Reporter)
}

// Invalid runs v's own checks and returns what they report as one error
// ("field: problem; field: problem"), or nil: for constructors that take options
// without the config loader, which reports the same problems with their lines.
func Invalid(v Validator) error {
	var problems []string
	v.Validate(func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	})
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// SourceSpec describes a source connector: its options and how to build it.
type SourceSpec struct {
	// Summary is one line for `egov-bridge connectors`.
	Summary string
	// Config returns a fresh options struct with defaults set; the connector's keys in
	// the config file are decoded into it strictly.
	Config func() any
	// Build opens the source from decoded, validated options.
	Build func(ctx context.Context, env Env, cfg any) (Source, error)
}

// SinkSpec describes a sink connector.
type SinkSpec struct {
	Summary string
	Config  func() any
	Build   func(ctx context.Context, env Env, cfg any) (Sink, error)
}

// The registry is the one piece of global state: connectors add themselves from init.
var (
	regMu   sync.RWMutex
	sources = map[string]SourceSpec{}
	sinks   = map[string]SinkSpec{}
)

// RegisterSource adds a source type; registering a name twice is a programming error.
func RegisterSource(name string, spec SourceSpec) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := sources[name]; dup {
		panic(fmt.Sprintf("pipeline: source type %q registered twice", name))
	}
	sources[name] = spec
}

// RegisterSink adds a sink type.
func RegisterSink(name string, spec SinkSpec) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := sinks[name]; dup {
		panic(fmt.Sprintf("pipeline: sink type %q registered twice", name))
	}
	sinks[name] = spec
}

// AddSource registers a source type whose options are an *O: defaults returns
// them with every default set (the struct's tags and those defaults are its spec:
// decoding, validation, reference page and schema), and open builds the source from
// the decoded, validated options.
func AddSource[O any](name, summary string, defaults func() *O, open func(context.Context, Env, *O) (Source, error)) {
	RegisterSource(name, SourceSpec{
		Summary: summary,
		Config:  func() any { return defaults() },
		Build: func(ctx context.Context, env Env, cfg any) (Source, error) {
			o, ok := cfg.(*O)
			if !ok {
				return nil, fmt.Errorf("%s source %q: options are %T, want %T", name, env.Name, cfg, o)
			}
			return open(ctx, env, o)
		},
	})
}

// AddSink registers a sink type whose options are an *O; see AddSource.
func AddSink[O any](name, summary string, defaults func() *O, open func(context.Context, Env, *O) (Sink, error)) {
	RegisterSink(name, SinkSpec{
		Summary: summary,
		Config:  func() any { return defaults() },
		Build: func(ctx context.Context, env Env, cfg any) (Sink, error) {
			o, ok := cfg.(*O)
			if !ok {
				return nil, fmt.Errorf("%s sink %q: options are %T, want %T", name, env.Name, cfg, o)
			}
			return open(ctx, env, o)
		},
	})
}

// LookupSource finds a registered source type.
func LookupSource(name string) (SourceSpec, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	s, ok := sources[name]
	return s, ok
}

// LookupSink finds a registered sink type.
func LookupSink(name string) (SinkSpec, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	s, ok := sinks[name]
	return s, ok
}

// SourceTypes lists registered source type names, sorted.
func SourceTypes() []string { return sortedKeys(sources) }

// SinkTypes lists registered sink type names, sorted.
func SinkTypes() []string { return sortedKeys(sinks) }

func sortedKeys[V any](m map[string]V) []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
