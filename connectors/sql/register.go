package sqlsource

import (
	"context"
	"fmt"

	_ "github.com/lib/pq"               // driver "postgres"
	_ "github.com/microsoft/go-mssqldb" // driver "sqlserver"
	_ "modernc.org/sqlite"              // driver "sqlite"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.RegisterSource("sql", pipeline.SourceSpec{
		Summary: "a PostgreSQL, SQL Server, SQLite or MySQL/MariaDB table or query, read incrementally by a (cursor, key) keyset",
		Config:  func() any { return NewOptions() },
		Build: func(ctx context.Context, env pipeline.Env, cfg any) (pipeline.Source, error) {
			o, ok := cfg.(*Options)
			if !ok {
				return nil, fmt.Errorf("sql source %q: options are %T, want *sqlsource.Options", env.Name, cfg)
			}
			return Open(ctx, env, o)
		},
	})
}
