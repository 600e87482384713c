package figures_test

import (
	"slices"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/figures"
)

func TestOfficialsOfAnAgencyFallBackToTheNearestParentThatHasSome(t *testing.T) {
	dir := figures.NewDirectory([]figures.Agency{
		{Code: "TINH", Name: "Tỉnh", Officials: []figures.Official{{Name: "VP UBND tỉnh", UserID: "u-tinh"}}},
		{Code: "HUYEN", Name: "Huyện", Parent: "TINH", Officials: []figures.Official{
			{Name: "Chánh VP", UserID: "u-huyen", Events: []string{"deadline.overdue"}},
		}},
		{Code: "XA-A", Name: "Xã A", Parent: "HUYEN", Officials: []figures.Official{
			{Name: "PCT xã A", UserID: "u-xa-a"},
			{Name: "Công chức một cửa", Phone: "0912 345 678", Events: []string{"deadline.*"}},
		}},
		{Code: "XA-B", Name: "Xã B", Parent: "HUYEN"},
	})
	who := func(code, rule string) []string {
		var out []string
		for _, o := range dir.Officials(code, rule) {
			out = append(out, o.Name+"|"+o.UserID+"|"+o.Phone)
		}
		return out
	}
	for _, c := range []struct {
		code, rule string
		want       []string
	}{
		{"XA-A", "deadline.due_soon", []string{"PCT xã A|u-xa-a|", "Công chức một cửa||84912345678"}},
		{"XA-A", "dossier.other", []string{"PCT xã A|u-xa-a|"}},
		// XA-B lists nobody: its district's official hears the overdue alert...
		{"XA-B", "deadline.overdue", []string{"Chánh VP|u-huyen|"}},
		// ...but not due soon, which only the province's office hears.
		{"XA-B", "deadline.due_soon", []string{"VP UBND tỉnh|u-tinh|"}},
		{"HUYEN", "deadline.overdue", []string{"Chánh VP|u-huyen|"}},
		{"NOT-DECLARED", "deadline.overdue", nil},
	} {
		if got := who(c.code, c.rule); !slices.Equal(got, c.want) {
			t.Errorf("officials of %s for %s = %q, want %q", c.code, c.rule, got, c.want)
		}
	}
}
