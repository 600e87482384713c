package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// An options struct is its own spec. Beside `yaml`, `required` and `secret` (read by
// the Decoder), these struct tags describe an option:
//
//	doc:"…"          what it does, for the reference pages and editor hover help
//	default:"…"      the default in words, where the struct's own default value
//	                 cannot say it (e.g. "standard output"); otherwise the default is
//	                 read from the value the connector's Config func returns
//	enum:"a,b,c"     the allowed values (an empty string stays allowed: it means unset)
//	noun:"route"     names the value in "unknown route" messages; default: the key
//	                 when it is one word, else "value"
//	min:"1" max:"9"  the allowed range of a number
//	hint:"…"         added to a range message: "must not be negative (hint)"
//	example:"…"      a YAML example of the value
//
// Describe turns a struct into Options; Check validates enum and range tags; the
// reference pages and the JSON Schema are generated from the same Options.

// Kind is the YAML shape of an option.
type Kind string

// Kinds of options.
const (
	KindString   Kind = "string"
	KindInt      Kind = "integer"
	KindNumber   Kind = "number"
	KindBool     Kind = "boolean"
	KindDuration Kind = "duration"
	KindList     Kind = "list"
	KindMap      Kind = "map"
	KindObject   Kind = "object"
	KindAny      Kind = "any"
)

// Option is one key of a config or mapping construct, as its spec describes it.
type Option struct {
	Name    string
	Kind    Kind
	Doc     string
	Default string // the default as YAML text; "" when there is none
	// DefaultWords marks a default given in words by a default tag ("standard
	// output"), not as a value.
	DefaultWords bool
	Enum         []string
	Noun         string
	Example      string
	Secret       bool // also given as <name>_file; never shown
	Required     bool
	Min, Max     *float64
	Hint         string
	Fields       []*Option // KindObject: its keys, in declaration order
	Elem         *Option   // KindList and KindMap: the element
	// Schema replaces the generated JSON Schema of a value with its own shape
	// (set by a type's SpecOption method).
	Schema map[string]any
}

// SpecOptioner is implemented by types that decode themselves (UnmarshalYAML) to
// describe their YAML shape.
type SpecOptioner interface {
	SpecOption() Option
}

var (
	durationType = reflect.TypeOf(Duration(0))
	specType     = reflect.TypeOf((*SpecOptioner)(nil)).Elem()
)

// Describe returns the spec of a struct (or a pointer to one) whose fields hold
// their defaults.
func Describe(v any) *Option {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			rv = reflect.New(rv.Type().Elem())
		}
		rv = rv.Elem()
	}
	return describeType(rv.Type(), rv, reflect.StructTag(""))
}

func describeType(t reflect.Type, v reflect.Value, tag reflect.StructTag) *Option {
	o := &Option{
		Doc:      tag.Get("doc"),
		Example:  tag.Get("example"),
		Secret:   tag.Get("secret") == "true",
		Required: tag.Get("required") == "true",
		Noun:     tag.Get("noun"),
		Hint:     tag.Get("hint"),
	}
	if e := tag.Get("enum"); e != "" {
		for _, s := range strings.Split(e, ",") {
			o.Enum = append(o.Enum, strings.TrimSpace(s))
		}
	}
	o.Min, o.Max = tagFloat(tag, "min"), tagFloat(tag, "max")
	if t.Implements(specType) || reflect.PointerTo(t).Implements(specType) {
		s := reflect.New(t).Elem().Interface().(SpecOptioner).SpecOption()
		o.Kind, o.Schema, o.Elem, o.Fields = s.Kind, s.Schema, s.Elem, s.Fields
		if o.Doc == "" {
			o.Doc = s.Doc
		}
		if o.Example == "" {
			o.Example = s.Example
		}
		if o.Enum == nil {
			o.Enum = s.Enum
		}
	} else {
		switch {
		case t == durationType:
			o.Kind = KindDuration
		case t == nodeType:
			o.Kind = KindAny
		default:
			switch t.Kind() {
			case reflect.Pointer:
				inner := reflect.Value{}
				if v.IsValid() && !v.IsNil() {
					inner = v.Elem()
				}
				return describeType(t.Elem(), inner, tag)
			case reflect.String:
				o.Kind = KindString
			case reflect.Bool:
				o.Kind = KindBool
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				o.Kind = KindInt
			case reflect.Float32, reflect.Float64:
				o.Kind = KindNumber
			case reflect.Slice:
				o.Kind = KindList
				o.Elem = describeType(t.Elem(), reflect.Value{}, elemTag(tag))
			case reflect.Map:
				o.Kind = KindMap
				o.Elem = describeType(t.Elem(), reflect.Value{}, elemTag(tag))
			case reflect.Struct:
				o.Kind = KindObject
				o.Fields = describeFields(t, v)
			default:
				o.Kind = KindAny
			}
		}
	}
	if d := tag.Get("default"); d != "" {
		o.Default, o.DefaultWords = d, strings.Contains(d, " ")
	} else if v.IsValid() && o.Kind != KindObject {
		o.Default = defaultText(v)
	}
	return o
}

