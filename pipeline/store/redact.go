package store

import "github.com/egov-bridge/egov-bridge/internal/redact"

// redactErr keeps the DSN's secrets out of an error: drivers and net/url quote the
// connection string in some of their errors.
func redactErr(err error, dsn string) error { return redact.ForDSN(dsn).Err(err) }
