package mapping

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/egov-bridge/egov-bridge/pipeline/config"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// Field types a mapping can declare.
const (
	TypeString  = "string"
	TypeInt     = "int"
	TypeDecimal = "decimal"
	TypeBool    = "bool"
	TypeTime    = "time"
	TypePhoneVN = "phone_vn" // a Vietnamese mobile number, normalised to 84xxxxxxxxx
	TypeMark    = "mark"     // an exam mark 0–10; blank or VẮNG means absent (no value)
)

// TypeSpec describes a field type for the reference pages.
type TypeSpec struct {
	Name    string
	Doc     string
	Example string // a field using it, as YAML
}

// typeSpecs document the types, in the order of FieldSpec.Type's enum (a test
// checks that the two agree).
var typeSpecs = []TypeSpec{
	{TypeString, "Text, trimmed of nothing and NFC-normalised; numbers and times read from a database become their text. The default type.",
		"procedure: { from: TenTTHC }"},
	{TypeInt, "A whole number: 9, +9, and 9.0, 9,0 or 1.250.000, since numeric columns often arrive as decimal text. A fraction (9.5) is an error, not rounded away.",
		"status: { from: TrangThaiHoSo, type: int, required: true, in: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }"},
	{TypeDecimal, "A number with a decimal point or a decimal comma (8,5), with thousands groups (1.250.000,5). Stored as a float.",
		"fee: { from: LePhi, type: decimal }"},
	{TypeBool, "true or false: 1, true, t, yes, y, có, x are true; 0, false, f, no, n, không are false (any case); a number is true when not 0.",
		"online: { from: KenhThucHien, type: bool, map: { '2': true, '1': false } }"},
	{TypeTime, "An instant, stored in UTC. Database times are taken as the source gives them (zone-less columns in the source's zone). Text is read with the field's layout, or else ISO 8601 (with or without a zone), SQL datetime, a bare date, the national portal's yyyyMMddHHmmss, and the day-first dd/MM/yyyy (with or without a time) and dd-MM-yyyy; zone-less text is read in the field's zone, or the source's. A day-first date is never read month-first.",
		"due_at: { from: NgayHenTra, type: time }"},
	{TypePhoneVN, "A Vietnamese mobile number, normalised to 84xxxxxxxxx (0912 345 678, +84 912 345 678, 84912345678 and a number that lost its leading 0 in a spreadsheet are one number; the 01xx prefixes renumbered in 2018 are converted); a landline is an error. Citizen data: masked wherever rows are shown. Rules notify it with notify.phone.",
		"phone: { from: SoDienThoai, type: phone_vn, invalid: 'null' }"},
	{TypeMark, "An exam mark from 0 to 10 (decimal point or comma); a blank cell, VẮNG, V or - means the candidate was absent, which is no value, not 0. Other notes (KT, MIỄN) are errors until a map: says what they mean.",
		"math: { from: Toan, type: mark }"},
}

// Types lists the field types' specs.
func Types() []TypeSpec { return append([]TypeSpec(nil), typeSpecs...) }

type field struct {
	name      string
	from      string   // the source column, or the columns joined with "+" for messages
	cols      []string // several source columns, joined with sep (nil for one)
	sep       string
	typ       string
	required  bool
	transform func(string) (string, error)
	def       any // already typed
	valueMap  map[string]any
	in        map[string]bool // canonical text of allowed values
	inList    string
	layouts   []string
	zone      *time.Location
	mask      func(string) string // citizen data: how to show it masked
	nullBad   bool                // an unreadable value becomes no value instead of rejecting the row
}

