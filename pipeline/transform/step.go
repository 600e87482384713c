package transform

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Step is one entry of a field's transform list in a mapping. In YAML it is
// either a bare name or a mapping whose one step key carries the argument:
//
//	transform:
//	  - trim                                  # strings.TrimSpace
//	  - upper                                 # also lower, nfc, collapse, fold, digits
//	  - regex: 'HS-(\d+)'                     # keep the first group (or the whole match); no match: ""
//	  - { regex: '(\d+)-(\d+)', group: 2 }    # keep group 2 (0: the whole match)
//	  - replace: { old: '.', new: '' }        # every occurrence
//	  - regex_replace: { pattern: '^0+', with: '' }   # $1 / ${name} expand in with
//	  - { split: ',', index: 0 }              # index < 0 counts from the end; out of range: ""
//	  - prefix: 'H12.'                        # also suffix
//	  - lookup: communes                      # a table given to Compile
//	  - pad_left: { width: 8, char: '0' }     # char defaults to 0
//
// Steps that add text (prefix, suffix, pad_left, lookup) leave a blank value
// blank, so a missing value stays missing and required/default still apply.
type Step struct {
	// Name is the step: trim, upper, lower, nfc, collapse, fold, digits, regex,
	// replace, regex_replace, split, prefix, suffix, lookup or pad_left.
	Name string

	Pattern string // regex, regex_replace: the regular expression (Go RE2 syntax)
	// Group is the capture group regex keeps; nil keeps the first group when the
	// pattern has one and the whole match otherwise.
	Group *int
	Old   string // replace: the text to replace, not empty
	New   string // replace: its replacement
	With  string // regex_replace: the replacement; $1 and ${name} expand
	Sep   string // split: the separator, not empty
	Index int    // split: which part, from 0; negative counts from the end
	Text  string // prefix, suffix: the text to add
	Table string // lookup: the table's name
	Width int    // pad_left: the length to pad to, in characters
	Char  string // pad_left: the padding character; "0" when empty

	// Line and Column locate the step in its YAML file (1-based), so a mapping
	// can report file:line; zero for steps built in code.
	Line, Column int

	problem string // what UnmarshalYAML found wrong, for Compile to report
}

// simpleSteps are the steps without arguments.
var simpleSteps = map[string]func(string) string{
	"trim":     strings.TrimSpace,
	"upper":    Upper,
	"lower":    Lower,
	"nfc":      NFC,
	"collapse": CollapseSpaces,
	"fold":     Fold,
	"digits":   Digits,
}

// argSteps are the steps with arguments, with the extra keys each one takes
// beside its own (regex: '…', group: 2).
var argSteps = map[string][]string{
	"regex":         {"group"},
	"replace":       nil,
	"regex_replace": nil,
	"split":         {"index"},
	"prefix":        nil,
	"suffix":        nil,
	"lookup":        nil,
	"pad_left":      nil,
}

// stepAliases catch names integrators bring from other tools, for suggestions.
var stepAliases = map[string]string{
	"strip": "trim", "trim_space": "trim", "trimspace": "trim",
	"uppercase": "upper", "upper_case": "upper", "toupper": "upper",
	"lowercase": "lower", "lower_case": "lower", "tolower": "lower",
	"normalize": "nfc", "normalise": "nfc",
	"collapse_spaces": "collapse", "squeeze": "collapse",
	"unaccent": "fold", "remove_accents": "fold", "ascii": "fold", "slug": "fold",
	"regexp": "regex", "re": "regex", "extract": "regex", "match": "regex",
	"regexp_replace": "regex_replace", "replace_regex": "regex_replace", "re_replace": "regex_replace",
	"map": "lookup", "table": "lookup",
	"lpad": "pad_left", "pad": "pad_left", "zfill": "pad_left", "padleft": "pad_left",
}

