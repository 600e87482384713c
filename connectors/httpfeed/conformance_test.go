package httpfeed

import (
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/sourcetest"
)

func TestConformanceJSONPageNumbers(t *testing.T) {
	sourcetest.Run(t, feedHarness("page"))
}

func TestConformanceJSONNextLinks(t *testing.T) {
	sourcetest.Run(t, feedHarness("next"))
}

func feedHarness(pagination string) sourcetest.Harness {
	return sourcetest.Harness{Open: func(t *testing.T, s sourcetest.Settings) sourcetest.Fixture {
		f := newFeed()
		srv := serve(t, f)
		o := NewOptions()
		o.URL, o.Format = srv.URL+"/api/items", FormatJSON
		o.JSON.Records = "data.items"
		o.Pagination = PaginationOptions{Type: pagination, Param: "page", Start: 1, SizeParam: "size", Size: s.BatchSize, MaxPages: 100}
		if pagination == "next" {
			o.Pagination.Next = "links.next"
			o.Query = map[string]string{"size": "10"}
		}
		src := open(t, o, nil, s.Clock)
		return sourcetest.Fixture{
			Source: src,
			Put: func(t *testing.T, items ...sourcetest.Item) {
				for _, it := range items {
					f.put(it.ID, it.UpdatedAt, it.Payload)
				}
			},
			Delete: func(t *testing.T, ids ...int64) {
				f.mu.Lock()
				defer f.mu.Unlock()
				for _, id := range ids {
					delete(f.items, id)
				}
			},
			Break: func(t *testing.T) func() {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.broken = true
				return func() {
					f.mu.Lock()
					defer f.mu.Unlock()
					f.broken = false
				}
			},
		}
	}}
}