func compileField(d *config.Decoder, path, name string, spec FieldSpec, opts Options, tables map[string]transform.Table) (*field, bool) {
	ok := true
	f := &field{name: name, from: name, typ: spec.Type, required: spec.Required, zone: opts.Zone, sep: " "}
	switch len(spec.From) {
	case 0:
	case 1:
		f.from = spec.From[0]
	default:
		f.cols = spec.From
		f.from = strings.Join(spec.From, "+")
	}
	if spec.Join != nil {
		if f.cols == nil {
			d.Errorf(path+".join", "join applies to a list of from columns")
			ok = false
		}
		f.sep = *spec.Join
	}
	if f.typ == "" {
		f.typ = TypeString
	}
	// The spec's enums (type, mask, invalid) are checked first.
	config.Check(&spec, func(field, format string, args ...any) {
		d.Errorf(path+"."+field, format, args...)
		ok = false
	})
	if f.typ == TypePhoneVN {
		f.mask = transform.MaskPhone // a phone number is citizen data wherever it is shown
	}
	if len(spec.Transform) > 0 {
		fn, err := transform.Compile(spec.Transform, tables)
		var serrs transform.StepErrors
		switch {
		case errors.As(err, &serrs):
			for _, se := range serrs {
				d.Add(&config.Error{File: d.File, Line: se.Line, Column: se.Column, Path: fmt.Sprintf("%s.transform[%d]", path, se.Index), Msg: se.Msg})
			}
			ok = false
		case err != nil:
			d.Errorf(path+".transform", "%v", err)
			ok = false
		}
		f.transform = fn
	}
	if spec.Invalid == "null" {
		f.nullBad = true
		if spec.Required {
			d.Errorf(path+".invalid", "a required field cannot keep an invalid value as null")
			ok = false
		}
	}
	if fn, known := maskers[spec.Mask]; known {
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
		f.layouts = []string{transform.GoLayout(spec.Layout)}
	}
	if !ok {
		return nil, false
	}
	if len(spec.Map) > 0 {
		f.valueMap = make(map[string]any, len(spec.Map))
		for k, v := range spec.Map {
			f.valueMap[transform.NFC(strings.TrimSpace(k))] = v
		}
	}
	if spec.Default != nil {
		v, err := f.literal(spec.Default)
		if err != nil {
			d.Errorf(path+".default", "default %v is not a valid %s: %v", spec.Default, f.typ, err)
			ok = false
		}
		f.def = v
	}
	if len(spec.In) > 0 {
		f.in = map[string]bool{}
		var shown []string
		for i, raw := range spec.In {
			v, err := f.literal(raw)
			if err == nil && v == nil {
				err = errors.New("blank")
			}
			if err != nil {
				d.Errorf(fmt.Sprintf("%s.in[%d]", path, i), "allowed value %v of field %s is not a valid %s: %v", raw, name, f.typ, err)
				ok = false
				continue
			}
			if f.in[textOf(v)] {
				continue
			}
			f.in[textOf(v)] = true
			shown = append(shown, textOf(v))
		}
		f.inList = strings.Join(shown, ", ")
	}
	return f, ok
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
	case TypePhoneVN:
		return toString(v), nil
	case TypeMark:
		return toDecimal(v)
	}
	return v, nil
}

var errMissing = errors.New("required value is missing")

// errDropped marks a value that was unreadable and dropped (invalid: "null"): the
// row is kept, and the record says which field lost its value.
var errDropped = errors.New("unreadable value dropped")

