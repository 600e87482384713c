// Package httpfeed is the `httpfeed` source: a JSON, HTML or CSV feed over HTTP,
// read whole on every poll (pipeline.FullSet).
//
// One read walks every value of `each` (one request sequence per unit code, say)
// and, for each, every page (by page number or next link), one page per batch.
// Query, form and header values may hold date placeholders ({{today+4}}) fixed for
// the whole read. Records are found at a JSON path, by CSS selectors
// (github.com/PuerkitoBio/goquery) or as CSV rows under a header. A page whose
// records are not where the config says is ErrUnknownShape: the read fails, so the
// engine never takes a broken poll for disappeared records. Requests go through
// internal/webfetch: a per-host rate limit, retries on timeouts and 5xx,
// conditional requests and a size cap.
package httpfeed
