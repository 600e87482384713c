package natssink

import "testing"

func TestTokenMakesSubjectSafeTokens(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"UBND-CG", "ubnd-cg"},
		{"", "_"},
		{"ubnd_cg", "ubnd_cg"},
		{"Sở Y tế", "so_y_te"},
		{"ĐÀ NẴNG", "da_nang"},
		{"UBND Huyện Cần Giuộc", "ubnd_huyen_can_giuoc"},
		{"a.b", "a_b"},     // a dot would add a token
		{"x*y>z", "x_y_z"}, // wildcards
		{"tab\tline\nend", "tab_line_end"},
		{"🙂", "_"},
		{"\u0301", "_"}, // a lone combining mark
		{"Sở-TN&MT/2", "so-tn_mt_2"},
	} {
		if got := Token(tc.in); got != tc.want {
			t.Errorf("Token(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSubjectIsPrefixEntityAgency(t *testing.T) {
	if got := Subject("egov.events", "dossier", "UBND-CG"); got != "egov.events.dossier.ubnd-cg" {
		t.Fatalf("got %q", got)
	}
	if got := Subject("egov.events", "outage", ""); got != "egov.events.outage._" {
		t.Fatalf("empty agency: got %q", got)
	}
}

func TestCovers(t *testing.T) {
	const want = "egov.events.*.*"
	for _, tc := range []struct {
		filter string
		ok     bool
	}{
		{"egov.events.>", true},
		{"egov.>", true},
		{">", true},
		{"egov.events.*.*", true},
		{"*.events.*.*", true},
		{"egov.events.*.>", true},
		{"egov.events.dossier.*", false}, // only one entity
		{"egov.events.*", false},         // one token too few
		{"egov.events.*.*.*", false},     // one token too many
		{"egov.events", false},
		{"other.>", false},
		{"egov.events.*.*.>", false},
	} {
		if got := covers(tc.filter, want); got != tc.ok {
			t.Errorf("covers(%q, %q) = %v, want %v", tc.filter, want, got, tc.ok)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, p := range []string{"egov.events", "egov", "EGOV_events-1.x"} {
		if msg := checkPrefix(p); msg != "" {
			t.Errorf("checkPrefix(%q) = %q, want ok", p, msg)
		}
	}
	for _, p := range []string{"", "egov events", "egov.*", "egov.>", ">", ".egov", "egov.", "egov..x", "egov.sự_kiện", "egov\tx", "$JS.x"} {
		if msg := checkPrefix(p); msg == "" {
			t.Errorf("checkPrefix(%q) accepted a bad prefix", p)
		}
	}
}
