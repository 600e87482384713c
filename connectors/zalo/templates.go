package zalo

import (
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// parseTemplate compiles a reply template. Record fields come as the snapshot
// keeps them (times as RFC 3339 text), so date, time and datetime read either a
// time or such text and show it in the province's zone.
func parseTemplate(name, src string, zone *time.Location) (*template.Template, error) {
	if zone == nil {
		zone = transform.DefaultZone()
	}
	show := func(layout string) func(v any) string {
		return func(v any) string {
			t, ok := asTime(v)
			if !ok {
				return fmt.Sprint(v)
			}
			return t.In(zone).Format(layout)
		}
	}
	t, err := template.New(name).Funcs(template.FuncMap{
		"date": show("02/01/2006"), "time": show("15:04"), "datetime": show("15:04 02/01/2006"),
		"mask_phone": transform.MaskPhone, "choose": choose,
	}).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "template: "))
	}
	return t, nil
}

func asTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		return t, err == nil
	}
	return time.Time{}, false
}

// render runs a template; one that fails on a record renders as nothing rather
// than failing the citizen's whole question. A field a record lacks shows as
// nothing, not as Go's "<no value>".
func render(t *template.Template, data map[string]any) string {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(b.String(), "<no value>", ""))
}

// choose shows a code as words: {{choose .status "9" "đã có kết quả" "10" "đã trả kết quả"}};
// a code not listed shows as itself.
func choose(v any, pairs ...string) string {
	code := fmt.Sprint(v)
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == code {
			return pairs[i+1]
		}
	}
	return code
}