// raw is the field's raw value: its column's, or its columns' non-blank values
// joined (as text).
func (f *field) raw(row map[string]any) any {
	if f.cols == nil {
		return row[f.from]
	}
	var parts []string
	for _, c := range f.cols {
		if t := strings.TrimSpace(rawText(row[c])); t != "" {
			parts = append(parts, t)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return strings.Join(parts, f.sep)
}

// value runs a row through the field's steps, each on the previous one's output:
//
//  1. from/join: the column's raw value, or the columns' non-blank texts joined;
//  2. map: the raw value as (trimmed, NFC) text replaced by the map's entry, if any;
//  3. transform: the steps, on text (numbers read as numbers become text first);
//     then blank text is no value;
//  4. default: when there is no value, the field's default (typed at load);
//  5. type: the value read as the field's type (an absent mark is no value);
//  6. required: no value rejects the row;
//  7. in: the typed value must be one of the allowed values (typed at load).
//
// An unreadable value (steps 3 and 5) rejects the row, or with invalid: "null"
// leaves the field with its default or no value.
func (f *field) value(row map[string]any) (any, error) {
	v, err := f.transformed(f.mapped(f.raw(row)))
	if err == nil {
		if v == nil {
			return f.checked(f.def)
		}
		v, err = f.typed(v)
	}
	if err != nil {
		if !f.nullBad {
			return nil, err
		}
		return f.def, errDropped
	}
	return f.checked(v)
}

// mapped replaces a raw value found in the field's map (step 2).
func (f *field) mapped(raw any) any {
	if f.valueMap == nil || raw == nil {
		return raw
	}
	if v, ok := f.valueMap[transform.NFC(strings.TrimSpace(rawText(raw)))]; ok {
		return v
	}
	return raw
}

// transformed applies the transform steps to text (step 3). Text is NFC; blank text
// is no value. Values that are not text (times read from a database) pass as they are.
func (f *field) transformed(v any) (any, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		s = x
	case []byte:
		s, v = string(x), nil
	case int64, int, float64, bool:
		if f.transform == nil {
			return v, nil
		}
		s, v = toString(x), nil // a code read as a number still goes through its lookup
	default:
		return v, nil
	}
	out := transform.NFC(s)
	if f.transform != nil {
		var err error
		if out, err = f.transform(out); err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(out) == "" {
		return nil, nil
	}
	if v != nil && out == s {
		return v, nil // the text as read: reusing its interface value saves an allocation per field
	}
	return out, nil
}

// checked applies required and in (steps 6 and 7) to a typed value.
func (f *field) checked(v any) (any, error) {
	if v == nil {
		if f.required {
			return nil, errMissing
		}
		return nil, nil
	}
	if f.in != nil && !f.in[textOf(v)] {
		shown := textOf(v)
		if f.mask != nil {
			shown = f.mask(shown)
		}
		return nil, fmt.Errorf("value %s is not one of [%s]", shown, f.inList)
	}
	return v, nil
}

// literal types a value written in the mapping itself (default, in): it is typed
// like a row's value but not mapped or transformed, since it is already what the
// field holds. A default or allowed value of a field with a lookup is the looked-up
// value, not a code.
func (f *field) literal(v any) (any, error) {
	if s, ok := v.(string); ok {
		s = transform.NFC(s)
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		v = s
	}
	return f.typed(v)
}

// typed reads a value as the field's type (step 5).
func (f *field) typed(raw any) (any, error) {
	switch f.typ {
	case TypeString:
		if _, ok := raw.(string); ok {
			return raw, nil // already text: no new interface value
		}
		return toString(raw), nil
	case TypeInt:
		return toInt(raw)
	case TypeDecimal:
		return toDecimal(raw)
	case TypeBool:
		return toBool(raw)
	case TypeTime:
		return f.toTime(raw)
	case TypePhoneVN:
		return transform.PhoneVN(toString(raw))
	case TypeMark:
		return toMark(raw)
	}
	return nil, fmt.Errorf("unknown type %q", f.typ)
}

func toMark(v any) (any, error) {
	switch x := v.(type) {
	case float64, int64, int:
		f, _ := toDecimal(x)
		if m := f.(float64); m < 0 || m > 10 {
			return nil, fmt.Errorf("mark %v is outside 0–10", m)
		}
		return f, nil
	case string:
		m, absent, err := transform.Mark(x)
		if err != nil {
			return nil, err
		}
		if absent {
			return nil, nil
		}
		return m, nil
	}
	return nil, fmt.Errorf("cannot read %T as a mark", v)
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
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
		return transform.Int(x)
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
		// Vietnamese writing: decimal comma ("8,75"), dots between thousands.
		return transform.Decimal(x)
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

func (f *field) toTime(v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil // sources already placed zone-less columns in their zone
	case int64:
		// The national portal sends yyyyMMddHHmmss; as a number it arrives as int64.
		return f.toTime(strconv.FormatInt(x, 10))
	case string:
		// Zone-less text is read in the field's zone (or the source's); layouts are the
		// declared one, or ISO 8601, SQL datetime, yyyyMMddHHmmss and dd/MM/yyyy forms.
		return transform.ParseTime(x, f.layouts, f.zone)
	}
	return nil, fmt.Errorf("cannot read %T as a time", v)
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
