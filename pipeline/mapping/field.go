package mapping

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// Field types a mapping can declare.
const (
	TypeString  = "string"
	TypeInt     = "int"
	TypeDecimal = "decimal"
	TypeBool    = "bool"
	TypeTime    = "time"
)

type field struct {
	name      string
	from      string
	typ       string
	required  bool
	transform []func(string) string
	def       any // already typed
	valueMap  map[string]any
	in        map[string]bool // canonical text of allowed values
	inList    string
	layouts   []string
	zone      *time.Location
	mask      func(string) string // citizen data: how to show it masked
}

var transforms = map[string]func(string) string{
	"trim":  strings.TrimSpace,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
}

func compileField(d *config.Decoder, path, name string, spec FieldSpec, opts Options) (*field, bool) {
	ok := true
	f := &field{name: name, from: spec.From, typ: spec.Type, required: spec.Required, zone: opts.Zone}
	if f.from == "" {
		f.from = name
	}
	if f.typ == "" {
		f.typ = TypeString
	}
	switch f.typ {
	case TypeString, TypeInt, TypeDecimal, TypeBool, TypeTime:
	default:
		d.Errorf(path+".type", "unknown type %q (want string, int, decimal, bool or time)", f.typ)
		ok = false
	}
	for i, t := range spec.Transform {
		fn, known := transforms[t]
		if !known {
			d.Errorf(fmt.Sprintf("%s.transform[%d]", path, i), "unknown transform %q (want trim, upper or lower)", t)
			ok = false
			continue
		}
		f.transform = append(f.transform, fn)
	}
	if spec.Mask != "" {
		fn, known := maskers[spec.Mask]
		if !known {
			d.Errorf(path+".mask", "unknown mask %q (want %s)", spec.Mask, maskKinds())
			ok = false
		}
		f.mask = fn
	}
	if spec.Zone != "" {
		z, err := time.LoadLocation(spec.Zone)
		if err != nil {
			d.Errorf(path+".zone", "unknown time zone %q", spec.Zone)
			ok = false
		}
		f.zone = z
	}
	if spec.Layout != "" {
		if f.typ != TypeTime {
			d.Errorf(path+".layout", "layout applies only to type time")
			ok = false
		}
		f.layouts = []string{GoLayout(spec.Layout)}
	} else {
		f.layouts = defaultLayouts
	}
	if !ok {
		return nil, false
	}
	if len(spec.Map) > 0 {
		f.valueMap = make(map[string]any, len(spec.Map))
		for k, v := range spec.Map {
			f.valueMap[strings.TrimSpace(k)] = v
		}
	}
	if spec.Default != nil {
		v, err := f.convert(spec.Default)
		if err != nil {
			d.Errorf(path+".default", "default %v is not a valid %s: %v", spec.Default, f.typ, err)
			return nil, false
		}
		f.def = v
	}
	if len(spec.In) > 0 {
		f.in = map[string]bool{}
		var shown []string
		for i, raw := range spec.In {
			v, err := f.convert(raw)
			if err != nil || v == nil {
				d.Errorf(fmt.Sprintf("%s.in[%d]", path, i), "%v is not a valid %s", raw, f.typ)
				return nil, false
			}
			f.in[textOf(v)] = true
			shown = append(shown, textOf(v))
		}
		f.inList = strings.Join(shown, ", ")
	}
	return f, true
}

// retype converts a stored value back to the field's type without transforms, maps
// or checks: it was valid when it was stored.
func (f *field) retype(v any) (any, error) {
	switch f.typ {
	case TypeString:
		return toString(v), nil
	case TypeInt:
		return toInt(v)
	case TypeDecimal:
		return toDecimal(v)
	case TypeBool:
		return toBool(v)
	case TypeTime:
		if s, ok := v.(string); ok {
			return time.Parse(time.RFC3339Nano, s)
		}
		return f.toTime(v)
	}
	return v, nil
}

var errMissing = errors.New("required value is missing")

func (f *field) value(row map[string]any) (any, error) {
	raw := row[f.from]
	if f.valueMap != nil && raw != nil {
		if v, ok := f.valueMap[strings.TrimSpace(rawText(raw))]; ok {
			raw = v
		}
	}
	v, err := f.convert(raw)
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = f.def
	}
	if v == nil {
		if f.required {
			return nil, errMissing
		}
		return nil, nil
	}
	if f.in != nil && !f.in[textOf(v)] {
		return nil, fmt.Errorf("value %s is not one of [%s]", textOf(v), f.inList)
	}
	return v, nil
}

