package sqlsource

import "github.com/egov-bridge/egov-bridge/internal/redact"

// newRedactor removes the DSNs' secrets from error text: drivers quote DSNs in their
// errors (a URL parse error prints the whole URL, password included), and errors end
// up in logs, the dashboard and the state store.
func newRedactor(dsns ...string) redact.Redactor { return redact.ForDSN(dsns...) }
