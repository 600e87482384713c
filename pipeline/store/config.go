package store

import (
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Drivers the store can run on.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Defaults applied by DefaultConfig and, for zero values, by Open.
const (
	DefaultPath         = "./data/egov-bridge.db"
	DefaultMaxOpenConns = 10
)

// Config selects and configures the state store; it is the `store:` key of the
// daemon config. The zero value is usable: Open fills in the defaults, so a config
// without a store section runs on an embedded SQLite file.
type Config struct {
	Driver string `yaml:"driver" enum:"sqlite,postgres" doc:"sqlite: an embedded file, one process. postgres: production, and several replicas sharing one store."`
	Path   string `yaml:"path" doc:"The SQLite database file, relative to the config file; its folder is created when missing."`
	DSN    string `yaml:"dsn" secret:"true" doc:"The PostgreSQL connection string (URL or key=value form), for driver postgres. Never shown in errors." example:"postgres://egov@db:5432/egov?sslmode=require"`
	// SQLite always uses one connection: it has a single writer and the store's
	// transactions are short.
	MaxOpenConns int `yaml:"max_open_conns" min:"0" doc:"Connections to PostgreSQL at most."`
}

// DefaultConfig returns the configuration used when the config file says nothing.
func DefaultConfig() Config {
	return Config{Driver: DriverSQLite, Path: DefaultPath, MaxOpenConns: DefaultMaxOpenConns}
}

// withDefaults fills zero fields so that a partially written config still opens.
func (c Config) withDefaults() Config {
	if c.Driver == "" {
		c.Driver = DriverSQLite
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxOpenConns
	}
	return c
}

// Validate reports configuration mistakes against the store's own field names.
// Zero values are not mistakes: they mean the defaults.
func (c Config) Validate(report pipeline.Reporter) {
	c = c.withDefaults()
	config.Check(&c, report)
	switch c.Driver {
	case DriverSQLite:
		if c.DSN != "" {
			report("dsn", "is for driver postgres; the sqlite driver uses path")
		}
		// modernc.org/sqlite reads everything after '?' as connection options.
		if strings.ContainsRune(c.Path, '?') {
			report("path", "must not contain '?'")
		}
	case DriverPostgres:
		if strings.TrimSpace(c.DSN) == "" {
			report("dsn", "is required for driver postgres (give dsn or dsn_file)")
		}
	}
}
