package webfetch

import (
	"net/url"
	"testing"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"1/s": 1, "30/m": 0.5, "1/5s": 0.2, "2": 2, "0": 0, " 3 / s ": 3, "120/h": 120.0 / 3600} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "1/x", "-1/s", "1/0s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func TestRedactURLDropsUserAndQuery(t *testing.T) {
	u, _ := url.Parse("https://user:pw@api.example.vn/v1/x?token=abc")
	if got := redactURL(u); got != "https://api.example.vn/v1/x?…" {
		t.Fatalf("redactURL = %q", got)
	}
}