// convert types a raw value; blank text is "no value" for every type.
func (f *field) convert(raw any) (any, error) {
	if raw == nil {
		return nil, nil
	}
	if b, ok := raw.([]byte); ok {
		raw = string(b)
	}
	if s, ok := raw.(string); ok {
		s = nfc(s)
		for _, t := range f.transform {
			s = t(s)
		}
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		raw = s
	}
	switch f.typ {
	case TypeString:
		return toString(raw), nil
	case TypeInt:
		return toInt(raw)
	case TypeDecimal:
		return toDecimal(raw)
	case TypeBool:
		return toBool(raw)
	case TypeTime:
		return f.toTime(raw)
	}
	return nil, fmt.Errorf("unknown type %q", f.typ)
}

func nfc(s string) string {
	if norm.NFC.IsNormalString(s) {
		return s
	}
	return norm.NFC.String(s)
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func toInt(v any) (any, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return nil, fmt.Errorf("%v is not a whole number", x)
		}
		return int64(x), nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case string:
		s := strings.TrimSpace(x)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if fl, ferr := strconv.ParseFloat(s, 64); ferr == nil && fl == math.Trunc(fl) {
				return int64(fl), nil // "9.0" from a numeric column read as text
			}
			return nil, fmt.Errorf("%q is not a whole number", x)
		}
		return n, nil
	}
	return nil, fmt.Errorf("cannot read %T as a whole number", v)
}

func toDecimal(v any) (any, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	case string:
		s := strings.TrimSpace(x)
		// Vietnamese writing uses a decimal comma ("8,75"); a comma is a decimal
		// separator only when there is no dot.
		if strings.Contains(s, ",") && !strings.Contains(s, ".") {
			s = strings.Replace(s, ",", ".", 1)
		}
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, fmt.Errorf("%q is not a number", x)
		}
		return n, nil
	}
	return nil, fmt.Errorf("cannot read %T as a number", v)
}

func toBool(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case float64:
		return x != 0, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "true", "t", "yes", "y", "có", "co", "x":
			return true, nil
		case "0", "false", "f", "no", "n", "không", "khong":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not true or false", x)
	}
	return nil, fmt.Errorf("cannot read %T as true or false", v)
}

// Layouts tried, in order, when a time field declares none: ISO 8601 with and
// without zone, SQL datetime, the national portal's yyyyMMddHHmmss, and dd/MM/yyyy.
var defaultLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
	"20060102150405",
	"02/01/2006 15:04:05",
	"02/01/2006 15:04",
	"02/01/2006",
}

func (f *field) toTime(v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil // sources already placed zone-less columns in their zone
	case int64:
		// The national portal sends yyyyMMddHHmmss; as a number it arrives as int64.
		return f.toTime(strconv.FormatInt(x, 10))
	case string:
		s := strings.TrimSpace(x)
		for _, layout := range f.layouts {
			if t, err := time.ParseInLocation(layout, s, f.zone); err == nil {
				return t.UTC(), nil
			}
		}
		if len(f.layouts) == 1 {
			return nil, fmt.Errorf("%q does not match layout %s", x, f.layouts[0])
		}
		return nil, fmt.Errorf("%q is not a date or time this mapping can read; set a layout", x)
	}
	return nil, fmt.Errorf("cannot read %T as a time", v)
}

// GoLayout turns a yyyyMMddHHmmss-style layout into Go's reference layout; a layout
// that already is Go's (contains 2006) is returned as is.
func GoLayout(l string) string {
	if strings.Contains(l, "2006") {
		return l
	}
	r := strings.NewReplacer(
		"yyyy", "2006", "yy", "06",
		"MM", "01", "dd", "02",
		"HH", "15", "mm", "04", "ss", "05",
		".SSS", ".000", "SSS", "000",
		"XXX", "Z07:00", "Z", "Z0700",
	)
	return r.Replace(l)
}

// textOf is the canonical text of a typed value: keys, value lists and quarantine.
func textOf(v any) string {
	if v == nil {
		return ""
	}
	return toString(v)
}

// rawText shows a raw row value as text, for keys and error messages.
func rawText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		if isPrintable(x) {
			return string(x)
		}
		return fmt.Sprintf("%x", x)
	}
	return toString(v)
}

func isPrintable(b []byte) bool {
	for _, r := range string(b) {
		if r == unicode.ReplacementChar || (!unicode.IsPrint(r) && !unicode.IsSpace(r)) {
			return false
		}
	}
	return true
}
