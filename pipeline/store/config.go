package store

import (
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline"
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
	// Driver is sqlite (embedded, one process) or postgres (production, replicas).
	Driver string `yaml:"driver"`
	// Path is the SQLite database file; its folder is created when missing.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (URL or key=value form). It is a
	// secret: `dsn_file:` reads it from a file, and it never appears in errors.
	DSN string `yaml:"dsn" secret:"true"`
	// MaxOpenConns bounds the PostgreSQL connection pool. SQLite always uses one
	// connection: it has a single writer and our transactions are short.
	MaxOpenConns int `yaml:"max_open_conns"`
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
	default:
		report("driver", "unknown driver %q (want %s or %s)", c.Driver, DriverSQLite, DriverPostgres)
	}
	if c.MaxOpenConns < 0 {
		report("max_open_conns", "must not be negative, got %d", c.MaxOpenConns)
	}
}
