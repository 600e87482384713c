package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decoder decodes YAML nodes into structs strictly: unknown keys, wrong types and
// missing required fields become Errors with file, line and field path. It keeps
// decoding after a mistake so one run reports them all.
//
// Struct tags: `yaml:"name"` names the key; `required:"true"` makes it mandatory;
// `secret:"true"` on a string also accepts `name_file:` with a path whose content
// (trimmed) is the value, so secrets need not sit in the config.
type Decoder struct {
	File    string    // shown in errors
	BaseDir string    // relative paths (secret files, mappings) resolve against it
	Env     LookupEnv // for ${VAR}; nil means the process environment

	errs  Errors
	nodes map[string]*yaml.Node
}

// NewDecoder returns a decoder for a file; baseDir defaults to the file's folder.
func NewDecoder(file string) *Decoder {
	return &Decoder{File: file, BaseDir: filepath.Dir(file), nodes: map[string]*yaml.Node{}}
}

// Parse reads YAML bytes into a document node, interpolating ${VAR} in every scalar.
func (d *Decoder) Parse(data []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		d.errs = append(d.errs, yamlError(d.File, err))
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		d.errs = append(d.errs, &Error{File: d.File, Msg: "file is empty"})
		return nil
	}
	root := doc.Content[0]
	d.interpolate(root, "")
	return root
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func yamlError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: file, Msg: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = strings.TrimSpace(yamlLine.ReplaceAllString(msg, ""))
		e.Msg = strings.TrimPrefix(e.Msg, ": ")
	}
	return e
}

func (d *Decoder) interpolate(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!str" || n.Tag == "" || strings.Contains(n.Value, "${") {
			v, err := Interpolate(n.Value, d.Env)
			if err != nil {
				d.errAt(n, path, "%v", err)
				return
			}
			if v != n.Value {
				n.Value = v
				// An interpolated value is typed by its final text: "${PORT}" may be an int.
				n.Tag = ""
				n.Style = 0
				var probe yaml.Node
				if yaml.Unmarshal([]byte(v), &probe) == nil && len(probe.Content) == 1 && probe.Content[0].Kind == yaml.ScalarNode {
					n.Tag = probe.Content[0].Tag
				} else {
					n.Tag = "!!str"
				}
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.interpolate(n.Content[i+1], joinPath(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.interpolate(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.AliasNode:
		// aliases share the anchored node, which is interpolated where it stands
	}
}

// DecodeDocument parses data and decodes it strictly into out, returning the root
// node (nil when the document could not be parsed) for callers that read more from
// it, such as key order. Errors are collected in d.
func (d *Decoder) DecodeDocument(data []byte, out any) *yaml.Node {
	root := d.Parse(data)
	if root != nil {
		d.Decode(root, "", out)
	}
	return root
}

// Errs returns every error so far, sorted by place.
func (d *Decoder) Errs() Errors {
	d.errs.Sort()
	return d.errs
}

// Err returns the errors as one error, or nil.
func (d *Decoder) Err() error { return d.errs.Err() }

// Add appends errors found elsewhere (for example a mapping file's own decoder).
func (d *Decoder) Add(errs ...*Error) { d.errs = append(d.errs, errs...) }

// Errorf reports a semantic mistake at the node that was decoded for path (or its
// nearest decoded parent), so checks made after decoding still name the line.
func (d *Decoder) Errorf(path, format string, args ...any) {
	d.errAt(d.Node(path), path, format, args...)
}

// Node returns the YAML node decoded at path, or the nearest parent's.
func (d *Decoder) Node(path string) *yaml.Node {
	for p := path; ; {
		if n, ok := d.nodes[p]; ok {
			return n
		}
		if p == "" {
			return nil
		}
		p = parentPath(p)
	}
}

// Has reports whether path was present in the YAML.
func (d *Decoder) Has(path string) bool { _, ok := d.nodes[path]; return ok }

func (d *Decoder) errAt(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.File, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	for _, old := range d.errs {
		if *old == *e { // the same check made twice (the spec's, and a Validate's own)
			return
		}
	}
	d.errs = append(d.errs, e)
}

func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

var (
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	nodeType        = reflect.TypeOf(yaml.Node{})
)

// Decode decodes n into out (a pointer), recording errors under path.
func (d *Decoder) Decode(n *yaml.Node, path string, out any) {
	if n == nil {
		return
	}
	if d.nodes == nil {
		d.nodes = map[string]*yaml.Node{}
	}
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("config.Decode: out must be a non-nil pointer") // programming error, not input
	}
	d.decode(n, path, v.Elem())
}

func (d *Decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	d.nodes[path] = n
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Type() == nodeType { // kept raw for the caller to interpret
		v.Set(reflect.ValueOf(*n))
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an explicit null leaves the default
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		d.decodeLeaf(n, path, v)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errAt(n, path, "want a mapping of keys, got %s", describe(n))
			return
		}
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // []byte
			d.decodeLeaf(n, path, v)
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errAt(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errAt(n, path, "want a mapping, got %s", describe(n))
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			d.decodeLeaf(n, path, v)
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(n.Content[i+1], joinPath(path, k), ev)
			v.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), ev)
		}
	case reflect.Interface:
		d.decodeLeaf(n, path, v)
	default:
		d.decodeLeaf(n, path, v)
	}
}

