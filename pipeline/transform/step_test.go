package transform

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// decodeSteps reads a transform list the way a mapping file holds it.
func decodeSteps(t *testing.T, src string) ([]Step, error) {
	t.Helper()
	var f struct {
		Transform []Step `yaml:"transform"`
	}
	err := yaml.Unmarshal([]byte(src), &f)
	return f.Transform, err
}

func compileYAML(t *testing.T, src string, tables map[string]Table) func(string) (string, error) {
	t.Helper()
	steps, err := decodeSteps(t, src)
	if err != nil {
		t.Fatalf("decode %q: %v", src, err)
	}
	fn, err := Compile(steps, tables)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return fn
}

func ptr[T any](v T) *T { return &v }

func TestStepYAMLForms(t *testing.T) {
	tests := []struct {
		src  string
		want Step
	}{
		{"[trim]", Step{Name: "trim"}},
		{"[upper]", Step{Name: "upper"}},
		{"[lower]", Step{Name: "lower"}},
		{"[nfc]", Step{Name: "nfc"}},
		{"[collapse]", Step{Name: "collapse"}},
		{"[fold]", Step{Name: "fold"}},
		{"[digits]", Step{Name: "digits"}},
		{`[regex: 'HS-(\d+)']`, Step{Name: "regex", Pattern: `HS-(\d+)`}},
		{`[{regex: '(\d+)-(\d+)', group: 2}]`, Step{Name: "regex", Pattern: `(\d+)-(\d+)`, Group: ptr(2)}},
		{`[{group: 0, regex: '(\d+)'}]`, Step{Name: "regex", Pattern: `(\d+)`, Group: ptr(0)}},
		{`[replace: {old: '.', new: ''}]`, Step{Name: "replace", Old: "."}},
		{`[replace: {old: 'Tp.', new: 'Thành phố'}]`, Step{Name: "replace", Old: "Tp.", New: "Thành phố"}},
		{`[regex_replace: {pattern: '^0+(\d)', with: '$1'}]`, Step{Name: "regex_replace", Pattern: `^0+(\d)`, With: "$1"}},
		{`[{split: ',', index: -1}]`, Step{Name: "split", Sep: ",", Index: -1}},
		{`[split: '/']`, Step{Name: "split", Sep: "/"}},
		{`[prefix: 'H12.']`, Step{Name: "prefix", Text: "H12."}},
		{`[suffix: '-CG']`, Step{Name: "suffix", Text: "-CG"}},
		{`[lookup: communes]`, Step{Name: "lookup", Table: "communes"}},
		{`[pad_left: {width: 8, char: '0'}]`, Step{Name: "pad_left", Width: 8, Char: "0"}},
		{`[pad_left: {width: 8}]`, Step{Name: "pad_left", Width: 8}},
		{`[pad_left: {width: 5, char: 0}]`, Step{Name: "pad_left", Width: 5, Char: "0"}},
	}
	for _, tt := range tests {
		steps, err := decodeSteps(t, "transform: "+tt.src)
		if err != nil || len(steps) != 1 {
			t.Errorf("%s: %v, %d steps", tt.src, err, len(steps))
			continue
		}
		got := steps[0]
		if got.problem != "" {
			t.Errorf("%s: %s", tt.src, got.problem)
		}
		got.Line, got.Column = 0, 0
		if got.String() != tt.want.String() || got.Name != tt.want.Name || (got.Group == nil) != (tt.want.Group == nil) {
			t.Errorf("%s decoded as %s, want %s", tt.src, got, tt.want)
		}
	}
}

func TestStepKeepsItsYAMLPosition(t *testing.T) {
	steps, err := decodeSteps(t, "transform:\n  - trim\n  - regex: 'x'\n  - { split: ',', index: 1 }\n")
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{2, 5}, {3, 5}, {4, 5}}
	for i, st := range steps {
		if st.Line != want[i][0] || st.Column != want[i][1] {
			t.Errorf("step %d at %d:%d, want %d:%d", i, st.Line, st.Column, want[i][0], want[i][1])
		}
	}
}

