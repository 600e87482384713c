package httpfeed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/webfetch"
	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

var ict = time.FixedZone("ICT", 7*3600)

// testSettings: fast retries, no rate limit unless a test sets one.
func testSettings(o *Options) *webfetch.Settings {
	s := o.HTTP.Settings(time.Now)
	s.RateLimit = 0
	s.RetryWait, s.RetryMaxWait = time.Millisecond, 5*time.Millisecond
	return &s
}

func open(t *testing.T, o *Options, s *webfetch.Settings, clock pipeline.Clock) *Source {
	t.Helper()
	var errs []string
	o.Validate(func(field, format string, args ...any) { errs = append(errs, field+": "+fmt.Sprintf(format, args...)) })
	if len(errs) > 0 {
		t.Fatalf("options: %v", errs)
	}
	if s == nil {
		s = testSettings(o)
	}
	if clock == nil {
		clock = time.Now
	}
	src, err := Open(pipeline.Env{Name: "test", Zone: ict, Clock: clock}, o, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// readAll reads the whole set from the start, as one poll does.
func readAll(ctx context.Context, src pipeline.Source) ([]pipeline.Row, int, error) {
	var rows []pipeline.Row
	var pos pipeline.Position
	for batches := 1; batches < 1000; batches++ {
		next, done, err := src.ReadBatch(ctx, pos, pipeline.EmitFunc(func(r pipeline.Row) error {
			rows = append(rows, r)
			return nil
		}))
		if err != nil {
			return rows, batches, err
		}
		if done {
			return rows, batches, nil
		}
		pos = next
	}
	return rows, 0, fmt.Errorf("never done")
}

// feed is a test JSON API: records {id, updated_at, payload} in pages, by page
// number (?page=N&size=M) or by a next link.
type feed struct {
	mu       sync.Mutex
	items    map[int64]map[string]any
	broken   bool
	requests []*http.Request
}

func newFeed() *feed { return &feed{items: map[int64]map[string]any{}} }

func (f *feed) put(id int64, at time.Time, payload string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items[id] = map[string]any{"id": id, "updated_at": at.UTC().Format(time.RFC3339Nano), "payload": payload}
}

func (f *feed) sorted() []map[string]any {
	ids := make([]int64, 0, len(f.items))
	for id := range f.items {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]map[string]any, len(ids))
	for i, id := range ids {
		out[i] = f.items[id]
	}
	return out
}

func (f *feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Clone(context.Background()))
	if f.broken {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	size, _ := strconv.Atoi(r.URL.Query().Get("size"))
	if size == 0 {
		size = 10
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page == 0 {
		page = 1
	}
	all := f.sorted()
	lo := min((page-1)*size, len(all))
	hi := min(lo+size, len(all))
	body := map[string]any{"data": map[string]any{"items": all[lo:hi]}, "total": len(all)}
	if hi < len(all) {
		body["links"] = map[string]any{"next": fmt.Sprintf("/api/items?page=%d&size=%d", page+1, size)}
	} else {
		body["links"] = map[string]any{"next": nil}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }
