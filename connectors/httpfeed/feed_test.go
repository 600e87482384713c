package httpfeed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/internal/webfetch"
)

func jsonOptions(url string) *Options {
	o := NewOptions()
	o.URL, o.Format = url, FormatJSON
	o.JSON.Records = "data.items"
	return o
}

func TestServerErrorsAreRetriedWithBackoffThenSucceed(t *testing.T) {
	var calls atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, `{"data":{"items":[{"stationName":"Trạm Tân An 1"}]}}`)
	}))
	rows, _, err := readAll(t.Context(), open(t, jsonOptions(srv.URL), nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["stationName"] != "Trạm Tân An 1" || calls.Load() != 3 {
		t.Fatalf("rows %v after %d calls; want the one record after 3 calls", rows, calls.Load())
	}
}

func TestServerErrorsBeyondTheRetriesFailThePoll(t *testing.T) {
	var calls atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	o := jsonOptions(srv.URL)
	o.HTTP.Retries = 2
	_, _, err := readAll(t.Context(), open(t, o, nil, nil))
	var se *webfetch.StatusError
	if !errors.As(err, &se) || se.Status != 500 || se.Attempts != 3 || calls.Load() != 3 {
		t.Fatalf("err = %v after %d calls; want HTTP 500 after 3 attempts", err, calls.Load())
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no", http.StatusForbidden)
	}))
	_, _, err := readAll(t.Context(), open(t, jsonOptions(srv.URL), nil, nil))
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || calls.Load() != 1 {
		t.Fatalf("err = %v after %d calls; want HTTP 403 after 1 call", err, calls.Load())
	}
}

// slow answers the first `slow` requests only when the client gives up.
func slow(t *testing.T, slowCalls int32) (*atomic.Int32, string) {
	var calls atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= slowCalls {
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, `{"data":{"items":[{"stationName":"x"}]}}`)
	}))
	return &calls, srv.URL
}

func TestASlowAnswerTimesOutAndIsRetried(t *testing.T) {
	calls, url := slow(t, 1)
	o := jsonOptions(url)
	o.HTTP.Timeout = dur(100 * time.Millisecond)
	rows, _, err := readAll(t.Context(), open(t, o, nil, nil))
	if err != nil || len(rows) != 1 || calls.Load() != 2 {
		t.Fatalf("rows %v, err %v after %d calls; want the record after a timeout and a retry", rows, err, calls.Load())
	}
}

func TestTimeoutsBeyondTheRetriesFailThePoll(t *testing.T) {
	calls, url := slow(t, 100)
	o := jsonOptions(url)
	o.HTTP.Timeout = dur(50 * time.Millisecond)
	o.HTTP.Retries = 1
	_, _, err := readAll(t.Context(), open(t, o, nil, nil))
	if err == nil || !strings.Contains(err.Error(), "timed out after 2 attempt(s)") || calls.Load() != 2 {
		t.Fatalf("err = %v after %d calls; want a timeout after 2 attempts", err, calls.Load())
	}
}

func TestAnAnswerOverTheSizeCapFailsThePoll(t *testing.T) {
	var calls atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprintf(w, `{"data":{"items":[{"reason":%q}]}}`, strings.Repeat("x", 5000))
	}))
	o := jsonOptions(srv.URL)
	o.HTTP.MaxBytes = 1000
	_, _, err := readAll(t.Context(), open(t, o, nil, nil))
	if !errors.Is(err, webfetch.ErrTooLarge) || calls.Load() != 1 {
		t.Fatalf("err = %v after %d calls; want ErrTooLarge, not retried", err, calls.Load())
	}
}

func TestUnchangedAnswersCostA304AndStillYieldTheWholeSet(t *testing.T) {
	var full, notModified atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprint(w, `{"data":{"items":[{"stationName":"a"},{"stationName":"b"}]}}`)
	}))
	src := open(t, jsonOptions(srv.URL), nil, nil)
	for poll := 1; poll <= 3; poll++ {
		rows, _, err := readAll(t.Context(), src)
		if err != nil || len(rows) != 2 {
			t.Fatalf("poll %d: %d rows, %v; want both records", poll, len(rows), err)
		}
	}
	if full.Load() != 1 || notModified.Load() != 2 {
		t.Fatalf("%d full answers and %d 304s; want 1 and 2", full.Load(), notModified.Load())
	}
}

func TestRequestsToOneHostAreSpacedByTheRateLimit(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"data":{"items":[]}}`)
	}))
	o := jsonOptions(srv.URL)
	o.Each.Values = []string{"PB0601", "PB0602", "PB0603", "PB0604"}
	o.Query = map[string]string{"madvi": "{{each}}"}
	o.HTTP.RateLimit = "2/s"
	// A clock that moves only when the limiter sleeps: the waits it asks for are
	// exactly what the limit demands.
	var mu sync.Mutex
	now := time.Date(2026, 8, 11, 1, 0, 0, 0, time.UTC)
	var waits []time.Duration
	s := o.HTTP.Settings(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	s.Sleep = func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		now = now.Add(d)
		return nil
	}
	if _, _, err := readAll(t.Context(), open(t, o, &s, nil)); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v (the first request goes at once)", waits, want)
	}
}

func TestSessionCookiesDatesAndEachValuesShapeTheRequests(t *testing.T) {
	type seen struct{ query, referer, xrw string }
	var mu sync.Mutex
	var got []seen
	mux := http.NewServeMux()
	mux.HandleFunc("/TraCuu/Lich", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "ASP.NET_SessionId", Value: "s1", Path: "/"})
		fmt.Fprint(w, "<html>page</html>")
	})
	mux.HandleFunc("/TraCuu/Data", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("ASP.NET_SessionId"); err != nil || c.Value != "s1" {
			http.Error(w, "no session", http.StatusForbidden)
			return
		}
		mu.Lock()
		got = append(got, seen{r.URL.RawQuery, r.Header.Get("Referer"), r.Header.Get("X-Requested-With")})
		mu.Unlock()
		fmt.Fprintf(w, `[{"reason":"bảo trì","unit":%q}]`, r.URL.Query().Get("madvi"))
	})
	srv := serve(t, mux)
	o := NewOptions()
	o.URL, o.Format = srv.URL+"/TraCuu/Data", FormatJSON
	o.Session.URL = srv.URL + "/TraCuu/Lich"
	o.Headers = map[string]string{"Referer": srv.URL + "/TraCuu/Lich", "X-Requested-With": "XMLHttpRequest"}
	o.Query = map[string]string{"madvi": "{{each}}", "tuNgay": "{{today}}", "denNgay": "{{today+4}}", "iso": "{{today-1|yyyy-MM-dd}}"}
	o.DateLayout = "dd-MM-yyyy"
	o.Each = EachOptions{Values: []string{"PB0601", "PB0614"}, Column: "MaDonVi"}
	// 18:30 UTC on 10 August is 01:30 on 11 August in Vietnam: "today" is the 11th.
	clock := func() time.Time { return time.Date(2026, 8, 10, 18, 30, 0, 0, time.UTC) }
	rows, batches, err := readAll(t.Context(), open(t, o, nil, clock))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0]["MaDonVi"] != "PB0601" || rows[1]["MaDonVi"] != "PB0614" || rows[1]["unit"] != "PB0614" || batches != 2 {
		t.Fatalf("rows %v in %d batches; want one per unit, tagged, in 2 batches", rows, batches)
	}
	want := []seen{
		{"denNgay=15-08-2026&iso=2026-08-10&madvi=PB0601&tuNgay=11-08-2026", srv.URL + "/TraCuu/Lich", "XMLHttpRequest"},
		{"denNgay=15-08-2026&iso=2026-08-10&madvi=PB0614&tuNgay=11-08-2026", srv.URL + "/TraCuu/Lich", "XMLHttpRequest"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests\n %v\nwant\n %v", got, want)
	}
}

func TestJSONRecordsMissingFromTheAnswerAreAnUnknownShape(t *testing.T) {
	for name, body := range map[string]string{
		"path missing": `{"error":"maintenance"}`,
		"not a list":   `{"data":{"items":{"a":1}}}`,
		"not JSON":     `<html><body>Hệ thống đang bảo trì</body></html>`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
			_, _, err := readAll(t.Context(), open(t, jsonOptions(srv.URL), nil, nil))
			if !errors.Is(err, ErrUnknownShape) {
				t.Fatalf("err = %v, want ErrUnknownShape", err)
			}
		})
	}
}

func TestJSONNestedValuesAreFlattenedAndNumbersTyped(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"data":{"items":[{"id":42,"score":8.25,"ok":true,"none":null,"station":{"name":"Trạm 1","code":"T1"},"tags":["a","b"]}]}}`)
	}))
	rows, _, err := readAll(t.Context(), open(t, jsonOptions(srv.URL), nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(map[string]any{"id": int64(42), "score": 8.25, "ok": true, "none": nil, "station.name": "Trạm 1", "station.code": "T1", "tags": `["a","b"]`})
	if len(rows) != 1 || fmt.Sprint(map[string]any(rows[0])) != want {
		t.Fatalf("rows %v, want [%v]", rows, want)
	}
}

func TestNextLinkToAnotherHostIsRefused(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"data":{"items":[{"a":1}]},"next":"https://elsewhere.example/api?page=2"}`)
	}))
	o := jsonOptions(srv.URL)
	o.Pagination = PaginationOptions{Type: "next", Next: "next", MaxPages: 10}
	_, _, err := readAll(t.Context(), open(t, o, nil, nil))
	if err == nil || !strings.Contains(err.Error(), "leaves") {
		t.Fatalf("err = %v, want the next link refused", err)
	}
}

func TestMorePagesThanMaxPagesIsAnErrorNotACut(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"data":{"items":[{"a":1}]}}`) // every page full: never ends
	}))
	o := jsonOptions(srv.URL)
	o.Pagination = PaginationOptions{Type: "page", Param: "page", Start: 1, MaxPages: 5}
	_, _, err := readAll(t.Context(), open(t, o, nil, nil))
	if err == nil || !strings.Contains(err.Error(), "max_pages") {
		t.Fatalf("err = %v, want max_pages exceeded", err)
	}
}

func TestLinkHeaderNextPages(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" {
			w.Header().Set("Link", `</x?cursor=abc>; rel="next", </x>; rel="first"`)
			fmt.Fprint(w, `[{"n":1},{"n":2}]`)
			return
		}
		fmt.Fprint(w, `[{"n":3}]`)
	}))
	o := NewOptions()
	o.URL, o.Format = srv.URL+"/x", FormatJSON
	o.Pagination = PaginationOptions{Type: "next", MaxPages: 10}
	rows, batches, err := readAll(t.Context(), open(t, o, nil, nil))
	if err != nil || len(rows) != 3 || batches != 2 {
		t.Fatalf("%d rows in %d batches, %v; want 3 in 2", len(rows), batches, err)
	}
}

func TestCSVFeedWithTitleLineAndSemicolons(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "\xef\xbb\xbfDANH SÁCH ĐIỂM TIÊM;;\nTên điểm;Địa chỉ;Ngày\n Trạm Y tế Tân An ;Phường 1;11/08/2026\n;;\nBV Đa khoa;Phường 3;12/08/2026\n")
	}))
	o := NewOptions()
	o.URL, o.Format = srv.URL, FormatCSV
	o.CSV = CSVOptions{Delimiter: ";", HeaderRow: 2}
	rows, _, err := readAll(t.Context(), open(t, o, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0]["Tên điểm"] != " Trạm Y tế Tân An " || rows[1]["Ngày"] != "12/08/2026" {
		t.Fatalf("rows %v", rows)
	}
}

func TestCSVFeedEmptyAnswerIsAnError(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	o := NewOptions()
	o.URL, o.Format = srv.URL, FormatCSV
	_, _, err := readAll(t.Context(), open(t, o, nil, nil))
	if !errors.Is(err, ErrUnknownShape) {
		t.Fatalf("err = %v, want ErrUnknownShape", err)
	}
}

func TestHTMLFeedRecordsEmptyTextAndUnknownShape(t *testing.T) {
	var body atomic.Value
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body.Load()) }))
	o := NewOptions()
	o.URL, o.Format = srv.URL, FormatHTML
	o.HTML = HTMLOptions{
		Records: "table.ds tbody tr",
		Fields:  map[string]string{"name": "td:nth-child(1)", "link": "a@href", "row": "."},
		Empty:   []string{"Không có dữ liệu"},
	}
	src := open(t, o, nil, nil)

	body.Store(`<table class="ds"><tbody><tr><td>Tr&#7841;m  1</td><td><a href="/d/1">xem</a></td></tr><tr><td>Trạm 2</td><td><a href="/d/2">xem</a></td></tr></tbody></table>`)
	rows, _, err := readAll(t.Context(), src)
	if err != nil || len(rows) != 2 || rows[0]["name"] != "Trạm 1" || rows[1]["link"] != "/d/2" || rows[0]["row"] != "Trạm 1xem" {
		t.Fatalf("rows %v, %v", rows, err)
	}
	body.Store(`<p>KHONG CO DU LIEU</p>`)
	if rows, _, err := readAll(t.Context(), src); err != nil || len(rows) != 0 {
		t.Fatalf("a page saying it is empty: rows %v, %v; want none and no error", rows, err)
	}
	body.Store(`<p>Phiên làm việc đã hết hạn</p>`)
	if _, _, err := readAll(t.Context(), src); !errors.Is(err, ErrUnknownShape) {
		t.Fatalf("a page in another shape: err %v, want ErrUnknownShape", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	o := NewOptions()
	o.URL = "ftp://x"
	o.Format = "xml"
	o.Query = map[string]string{"d": "{{tomorrow}}"}
	o.Pagination.Type = "cursor"
	o.HTTP.RateLimit = "fast"
	var got []string
	o.Validate(func(field, format string, args ...any) { got = append(got, field) })
	want := "[format pagination.type url query.d http.rate_limit]"
	if fmt.Sprint(got) != want {
		t.Fatalf("reported %v, want %v", got, want)
	}
}

func TestPOSTFormCarriesPlaceholdersAndPageNumbers(t *testing.T) {
	var mu sync.Mutex
	var forms []string
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			http.Error(w, "want a form POST", http.StatusMethodNotAllowed)
			return
		}
		mu.Lock()
		forms = append(forms, r.PostForm.Encode())
		mu.Unlock()
		if r.PostForm.Get("p") == "1" {
			fmt.Fprint(w, `{"rows":[{"a":1},{"a":2}]}`)
			return
		}
		fmt.Fprint(w, `{"rows":[{"a":3}]}`)
	}))
	o := NewOptions()
	o.URL, o.Method, o.Format = srv.URL, "POST", FormatJSON
	o.Form = map[string]string{"ngay": "{{today}}"}
	o.JSON.Records = "rows"
	o.Pagination = PaginationOptions{Type: "page", Param: "p", Start: 1, SizeParam: "n", Size: 2, MaxPages: 10}
	clock := func() time.Time { return time.Date(2026, 8, 11, 3, 0, 0, 0, time.UTC) }
	rows, _, err := readAll(t.Context(), open(t, o, nil, clock))
	if err != nil || len(rows) != 3 {
		t.Fatalf("rows %v, %v", rows, err)
	}
	if want := "[n=2&ngay=11%2F08%2F2026&p=1 n=2&ngay=11%2F08%2F2026&p=2]"; fmt.Sprint(forms) != want {
		t.Fatalf("forms %v, want %v", forms, want)
	}
}

func TestHTMLNextLinkBySelector(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("trang") {
		case "":
			fmt.Fprint(w, `<ul><li class="tb">Thông báo 1</li><li class="tb">Thông báo 2</li></ul><a class="next" href="?trang=2">Sau</a>`)
		default:
			fmt.Fprint(w, `<ul><li class="tb">Thông báo 3</li></ul>`)
		}
	}))
	o := NewOptions()
	o.URL, o.Format = srv.URL+"/thong-bao", FormatHTML
	o.HTML = HTMLOptions{Records: "li.tb", Fields: map[string]string{"title": "."}}
	o.Pagination = PaginationOptions{Type: "next", Next: "a.next", MaxPages: 10}
	rows, batches, err := readAll(t.Context(), open(t, o, nil, nil))
	if err != nil || len(rows) != 3 || rows[2]["title"] != "Thông báo 3" || batches != 2 {
		t.Fatalf("rows %v in %d batches, %v", rows, batches, err)
	}
}

func TestASlowAnswerWithinTheTimeoutIsRead(t *testing.T) {
	var calls atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprint(w, `{"data":{"items":[{"a":1},`)
		w.(http.Flusher).Flush()
		select { // the rest of the body comes late, well inside the timeout
		case <-time.After(150 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, `{"a":2}]}}`)
	}))
	o := jsonOptions(srv.URL)
	o.HTTP.Timeout = dur(10 * time.Second)
	rows, _, err := readAll(t.Context(), open(t, o, nil, nil))
	if err != nil || len(rows) != 2 || calls.Load() != 1 {
		t.Fatalf("rows %v, %v after %d calls; want both records at the first attempt", rows, err, calls.Load())
	}
}

func TestLastModifiedIsSentBackAsIfModifiedSince(t *testing.T) {
	const stamp = "Mon, 10 Aug 2026 08:00:00 GMT"
	var notModified atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Modified-Since") == stamp {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Last-Modified", stamp)
		fmt.Fprint(w, "stationName,reason\nTrạm 1,x\n")
	}))
	o := NewOptions()
	o.URL, o.Format = srv.URL+"/lich.csv", FormatCSV
	src := open(t, o, nil, nil)
	for poll := 1; poll <= 2; poll++ {
		if rows, _, err := readAll(t.Context(), src); err != nil || len(rows) != 1 {
			t.Fatalf("poll %d: rows %v, %v", poll, rows, err)
		}
	}
	if notModified.Load() != 1 {
		t.Fatalf("%d 304s, want 1", notModified.Load())
	}
}
