package sqlsource

import (
	"context"

	_ "github.com/lib/pq"               // driver "postgres"
	_ "github.com/microsoft/go-mssqldb" // driver "sqlserver"
	_ "modernc.org/sqlite"              // driver "sqlite"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func init() {
	pipeline.AddSource("sql", "a PostgreSQL, SQL Server, SQLite or MySQL/MariaDB table or query, read incrementally by a (cursor, key) keyset", NewOptions,
		func(ctx context.Context, env pipeline.Env, o *Options) (pipeline.Source, error) {
			return Open(ctx, env, o)
		})
}