func stepNames() []string {
	names := make([]string, 0, len(simpleSteps)+len(argSteps))
	for n := range simpleSteps {
		names = append(names, n)
	}
	for n := range argSteps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// fieldTypes are names that belong in a field's type:, not in its transform list.
var fieldTypes = map[string]string{
	"phone_vn": "phone_vn", "phone": "phone_vn", "mark": "mark", "time": "time",
	"date": "time", "int": "int", "decimal": "decimal", "number": "decimal", "bool": "bool",
}

// unknownStep explains an unknown step name, suggesting the one meant.
func unknownStep(name string) string {
	if typ, ok := fieldTypes[name]; ok {
		return fmt.Sprintf("%q is a field type, not a transform; write type: %s", name, typ)
	}
	msg := fmt.Sprintf("unknown transform %q", name)
	if s := suggest(name, stepNames(), stepAliases); s != "" {
		return msg + fmt.Sprintf(" (did you mean %s?)", s)
	}
	return msg + " (known: " + strings.Join(stepNames(), ", ") + ")"
}

// UnmarshalYAML reads a step from its YAML forms (see Step) and keeps its
// position. It never fails: a step written wrongly (an unknown option, an
// argument of the wrong kind) is kept with its mistake, which Compile reports
// with the step's index and position, together with every other mistake in the
// mapping, instead of stopping the decoding of the whole file at the first one.
func (st *Step) UnmarshalYAML(n *yaml.Node) error {
	if err := st.decode(n); err != nil {
		st.problem = err.Error()
	}
	return nil
}

func (st *Step) decode(n *yaml.Node) error {
	*st = Step{Line: n.Line, Column: n.Column}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias // - *code: the anchored step
	}
	switch n.Kind {
	case yaml.ScalarNode:
		st.Name = n.Value
		if _, ok := simpleSteps[n.Value]; ok {
			return nil
		}
		if _, ok := argSteps[n.Value]; ok {
			return fmt.Errorf("needs an argument, e.g. %s", example(n.Value))
		}
		return fmt.Errorf("%s", unknownStep(n.Value))
	case yaml.MappingNode:
	default:
		return fmt.Errorf("a transform is a name (trim) or a name with its argument (regex: '…'), not a %s", kindName(n))
	}
	// Find the step key among the keys: {group: 2, regex: '…'} is fine too.
	var stepKey, stepVal *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if _, ok := argSteps[k.Value]; !ok {
			if _, simple := simpleSteps[k.Value]; !simple {
				continue
			}
		}
		if stepKey != nil {
			return fmt.Errorf("one transform per list item: found %s and %s; write them as two items", stepKey.Value, k.Value)
		}
		stepKey, stepVal = k, n.Content[i+1]
	}
	if stepKey == nil {
		if len(n.Content) == 0 {
			return fmt.Errorf("empty transform; write a name such as trim")
		}
		st.Name = n.Content[0].Value
		return fmt.Errorf("%s", unknownStep(st.Name))
	}
	st.Name = stepKey.Value
	extras, ok := argSteps[st.Name]
	if !ok {
		return fmt.Errorf("takes no argument; write it as a plain name: - %s", st.Name)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k == stepKey {
			continue
		}
		if !contains(extras, k.Value) {
			return fmt.Errorf("has no option %q%s", k.Value, optionHint(k.Value, extras))
		}
		var err error
		switch k.Value {
		case "group":
			var g int
			g, err = intArg(v, "group")
			st.Group = &g
		case "index":
			st.Index, err = intArg(v, "index")
		}
		if err != nil {
			return err
		}
	}
	return st.readArg(stepVal)
}

// readArg reads the value under the step key.
func (st *Step) readArg(v *yaml.Node) error {
	switch st.Name {
	case "regex":
		return scalarArg(v, st.Name, &st.Pattern)
	case "split":
		return scalarArg(v, st.Name, &st.Sep)
	case "prefix", "suffix":
		return scalarArg(v, st.Name, &st.Text)
	case "lookup":
		return scalarArg(v, st.Name, &st.Table)
	case "replace":
		return fieldsArg(v, st.Name, map[string]*string{"old": &st.Old, "new": &st.New}, nil)
	case "regex_replace":
		return fieldsArg(v, st.Name, map[string]*string{"pattern": &st.Pattern, "with": &st.With}, nil)
	case "pad_left":
		return fieldsArg(v, st.Name, map[string]*string{"char": &st.Char}, map[string]*int{"width": &st.Width})
	}
	return nil
}

func scalarArg(v *yaml.Node, step string, out *string) error {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return fmt.Errorf("wants a single value, e.g. %s", example(step))
	}
	*out = v.Value
	return nil
}

func intArg(v *yaml.Node, name string) (int, error) {
	n, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil {
		return 0, fmt.Errorf("%s wants a whole number, got %s", name, quote(v.Value))
	}
	return n, nil
}

// fieldsArg reads a {key: value} argument into the given string and int fields.
func fieldsArg(v *yaml.Node, step string, strs map[string]*string, ints map[string]*int) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("wants a mapping, e.g. %s", example(step))
	}
	known := make([]string, 0, len(strs)+len(ints))
	for k := range strs {
		known = append(known, k)
	}
	for k := range ints {
		known = append(known, k)
	}
	sort.Strings(known)
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i].Value, v.Content[i+1]
		if p, ok := strs[k]; ok {
			if val.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s wants a single value", k)
			}
			if val.Tag != "!!null" {
				*p = val.Value
			}
			continue
		}
		if p, ok := ints[k]; ok {
			n, err := intArg(val, k)
			if err != nil {
				return err
			}
			*p = n
			continue
		}
		return fmt.Errorf("has no option %q%s", k, optionHint(k, known))
	}
	return nil
}

func example(step string) string {
	switch step {
	case "regex":
		return `regex: '(\d+)'`
	case "replace":
		return "replace: { old: '.', new: '' }"
	case "regex_replace":
		return "regex_replace: { pattern: '^0+', with: '' }"
	case "split":
		return "{ split: ',', index: 0 }"
	case "prefix", "suffix":
		return step + ": 'H12.'"
	case "lookup":
		return "lookup: communes"
	case "pad_left":
		return "pad_left: { width: 8, char: '0' }"
	}
	return step
}

func optionHint(key string, known []string) string {
	if len(known) == 0 {
		return ""
	}
	if s := suggest(key, known, nil); s != "" {
		return fmt.Sprintf(" (did you mean %s?)", s)
	}
	return " (options: " + strings.Join(known, ", ") + ")"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// String shows the step as it would be written in YAML, for messages.
func (st Step) String() string {
	switch st.Name {
	case "regex":
		if st.Group != nil {
			return fmt.Sprintf("{regex: %s, group: %d}", strconv.Quote(st.Pattern), *st.Group)
		}
		return "regex: " + strconv.Quote(st.Pattern)
	case "replace":
		return fmt.Sprintf("replace: {old: %s, new: %s}", strconv.Quote(st.Old), strconv.Quote(st.New))
	case "regex_replace":
		return fmt.Sprintf("regex_replace: {pattern: %s, with: %s}", strconv.Quote(st.Pattern), strconv.Quote(st.With))
	case "split":
		return fmt.Sprintf("{split: %s, index: %d}", strconv.Quote(st.Sep), st.Index)
	case "prefix", "suffix":
		return st.Name + ": " + strconv.Quote(st.Text)
	case "lookup":
		return "lookup: " + st.Table
	case "pad_left":
		return fmt.Sprintf("pad_left: {width: %d, char: %s}", st.Width, strconv.Quote(st.Char))
	}
	return st.Name
}

// StepError is one mistake in a transform list, found by Compile.
type StepError struct {
	Index        int    // the step's place in the list, from 0
	Name         string // the step's name
	Line, Column int    // the step's position in YAML; 0 when built in code
	Msg          string
	Err          error // the underlying error, e.g. a *syntax.Error; may be nil
}

func (e *StepError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("transform[%d]: %s", e.Index, e.Msg)
	}
	return fmt.Sprintf("transform[%d] (%s): %s", e.Index, e.Name, e.Msg)
}