// A step written wrongly decodes (so the rest of the mapping is still read and
// checked) and Compile reports its mistake.
func TestStepYAMLMistakes(t *testing.T) {
	tests := []struct{ src, err string }{
		{"[uper]", `transform[0] (uper): unknown transform "uper" (did you mean upper?)`},
		{"[uppercase]", `unknown transform "uppercase" (did you mean upper?)`},
		{"[unaccent]", "did you mean fold?"},
		{"[strip]", "did you mean trim?"},
		{"[xyzzy]", `unknown transform "xyzzy" (known: collapse, digits, fold, lookup, lower, nfc, pad_left, prefix, regex, regex_replace, replace, split, suffix, trim, upper)`},
		{"[phone_vn]", `"phone_vn" is a field type, not a transform; write type: phone_vn`},
		{"[phone]", `"phone" is a field type, not a transform; write type: phone_vn`},
		{"[regex]", "transform[0] (regex): needs an argument, e.g. regex: '(\\d+)'"},
		{"[lookup]", "needs an argument"},
		{"[[trim]]", "transform[0]: a transform is a name (trim) or a name with its argument (regex: '…'), not a list"},
		{"[{}]", "empty transform"},
		{"[{regx: 'a'}]", `transform[0] (regx): unknown transform "regx" (did you mean regex?)`},
		{"[{trim: yes}]", "transform[0] (trim): takes no argument; write it as a plain name: - trim"},
		{"[{regex: 'a', split: ','}]", "one transform per list item: found regex and split"},
		{"[{regex: 'a', grp: 2}]", `transform[0] (regex): has no option "grp" (did you mean group?)`},
		{"[{split: ',', group: 2}]", `has no option "group" (options: index)`},
		{"[{prefix: 'a', index: 2}]", `transform[0] (prefix): has no option "index"`},
		{"[{regex: 'a', group: two}]", `group wants a whole number, got "two"`},
		{"[{split: ',', index: 1.5}]", `index wants a whole number, got "1.5"`},
		{"[regex: [a, b]]", "transform[0] (regex): wants a single value, e.g. regex: '(\\d+)'"},
		{"[regex: ~]", "wants a single value"},
		{"[replace: 'x']", "transform[0] (replace): wants a mapping, e.g. replace: { old: '.', new: '' }"},
		{"[replace: {old: a, neww: b}]", `has no option "neww" (did you mean new?)`},
		{"[replace: {old: [a]}]", "transform[0] (replace): old wants a single value"},
		{"[regex_replace: {pattern: a, replace: b}]", `has no option "replace" (options: pattern, with)`},
		{"[pad_left: {width: eight}]", `transform[0] (pad_left): width wants a whole number, got "eight"`},
		{"[pad_left: 8]", "wants a mapping, e.g. pad_left: { width: 8, char: '0' }"},
		{"[trim, uper, upper, {regex: '('}]", "transform[1] (uper): unknown transform \"uper\" (did you mean upper?)\n" +
			"transform[3] (regex): bad regular expression \"(\": missing closing )"},
	}
	for _, tt := range tests {
		steps, err := decodeSteps(t, "transform: "+tt.src)
		if err != nil {
			t.Errorf("%s: decoding failed: %v", tt.src, err)
			continue
		}
		_, err = Compile(steps, nil)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want it to contain %q", tt.src, err, tt.err)
		}
	}
}

// Through the project's strict decoder, a wrongly written step does not stop
// decoding, and its StepError carries the line and column to report.
func TestStepMistakeThroughConfigDecoderKeepsItsPlace(t *testing.T) {
	var f struct {
		Fields map[string]struct {
			Transform []Step `yaml:"transform"`
		} `yaml:"fields"`
		Entity int `yaml:"entity"`
	}
	d := config.NewDecoder(filepath.Join("mappings", "dossier.yaml"))
	root := d.Parse([]byte("fields:\n  code:\n    transform: [trim, {regex: 'x', grp: 1}]\nentity: abc\n"))
	d.Decode(root, "", &f)
	if errs := d.Errs(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "dossier.yaml:4:9: entity") {
		t.Errorf("decoder errors = %v; want only the one about entity", errs)
	}
	_, err := Compile(f.Fields["code"].Transform, nil)
	var serrs StepErrors
	if !errors.As(err, &serrs) || len(serrs) != 1 {
		t.Fatalf("Compile error = %v", err)
	}
	if e := serrs[0]; e.Index != 1 || e.Line != 3 || e.Column != 23 || e.Msg != `has no option "grp" (did you mean group?)` {
		t.Errorf("StepError = %+v", e)
	}
}

