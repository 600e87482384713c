package zalo

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestZaloErrorCodesAreCounted(t *testing.T) {
	h := newHarness(t, nil)
	h.follower("u1", phoneN(1), true)
	h.fake.hook = code(-32)
	_ = h.deliver(newNotice("HS-1", "r", phoneN(1), "x."))
	_ = h.deliver(newNotice("HS-2", "r", phoneN(1), "x."))
	h.fake.hook = code(-201)
	_ = h.deliver(newNotice("HS-3", "r", phoneN(1), "x."))
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.sink)
	want := `
# HELP egov_zalo_errors_total Zalo API answers with an error code (HTTP 200 with error != 0), by code and class.
# TYPE egov_zalo_errors_total counter
egov_zalo_errors_total{class="bad_input",code="-201",sink="zalo"} 1
egov_zalo_errors_total{class="rate",code="-32",sink="zalo"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "egov_zalo_errors_total"); err != nil {
		t.Error(err)
	}
}
