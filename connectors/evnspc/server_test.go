package evnspc

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

var ict = time.FixedZone("ICT", 7*3600)

// site behaves as the EVN SPC customer-service site does: the page starts a
// session (cookie); the data action wants that cookie, the page as Referer and
// X-Requested-With, and answers HTTP 200 with an HTML fragment per unit.
type site struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	bodies    map[string]string // unit -> answer; a unit not here has no schedule
	pageFails int               // next session-page requests answer 500
	fails     map[string]int    // unit -> next data requests answer 503
	slow      map[string]int    // unit -> next data requests hang until the client gives up
	pages     int               // session pages served
	requests  []string          // data requests, "unit tuNgay denNgay"
	refused   []string          // handshake failures
	sessions  int
}

const noneBody = `<div><p class="text-center">Không có lịch ngừng giảm cung cấp điện</p></div>`

func newSite(t *testing.T) *site {
	s := &site{t: t, bodies: map[string]string{}, fails: map[string]int{}, slow: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc(PagePath, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pageFails > 0 {
			s.pageFails--
			http.Error(w, "Service Unavailable", http.StatusInternalServerError)
			return
		}
		s.pages++
		s.sessions++
		http.SetCookie(w, &http.Cookie{Name: "ASP.NET_SessionId", Value: fmt.Sprint("sess", s.sessions), Path: "/", HttpOnly: true})
		fmt.Fprint(w, "<html><body><h1>Lịch ngừng giảm cung cấp điện</h1></body></html>")
	})
	mux.HandleFunc(DataPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		unit := q.Get("madvi")
		s.mu.Lock()
		bad := ""
		if _, err := r.Cookie("ASP.NET_SessionId"); err != nil {
			bad = "no session cookie"
		} else if ref := r.Header.Get("Referer"); ref != s.srv.URL+PagePath {
			bad = "Referer " + ref
		} else if r.Header.Get("X-Requested-With") != "XMLHttpRequest" {
			bad = "no X-Requested-With"
		} else if q.Get("ChucNang") != "MaDonVi" {
			bad = "ChucNang " + q.Get("ChucNang")
		}
		if bad != "" {
			s.refused = append(s.refused, unit+": "+bad)
			s.mu.Unlock()
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		if s.fails[unit] > 0 {
			s.fails[unit]--
			s.mu.Unlock()
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		if s.slow[unit] > 0 {
			s.slow[unit]--
			s.mu.Unlock()
			<-r.Context().Done()
			return
		}
		s.requests = append(s.requests, unit+" "+q.Get("tuNgay")+" "+q.Get("denNgay"))
		body, ok := s.bodies[unit]
		if !ok {
			body = noneBody
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *site) set(unit, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies[unit] = body
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var longAn = []string{"PB0601", "PB0602", "PB0603", "PB0604", "PB0605", "PB0606", "PB0607",
	"PB0608", "PB0609", "PB0610", "PB0611", "PB0612", "PB0613", "PB0614"}

// openEVN opens a source over the site with fast retries and no rate limit.
func openEVN(t *testing.T, s *site, units []string, clock pipeline.Clock, tune func(*Options)) *Source {
	t.Helper()
	o := NewOptions()
	o.Units, o.BaseURL = units, s.srv.URL
	o.HTTP.Timeout = cfgDur(2 * time.Second)
	if tune != nil {
		tune(o)
	}
	var errs []string
	o.Validate(func(field, format string, args ...any) { errs = append(errs, field+": "+fmt.Sprintf(format, args...)) })
	if len(errs) > 0 {
		t.Fatalf("options: %v", errs)
	}
	ws := o.HTTP.Settings(clock)
	ws.RateLimit = 0
	ws.RetryWait, ws.RetryMaxWait = time.Millisecond, 5*time.Millisecond
	src, err := Open(pipeline.Env{Name: "evn", Zone: ict, Clock: clock}, o, &ws)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func readAll(t *testing.T, src pipeline.Source) ([]pipeline.Row, int, error) {
	t.Helper()
	var rows []pipeline.Row
	var pos pipeline.Position
	for batches := 1; batches < 100; batches++ {
		next, done, err := src.ReadBatch(t.Context(), pos, pipeline.EmitFunc(func(r pipeline.Row) error {
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
	t.Fatal("never done")
	return nil, 0, nil
}

func cfgDur(d time.Duration) config.Duration { return config.Duration(d) }