func TestCompiledSteps(t *testing.T) {
	communes := TableFromMap(map[string]string{"Thị trấn Cần Giuộc": "27667", "Xã Long Hậu": "27676"}, true)
	withDefault := TableFromMap(map[string]string{"1": "Mới"}, false)
	withDefault.Default = ptr("Khác")
	tables := map[string]Table{"communes": communes, "status": withDefault}
	tests := []struct {
		src, in, want string
	}{
		{"[trim]", "  HS-01 \u00a0", "HS-01"},
		{"[upper]", "đường", "ĐƯỜNG"},
		{"[lower]", "ĐƯỜNG", "đường"},
		{"[nfc]", "Nguye\u0302\u0303n", "Nguyễn"},
		{"[collapse]", " Nguyễn \u00a0Văn  An ", "Nguyễn Văn An"},
		{"[fold]", "Thị trấn Cần Giuộc", "thi tran can giuoc"},
		{"[digits]", "CCCD 001-203-004-567", "001203004567"},
		{"[trim, upper]", " 000.00.12.h12-241127-0001 ", "000.00.12.H12-241127-0001"},
		{`[regex: 'HS-(\d+)']`, "Mã HS-2024 đã nhận", "2024"},
		{`[regex: '\d+']`, "Mã HS-2024 đã nhận", "2024"},
		{`[regex: 'HS-(\d+)']`, "no code here", ""},
		{`[regex: '(a)|(b)']`, "b", ""}, // the first group took no part in the match
		{`[{regex: '(\d+)-(\d+)', group: 2}]`, "12-345", "345"},
		{`[{regex: '(\d+)-(\d+)', group: 0}]`, "x 12-345 y", "12-345"},
		{`[replace: {old: '.', new: ''}]`, "000.00.12", "0000012"},
		{`[replace: {old: 'Tp.', new: 'Thành phố'}]`, "Tp. Hồ Chí Minh", "Thành phố Hồ Chí Minh"},
		{`[regex_replace: {pattern: '^0+(\d)', with: '$1'}]`, "000123", "123"},
		{`[regex_replace: {pattern: '\s+', with: ' '}]`, "a \t b", "a b"},
		{`[regex_replace: {pattern: '(?P<d>\d+)/(?P<m>\d+)', with: '${m}-${d}'}]`, "27/11", "11-27"},
		{`[{split: ',', index: 0}]`, "Cần Giuộc, Long An", "Cần Giuộc"},
		{`[{split: ', ', index: 1}]`, "Cần Giuộc, Long An", "Long An"},
		{`[{split: ',', index: -1}]`, "a,b,c", "c"},
		{`[{split: ',', index: -3}]`, "a,b,c", "a"},
		{`[{split: ',', index: 3}]`, "a,b,c", ""},
		{`[{split: ',', index: -4}]`, "a,b,c", ""},
		{`[{split: ',', index: 1}]`, "a,,c", ""},
		{`[{split: ' - ', index: 1}]`, "a - b - c", "b"},
		{`[{split: ';', index: 0}]`, "no separator", "no separator"},
		{`[{split: ';', index: -1}]`, "no separator", "no separator"},
		{`[prefix: 'H12.']`, "001", "H12.001"},
		{`[prefix: 'H12.']`, "", ""}, // blank stays blank
		{`[suffix: '-CG']`, "001", "001-CG"},
		{`[suffix: '-CG']`, "", ""},
		{`[lookup: communes]`, "THỊ TRẤN CẦN GIUỘC", "27667"},
		{`[lookup: communes]`, " xa long hau ", "27676"},
		{`[lookup: communes]`, "", ""},
		{`[lookup: status]`, "1", "Mới"},
		{`[lookup: status]`, "9", "Khác"},
		{`[pad_left: {width: 8, char: '0'}]`, "1234", "00001234"},
		{`[pad_left: {width: 8}]`, "1234", "00001234"},
		{`[pad_left: {width: 4, char: '·'}]`, "đ", "···đ"}, // counts characters, not bytes
		{`[pad_left: {width: 3}]`, "12345", "12345"},
		{`[pad_left: {width: 3}]`, "", ""},
		{`[trim, {regex: '(\d+)'}, pad_left: {width: 6}]`, " HS 42 ", "000042"},
		{"[]", "unchanged", "unchanged"},
	}
	for _, tt := range tests {
		fn := compileYAML(t, "transform: "+tt.src, tables)
		got, err := fn(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%s on %q = %q, %v; want %q", tt.src, tt.in, got, err, tt.want)
		}
	}
}

func TestLookupMissIsAnErrorNamingTheValueAndTable(t *testing.T) {
	tables := map[string]Table{"communes": TableFromMap(map[string]string{"Xã Long Hậu": "27676"}, true)}
	fn := compileYAML(t, "transform: [trim, lookup: communes]", tables)
	_, err := fn(" Xã Phước Lý ")
	if err == nil || err.Error() != `"Xã Phước Lý" is not in table communes` {
		t.Errorf("error = %v", err)
	}
}