func (e *StepError) Unwrap() error { return e.Err }

// StepErrors is every mistake Compile found in one transform list.
type StepErrors []*StepError

func (es StepErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// stepFunc is one compiled step. The only step that fails at run time is
// lookup, on a value missing from its table.
type stepFunc func(string) (string, error)

// Compile builds the function that applies steps in order. tables are the
// lookup tables steps may name. Every mistake comes back at once, as StepErrors.
// The result is safe for concurrent use.
func Compile(steps []Step, tables map[string]Table) (func(string) (string, error), error) {
	fns := make([]stepFunc, 0, len(steps))
	var errs StepErrors
	for i, st := range steps {
		fn, msg, err := compileStep(st, tables)
		if msg != "" {
			errs = append(errs, &StepError{Index: i, Name: st.Name, Line: st.Line, Column: st.Column, Msg: msg, Err: err})
			continue
		}
		fns = append(fns, fn)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	switch len(fns) {
	case 0:
		return func(s string) (string, error) { return s, nil }, nil
	case 1:
		return fns[0], nil
	}
	return func(s string) (string, error) {
		var err error
		for _, fn := range fns {
			if s, err = fn(s); err != nil {
				return "", err
			}
		}
		return s, nil
	}, nil
}

// compileStep builds one step, or explains (msg) what is wrong with it.
func compileStep(st Step, tables map[string]Table) (fn stepFunc, msg string, err error) {
	if st.problem != "" {
		return nil, st.problem, nil
	}
	if f, ok := simpleSteps[st.Name]; ok {
		return func(s string) (string, error) { return f(s), nil }, "", nil
	}
	switch st.Name {
	case "":
		return nil, "transform has no name", nil
	case "regex":
		re, msg, err := compileRegexp(st.Pattern)
		if msg != "" {
			return nil, msg, err
		}
		group := 0
		if re.NumSubexp() > 0 {
			group = 1
		}
		if st.Group != nil {
			group = *st.Group
			if group < 0 || group > re.NumSubexp() {
				return nil, fmt.Sprintf("group %d does not exist; the pattern has %d", group, re.NumSubexp()), nil
			}
		}
		return extract(re, group), "", nil
	case "regex_replace":
		re, msg, err := compileRegexp(st.Pattern)
		if msg != "" {
			return nil, msg, err
		}
		with := st.With
		return func(s string) (string, error) { return re.ReplaceAllString(s, with), nil }, "", nil
	case "replace":
		if st.Old == "" {
			return nil, "old is empty; name the text to replace", nil
		}
		r := strings.NewReplacer(st.Old, st.New)
		return func(s string) (string, error) { return r.Replace(s), nil }, "", nil
	case "split":
		if st.Sep == "" {
			return nil, "the separator is empty", nil
		}
		sep, index := st.Sep, st.Index
		return func(s string) (string, error) { return splitPart(s, sep, index), nil }, "", nil
	case "prefix", "suffix":
		if st.Text == "" {
			return nil, "the text to add is empty", nil
		}
		text, prefix := st.Text, st.Name == "prefix"
		return func(s string) (string, error) {
			switch {
			case s == "":
				return s, nil
			case prefix:
				return text + s, nil
			}
			return s + text, nil
		}, "", nil
	case "lookup":
		return compileLookup(st.Table, tables)
	case "pad_left":
		return compilePad(st.Width, st.Char)
	}
	return nil, unknownStep(st.Name), nil
}

// compileRegexp compiles a pattern and, if it is bad, says where.
func compileRegexp(pattern string) (*regexp.Regexp, string, error) {
	if pattern == "" {
		return nil, "the pattern is empty", nil
	}
	re, err := regexp.Compile(pattern)
	if err == nil {
		return re, "", nil
	}
	se, ok := err.(*syntax.Error)
	if !ok {
		return nil, fmt.Sprintf("bad regular expression %s: %v", strconv.Quote(pattern), err), err
	}
	msg := fmt.Sprintf("bad regular expression %s: %s", strconv.Quote(pattern), se.Code)
	if se.Expr != "" && se.Expr != pattern {
		if i := strings.Index(pattern, se.Expr); i >= 0 {
			msg += fmt.Sprintf(" %s at character %d", strconv.Quote(se.Expr), utf8.RuneCountInString(pattern[:i])+1)
		} else {
			msg += " " + strconv.Quote(se.Expr)
		}
	}
	return nil, msg, err
}

// extract keeps the given group of the first match, or "" when nothing matches.
func extract(re *regexp.Regexp, group int) stepFunc {
	if group == 0 {
		return func(s string) (string, error) {
			loc := re.FindStringIndex(s)
			if loc == nil {
				return "", nil
			}
			return s[loc[0]:loc[1]], nil
		}
	}
	return func(s string) (string, error) {
		m := re.FindStringSubmatchIndex(s)
		if m == nil || m[2*group] < 0 {
			return "", nil
		}
		return s[m[2*group]:m[2*group+1]], nil
	}
}

// splitPart returns part index of s split by sep (negative counts from the end),
// or "" when there is no such part, without building the list of parts.
func splitPart(s, sep string, index int) string {
	if index >= 0 {
		for ; index > 0; index-- {
			i := strings.Index(s, sep)
			if i < 0 {
				return ""
			}
			s = s[i+len(sep):]
		}
		if i := strings.Index(s, sep); i >= 0 {
			return s[:i]
		}
		return s
	}
	for ; index < -1; index++ {
		i := strings.LastIndex(s, sep)
		if i < 0 {
			return ""
		}
		s = s[:i]
	}
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return s
}

func compileLookup(name string, tables map[string]Table) (stepFunc, string, error) {
	if name == "" {
		return nil, "name the table to look up", nil
	}
	t, ok := tables[name]
	if !ok {
		known := make([]string, 0, len(tables))
		for k := range tables {
			known = append(known, k)
		}
		sort.Strings(known)
		msg := fmt.Sprintf("unknown table %q", name)
		switch {
		case len(known) == 0:
			msg += " (no tables are defined)"
		case suggest(name, known, nil) != "":
			msg += fmt.Sprintf(" (did you mean %s?)", suggest(name, known, nil))
		default:
			msg += " (tables: " + strings.Join(known, ", ") + ")"
		}
		return nil, msg, nil
	}
	return func(s string) (string, error) {
		if strings.TrimSpace(s) == "" {
			return s, nil
		}
		v, ok := t.Lookup(s)
		if !ok {
			return "", fmt.Errorf("%s is not in table %s", quote(s), name)
		}
		return v, nil
	}, "", nil
}

// maxPad bounds pad_left's width: beyond it the step is surely a typo, and each
// value would allocate that much.
const maxPad = 1024

func compilePad(width int, char string) (stepFunc, string, error) {
	if width <= 0 || width > maxPad {
		return nil, fmt.Sprintf("width must be from 1 to %d, not %d", maxPad, width), nil
	}
	if char == "" {
		char = "0"
	}
	if utf8.RuneCountInString(char) != 1 {
		return nil, fmt.Sprintf("char must be one character, not %s", strconv.Quote(char)), nil
	}
	return func(s string) (string, error) {
		n := utf8.RuneCountInString(s)
		if s == "" || n >= width {
			return s, nil
		}
		return strings.Repeat(char, width-n) + s, nil
	}, "", nil
}

// suggest returns the name within edit distance 2 of s, or the alias s stands
// for; "" when nothing is close.
func suggest(s string, names []string, aliases map[string]string) string {
	if a, ok := aliases[strings.ToLower(s)]; ok {
		return a
	}
	return config.Suggest(strings.ToLower(s), names)
}
