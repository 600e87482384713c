package httpfeed

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/mapping"
)

// A water company's paginated API read with the shipped water-outage mapping: the
// feed source is not EVN-specific.
func TestPaginatedAPIMapsWithTheWaterOutageMapping(t *testing.T) {
	pages := map[int]string{
		1: `{"data":{"items":[
			{"stationName":"Trạm cấp nước Tân An 1","fromDate":"2026-08-12T08:00:00+07:00","toDate":"2026-08-12T16:00:00+07:00","reason":"Súc xả đường ống"},
			{"stationName":"Trạm Bến Lức","fromDate":"12/08/2026 08:00","toDate":"12/08/2026 10:30","reason":null}]}}`,
		2: `{"data":{"items":[
			{"stationName":"Trạm Cần Giuộc","fromDate":"2026-08-13T07:00:00+07:00","toDate":"2026-08-13T11:00:00+07:00","reason":"Sửa chữa"}]}}`,
	}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("from") != "2026-08-11" || r.URL.Query().Get("pageSize") != "2" {
			http.Error(w, "bad query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		p, _ := strconv.Atoi(r.URL.Query().Get("page"))
		body, ok := pages[p]
		if !ok {
			body = `{"data":{"items":[]}}`
		}
		fmt.Fprint(w, body)
	}))
	o := jsonOptions(srv.URL + "/v1/interruptions")
	o.Query = map[string]string{"from": "{{today}}", "to": "{{today+7}}"}
	o.DateLayout = "yyyy-MM-dd"
	o.Pagination = PaginationOptions{Type: "page", Param: "page", Start: 1, SizeParam: "pageSize", Size: 2, MaxPages: 10}
	clock := func() time.Time { return time.Date(2026, 8, 11, 2, 0, 0, 0, time.UTC) }
	rows, batches, err := readAll(t.Context(), open(t, o, nil, clock))
	if err != nil || len(rows) != 3 || batches != 2 {
		t.Fatalf("%d rows in %d batches, %v; want 3 in 2 (the short second page is the last)", len(rows), batches, err)
	}
	m, err := mapping.Load("../../mappings/water-outage.yaml", mapping.Options{Zone: ict})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Trạm cấp nước Tân An 1|2026-08-12T01:00:00Z 2026-08-12T09:00:00Z",
		"Trạm Bến Lức|2026-08-12T01:00:00Z 2026-08-12T03:30:00Z",
		"Trạm Cần Giuộc|2026-08-13T00:00:00Z 2026-08-13T04:00:00Z",
	}
	for i, row := range rows {
		rec, err := m.Apply(row, "CAPNUOC")
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		got := fmt.Sprintf("%s %s", rec.Key, rec.Fields["end"].(time.Time).Format(time.RFC3339))
		if got != want[i] {
			t.Errorf("row %d: %s, want %s", i, got, want[i])
		}
	}
}