func TestCompileMistakes(t *testing.T) {
	tables := map[string]Table{"communes": {}, "districts": {}}
	tests := []struct {
		step Step
		err  string
	}{
		{Step{Name: "regex", Pattern: `(\d+`}, `transform[0] (regex): bad regular expression "(\\d+": missing closing )`},
		{Step{Name: "regex", Pattern: `ab\qc`}, `bad regular expression "ab\\qc": invalid escape sequence "\\q" at character 3`},
		{Step{Name: "regex", Pattern: `Đ[z-a]`}, `invalid character class range "z-a" at character 3`},
		{Step{Name: "regex", Pattern: `a**`}, `invalid nested repetition operator "**" at character 2`},
		{Step{Name: "regex", Pattern: ""}, "the pattern is empty"},
		{Step{Name: "regex", Pattern: `(\d+)`, Group: ptr(2)}, "group 2 does not exist; the pattern has 1"},
		{Step{Name: "regex", Pattern: `\d+`, Group: ptr(-1)}, "group -1 does not exist; the pattern has 0"},
		{Step{Name: "regex_replace", Pattern: `[`}, "bad regular expression"},
		{Step{Name: "replace", New: "x"}, "old is empty; name the text to replace"},
		{Step{Name: "split"}, "the separator is empty"},
		{Step{Name: "prefix"}, "the text to add is empty"},
		{Step{Name: "lookup", Table: "comunes"}, `unknown table "comunes" (did you mean communes?)`},
		{Step{Name: "lookup", Table: "wards"}, `unknown table "wards" (tables: communes, districts)`},
		{Step{Name: "lookup"}, "name the table to look up"},
		{Step{Name: "pad_left"}, "width must be from 1 to 1024, not 0"},
		{Step{Name: "pad_left", Width: 100000}, "width must be from 1 to 1024, not 100000"},
		{Step{Name: "pad_left", Width: 8, Char: "00"}, `char must be one character, not "00"`},
		{Step{Name: "uper"}, `transform[0] (uper): unknown transform "uper" (did you mean upper?)`},
		{Step{Name: "Trim"}, "did you mean trim?"},
		{Step{}, "transform has no name"},
	}
	for _, tt := range tests {
		_, err := Compile([]Step{tt.step}, tables)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Compile(%s): error %v, want it to contain %q", tt.step, err, tt.err)
		}
	}
	_, err := Compile([]Step{{Name: "lookup", Table: "x"}}, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown table "x" (no tables are defined)`) {
		t.Errorf("lookup without tables: %v", err)
	}
}

func TestCompileReportsEveryMistakeWithItsPlace(t *testing.T) {
	steps, err := decodeSteps(t, "transform:\n  - trim\n  - regex: '(a'\n  - lookup: nowhere\n  - upper\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(steps, nil)
	var errs StepErrors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("error = %v, want two StepErrors", err)
	}
	if e := errs[0]; e.Index != 1 || e.Name != "regex" || e.Line != 3 || e.Column != 5 || e.Err == nil {
		t.Errorf("first error = %+v", e)
	}
	if e := errs[1]; e.Index != 2 || e.Name != "lookup" || e.Line != 4 || e.Msg != `unknown table "nowhere" (no tables are defined)` {
		t.Errorf("second error = %+v", e)
	}
	want := "transform[1] (regex): bad regular expression \"(a\": missing closing )\n" +
		"transform[2] (lookup): unknown table \"nowhere\" (no tables are defined)"
	if err.Error() != want {
		t.Errorf("message =\n%s\nwant\n%s", err, want)
	}
}

func TestCompiledChainIsSafeForConcurrentUse(t *testing.T) {
	fn := compileYAML(t, `transform: [trim, {regex: '(\d+)'}, pad_left: {width: 6}]`, nil)
	done := make(chan bool)
	for range 8 {
		go func() {
			for range 1000 {
				if got, _ := fn(" HS 42 "); got != "000042" {
					t.Errorf("got %q", got)
				}
			}
			done <- true
		}()
	}
	for range 8 {
		<-done
	}
}

func BenchmarkCompiledChain(b *testing.B) {
	tables := map[string]Table{"communes": TableFromMap(map[string]string{"Thị trấn Cần Giuộc": "27667"}, true)}
	chains := []struct {
		name string
		src  string
		in   string
	}{
		{"trim,upper,regex", `transform: [trim, upper, regex: 'H\d+-(\d+)']`, " h12-241127 "},
		{"trim,collapse,upper/clean", `transform: [trim, collapse, upper]`, "HS-0001"},
		{"collapse,fold,lookup", `transform: [collapse, fold, lookup: communes]`, "Thị  trấn Cần Giuộc"},
	}
	for _, c := range chains {
		var f struct {
			Transform []Step `yaml:"transform"`
		}
		if err := yaml.Unmarshal([]byte(c.src), &f); err != nil {
			b.Fatal(err)
		}
		fn, err := Compile(f.Transform, tables)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fn(c.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestStepThroughYAMLAlias(t *testing.T) {
	var f struct {
		A []Step `yaml:"a"`
		B []Step `yaml:"b"`
	}
	src := "a: [&code {regex: '(\\d+)'}]\nb: [trim, *code]\n"
	if err := yaml.Unmarshal([]byte(src), &f); err != nil {
		t.Fatal(err)
	}
	if len(f.B) != 2 || f.B[1].Name != "regex" || f.B[1].Pattern != `(\d+)` {
		t.Errorf("aliased step = %+v", f.B)
	}
}