func (d *Decoder) decodeLeaf(n *yaml.Node, path string, v reflect.Value) {
	if v.Kind() != reflect.Interface && v.Kind() != reflect.Map && v.Kind() != reflect.Slice && !(v.CanAddr() && v.Addr().Type().Implements(unmarshalerType)) && n.Kind != yaml.ScalarNode {
		d.errAt(n, path, "want a single value, got %s", describe(n))
		return
	}
	ptr := reflect.New(v.Type())
	if err := n.Decode(ptr.Interface()); err != nil {
		d.errAt(n, path, "%s", leafMessage(err, n, v.Type()))
		return
	}
	v.Set(ptr.Elem())
}

func leafMessage(err error, n *yaml.Node, t reflect.Type) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("want %s, got %q", typeName(t), n.Value)
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

type fieldInfo struct {
	index    int
	required bool
	secret   bool
}

// keyOf is the YAML key of a struct field, as the yaml.v3 decoder reads it: the
// tag's name, or the lowercased field name; ok is false for a field that is not
// decoded (unexported, or tagged "-"). Decoding, checks, specs and redaction all
// name fields by it, so they cannot disagree on a key.
func keyOf(f reflect.StructField) (name string, ok bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ = strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return name, true
}

func structFields(t reflect.Type) (map[string]fieldInfo, []string) {
	fields := map[string]fieldInfo{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := keyOf(f)
		if !ok {
			continue
		}
		fields[name] = fieldInfo{index: i, required: f.Tag.Get("required") == "true", secret: f.Tag.Get("secret") == "true"}
		names = append(names, name)
	}
	return fields, names
}

func (d *Decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	fields, names := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		key := kn.Value
		fpath := joinPath(path, key)
		if seen[key] {
			d.errAt(kn, fpath, "key appears twice")
			continue
		}
		seen[key] = true
		if fi, ok := fields[key]; ok {
			d.decode(vn, fpath, v.Field(fi.index))
			continue
		}
		if base, ok := strings.CutSuffix(key, "_file"); ok {
			if fi, ok := fields[base]; ok && fi.secret && v.Field(fi.index).Kind() == reflect.String {
				d.nodes[fpath] = vn
				d.readSecretFile(vn, fpath, v.Field(fi.index))
				seen[base+"\x00file"] = true
				continue
			}
		}
		msg := fmt.Sprintf("unknown field %q", key)
		if s := Suggest(key, names); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		d.errAt(kn, fpath, "%s", msg)
	}
	for _, name := range names {
		fi := fields[name]
		if fi.secret && seen[name] && seen[name+"\x00file"] {
			d.errAt(n, joinPath(path, name), "give %s or %s_file, not both", name, name)
		}
		if fi.required && !seen[name] && !(fi.secret && seen[name+"\x00file"]) {
			d.errAt(n, joinPath(path, name), "required field is missing")
		}
	}
}

func (d *Decoder) readSecretFile(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		d.errAt(n, path, "want a file path")
		return
	}
	p := d.Resolve(n.Value)
	b, err := os.ReadFile(p)
	if err != nil {
		d.errAt(n, path, "cannot read secret file: %v", err)
		return
	}
	v.SetString(strings.TrimRight(string(b), "\r\n"))
}

// Resolve makes a path from the config relative to the config's folder.
func (d *Decoder) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || d.BaseDir == "" {
		return p
	}
	return filepath.Join(d.BaseDir, p)
}

// Suggest returns the known name within edit distance 2 of key, for "did you
// mean" hints on typos; "" when none is close.
func Suggest(key string, names []string) string {
	best, bestD := "", 3
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if dist := levenshtein(key, n); dist < bestD {
			best, bestD = n, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
