package zalo

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

func TestSplitText(t *testing.T) {
	long := strings.Repeat("a", 25)
	tests := []struct {
		text string
		max  int
		want []string
	}{
		{"", 10, nil},
		{"Ngắn.", 10, []string{"Ngắn."}},
		{"Một câu. Hai câu. Ba câu.", 18, []string{"Một câu. Hai câu.", "Ba câu."}},
		{"Câu một!\nCâu hai? Câu ba…", 12, []string{"Câu một!", "Câu hai?", "Câu ba…"}},
		{"không có dấu chấm nào ở đây cả", 12, []string{"không có dấu", "chấm nào ở", "đây cả"}},
		{long, 10, []string{long[:10], long[10:20], long[20:]}},
		{"Đúng mười. Tiếp", 10, []string{"Đúng mười.", "Tiếp"}},
	}
	for _, tt := range tests {
		got := splitText(tt.text, tt.max)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("splitText(%q, %d) = %q; want %q", tt.text, tt.max, got, tt.want)
		}
		for _, p := range got {
			if n := utf8.RuneCountInString(p); n > tt.max {
				t.Errorf("part %q has %d characters, over %d", p, n, tt.max)
			}
		}
	}
}

func TestQuietHours(t *testing.T) {
	q := quiet{start: 22 * 60, end: 6 * 60, zone: hcm}
	at := func(h, m int) time.Time { return time.Date(2026, 3, 10, h, m, 0, 0, hcm) }
	tests := []struct {
		now    time.Time
		in     bool
		endsAt time.Time
	}{
		{at(21, 59), false, time.Time{}},
		{at(22, 0), true, at(30, 0)},
		{at(23, 30), true, at(30, 0)},
		{at(3, 0), true, at(6, 0)},
		{at(6, 0), false, time.Time{}},
		{at(23, 0).UTC(), true, at(30, 0)}, // the clock's zone does not matter
	}
	for _, tt := range tests {
		end, in := q.until(tt.now)
		if in != tt.in || !end.Equal(tt.endsAt) {
			t.Errorf("until(%s) = %s, %v; want %s, %v", tt.now, end, in, tt.endsAt, tt.in)
		}
	}
	if _, in := (quiet{zone: hcm}).until(at(23, 0)); in {
		t.Error("an empty window is never quiet")
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(o *Options)
		want string // "" = valid
	}{
		{"complete", func(o *Options) {}, ""},
		{"dry run needs no credentials", func(o *Options) { o.AppID, o.SecretKey, o.OAID, o.DryRun = "", "", "", true }, ""},
		{"missing secret", func(o *Options) { o.SecretKey = "" }, "secret_key: is required"},
		{"bad route", func(o *Options) { o.Routes = []string{"sms"} }, `routes[0]: unknown route "sms"`},
		{"rule route twice", func(o *Options) {
			o.Rules = map[string]RuleOptions{"r": {Routes: []string{"oa", "oa"}}}
		}, `rules.r.routes[1]: route "oa" is named twice`},
		{"template data without template", func(o *Options) {
			o.Rules = map[string]RuleOptions{"r": {TemplateData: map[string]string{"a": "b"}}}
		}, "rules.r.template_data: needs zns_template_id"},
		{"bad base URL", func(o *Options) { o.ZNSURL = "business.openapi.zalo.me" }, "zns_url: must be an absolute"},
		{"bad quiet hours", func(o *Options) { o.QuietHours.Start = "10pm" }, "quiet_hours: start"},
		{"citizens without the webhook's key", func(o *Options) { o.Citizens = &Citizens{} }, "oa_secret_key: is required with citizens"},
		{"look-up naming no field", func(o *Options) {
			o.OASecretKey, o.Citizens = "k", &Citizens{Lookups: []Lookup{{Keywords: []string{"HS"}, Entity: "dossier", Reply: "x"}}}
		}, "citizens.lookups[0]: name the field the citizen types"},
		{"area look-up without the crosswalk", func(o *Options) {
			o.OASecretKey, o.Citizens = "k", &Citizens{Lookups: []Lookup{{Keywords: []string{"CUPDIEN"}, Entity: "outage", Area: []string{"area"}, Reply: "x"}}}
		}, "citizens.lookups[0].area: needs citizens.places"},
		{"broken reply template", func(o *Options) {
			o.OASecretKey, o.Citizens = "k", &Citizens{Lookups: []Lookup{{Keywords: []string{"DIEM"}, Entity: "exam", Field: "sbd", Reply: "{{.sbd"}}}
		}, "citizens.lookups[0].reply: "},
		{"topic without rules", func(o *Options) {
			o.OASecretKey, o.Citizens = "k", &Citizens{Places: "p.csv", Topics: []Topic{{Name: "CUPDIEN"}}}
		}, "citizens.topics[0].rules: name at least one rule"},
		{"webhook window", func(o *Options) { o.Webhook.Window = 0 }, "webhook.window: must be more than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOptions()
			o.AppID, o.SecretKey, o.OAID = "app", "s3cr3t-value", "oa"
			tt.edit(o)
			var got []string
			o.Validate(func(field, format string, args ...any) {
				got = append(got, field+": "+strings.TrimSpace(sprintf(format, args...)))
			})
			joined := strings.Join(got, "\n")
			if tt.want == "" && joined != "" || tt.want != "" && !strings.Contains(joined, tt.want) {
				t.Fatalf("problems:\n%s\nwant %q", joined, tt.want)
			}
			if strings.Contains(joined, "s3cr3t-value") {
				t.Fatal("a problem quotes the secret")
			}
		})
	}
}

func TestOptionsDecodeFromYAML(t *testing.T) {
	src := `
app_id: app
secret_key_file: secret.txt
oa_id: oa
dry_run: true
rules:
  dossier.supplement_requested:
    routes: [oa]
    max_age: 7d
  dossier.result_ready:
    zns_template_id: "123456"
    template_data: { ma_ho_so: code, noi_dung: $text }
quiet_hours: { start: "21:30", end: "07:00" }
prices: { zns: 300, sms: 800 }
`
	dir := t.TempDir()
	if err := writeFile(dir+"/secret.txt", "from-a-file\n"); err != nil {
		t.Fatal(err)
	}
	d := config.NewDecoder(dir + "/c.yaml")
	o := NewOptions()
	d.DecodeDocument([]byte(src), o)
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if o.SecretKey != "from-a-file" || o.Rules["dossier.supplement_requested"].MaxAge.D() != 7*24*time.Hour ||
		o.Rules["dossier.result_ready"].TemplateData["noi_dung"] != "$text" || o.Prices.SMS != 800 || o.QuietHours.End != "07:00" {
		t.Fatalf("decoded %+v", o)
	}
	var a Age
	if err := yaml.Unmarshal([]byte("3 days"), &a); err == nil {
		t.Fatal("3 days accepted")
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