// elemTag keeps the tags that describe a list's or map's elements.
func elemTag(tag reflect.StructTag) reflect.StructTag {
	var parts []string
	for _, k := range []string{"enum", "noun", "min", "max", "hint"} {
		if v, ok := tag.Lookup(k); ok {
			parts = append(parts, k+":"+strconv.Quote(v))
		}
	}
	return reflect.StructTag(strings.Join(parts, " "))
}

func describeFields(t reflect.Type, v reflect.Value) []*Option {
	var out []*Option
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := keyOf(f)
		if !ok {
			continue
		}
		fv := reflect.Value{}
		if v.IsValid() {
			fv = v.Field(i)
		}
		o := describeType(f.Type, fv, f.Tag)
		o.Name = name
		out = append(out, o)
	}
	return out
}

func tagFloat(tag reflect.StructTag, key string) *float64 {
	s, ok := tag.Lookup(key)
	if !ok {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(fmt.Sprintf("config: bad %s tag %q", key, s)) // programming error in a struct tag
	}
	return &f
}

// defaultText renders a default value as YAML text: "" for an empty string, list or
// map, which mean "none".
func defaultText(v reflect.Value) string {
	if !v.IsValid() {
		return ""
	}
	if v.Type() == durationType {
		return formatDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return defaultText(v.Elem())
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Slice:
		if v.Len() == 0 {
			return ""
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = defaultText(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Map:
		if v.Len() == 0 {
			return ""
		}
		keys := v.MapKeys()
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprint(k.Interface())+": "+defaultText(v.MapIndex(k)))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return ""
}

// formatDuration writes 72h rather than 72h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// HasFileForm reports whether the option is also accepted as <name>_file: a secret
// string. A secret map (headers) is only redacted; its values take ${VAR}.
func (o *Option) HasFileForm() bool { return o.Secret && o.Kind == KindString }

// Field returns the option at a dotted path ("cursor.column"), or nil.
func (o *Option) Field(path string) *Option {
	cur := o
	for _, name := range strings.Split(path, ".") {
		var next *Option
		for _, f := range cur.Fields {
			if f.Name == name {
				next = f
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// TypeName shows an option's type in the reference pages.
func (o *Option) TypeName() string {
	switch o.Kind {
	case KindList:
		if o.Elem != nil && o.Elem.Kind != KindAny {
			return "list of " + o.Elem.TypeName()
		}
		return "list"
	case KindMap:
		if o.Elem != nil && o.Elem.Kind != KindAny {
			return "map of " + o.Elem.TypeName()
		}
		return "map"
	case KindObject:
		return "mapping"
	case KindAny:
		return "any"
	}
	return string(o.Kind)
}

// Check reports every value of v (a struct or a pointer to one) outside its
// spec's enum or range, with the field's path relative to v. Empty strings are not
// checked against enums: they mean unset, which `required` covers.
func Check(v any, report func(field, format string, args ...any)) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return
		}
		rv = rv.Elem()
	}
	if rv.Kind() == reflect.Struct {
		checkStruct(rv, "", report)
	}
}

func checkStruct(v reflect.Value, path string, report func(string, string, ...any)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := keyOf(f)
		if !ok {
			continue
		}
		checkValue(v.Field(i), joinPath(path, name), name, f.Tag, report)
	}
}

func checkValue(v reflect.Value, path, name string, tag reflect.StructTag, report func(string, string, ...any)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkValue(v.Elem(), path, name, tag, report)
		}
		return
	case reflect.Struct:
		if v.Type() != nodeType {
			checkStruct(v, path, report)
		}
		return
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < v.Len(); i++ {
			checkValue(v.Index(i), fmt.Sprintf("%s[%d]", path, i), name, tag, report)
		}
		return
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			checkValue(v.MapIndex(k), joinPath(path, fmt.Sprint(k.Interface())), name, tag, report)
		}
		return
	case reflect.String:
		if e := tag.Get("enum"); e != "" && v.String() != "" {
			allowed := strings.Split(e, ",")
			for i := range allowed {
				allowed[i] = strings.TrimSpace(allowed[i])
			}
			for _, a := range allowed {
				if v.String() == a {
					return
				}
			}
			noun := tag.Get("noun")
			if noun == "" {
				noun = name
				if strings.Contains(name, "_") {
					noun = "value"
				}
			}
			report(path, "unknown %s %q (want %s)", noun, v.String(), OrList(allowed))
		}
		return
	}
	var x float64
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x = float64(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x = float64(v.Uint())
	case reflect.Float32, reflect.Float64:
		x = v.Float()
	default:
		return
	}
	lo, hi := tagFloat(tag, "min"), tagFloat(tag, "max")
	if (lo == nil || x >= *lo) && (hi == nil || x <= *hi) {
		return
	}
	hint := ""
	if h := tag.Get("hint"); h != "" {
		hint = " (" + h + ")"
	}
	got := strconv.FormatFloat(x, 'g', -1, 64)
	num := func(f *float64) string { return strconv.FormatFloat(*f, 'g', -1, 64) }
	switch {
	case lo != nil && hi != nil:
		report(path, "must be between %s and %s%s, got %s", num(lo), num(hi), hint, got)
	case lo != nil && *lo == 0:
		report(path, "must not be negative%s, got %s", hint, got)
	case lo != nil:
		report(path, "must be at least %s%s, got %s", num(lo), hint, got)
	default:
		report(path, "must be at most %s%s, got %s", num(hi), hint, got)
	}
}

// OrList joins values as "a, b or c".
func OrList(values []string) string {
	switch len(values) {
	case 0:
		return ""
	case 1:
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// Redacted returns v's options as plain values for display (YAML or JSON), with
// every secret replaced by "[redacted]" and empty values left out.
func Redacted(v any) any {
	return redacted(reflect.ValueOf(v), false)
}

// RedactedText stands in for a secret wherever options are shown.
const RedactedText = "[redacted]"

func redacted(v reflect.Value, secret bool) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type() == durationType {
		if v.Int() == 0 {
			return nil
		}
		return formatDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return redacted(v.Elem(), secret)
	case reflect.Struct:
		if v.Type() == nodeType {
			return nil
		}
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, ok := keyOf(f)
			if !ok {
				continue
			}
			if x := redacted(v.Field(i), f.Tag.Get("secret") == "true"); x != nil {
				out[name] = x
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = redacted(v.Index(i), secret)
		}
		return out
	case reflect.Map:
		if v.Len() == 0 {
			return nil
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = redacted(v.MapIndex(k), secret)
		}
		return out
	case reflect.String:
		if v.String() == "" {
			return nil
		}
		if secret {
			return RedactedText
		}
		return v.String()
	}
	return v.Interface()
}
