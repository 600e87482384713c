package transform

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestDecimalReadsVietnameseAndProgrammerNumbers(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"8,75", 8.75},
		{"8.75", 8.75},
		{" 8,75 ", 8.75},
		{"\u00a08,75\t", 8.75},
		{"10", 10},
		{"-3,5", -3.5},
		{"+2", 2},
		{",5", 0.5},
		{".5", 0.5},
		{"5.", 5},
		{"1.250", 1.25}, // one separator is always the decimal one
		{"1,250", 1.25},
		{"1.250.000", 1250000},
		{"1,250,000", 1250000},
		{"1.250.000,5", 1250000.5},
		{"1,250,000.5", 1250000.5},
		{"1.250,75", 1250.75},
		{"1,250.75", 1250.75},
		{"-1.250.000", -1250000},
		{"12.345.678.901", 12345678901},
		{"1e3", 1000},
		{"1,5e3", 1500},
		{"1.5E-3", 0.0015},
		{"2.5e+2", 250},
		{"0", 0},
		{"007", 7},
	}
	for _, tt := range tests {
		got, err := Decimal(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Decimal(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDecimalRejects(t *testing.T) {
	tests := []struct{ in, err string }{
		{"", "number is empty"},
		{"  ", "number is empty"},
		{"NaN", `"NaN" is not a number`},
		{"nan", "not a number"},
		{"Inf", "not a number"},
		{"-Infinity", "not a number"},
		{"0x1p-2", "not a number"},
		{"1_000", "not a number"},
		{"abc", `unexpected "a"`},
		{"8,75đ", "not a number"},
		{"12 345", `unexpected " "`},
		{".", "no digits"},
		{",", "no digits"},
		{"-", "no digits"},
		{"--5", "not a number"},
		{"1.2.3", "groups of three"},
		{"1,25,000", "groups of three"},
		{"1.2345.678", "groups of three"},
		{"1234.567.890", "groups of three"},
		{".250.000", "groups of three"},
		{"1.250.000.", "groups of three"},
		{"1.250,000,5", "decimal separator must come once"},
		{"1,250.000,5", "decimal separator must come once"},
		{"1.250.000e3", "bad exponent"},
		{"1e", "bad exponent"},
		{"1e+", "bad exponent"},
		{"1e5e3", "bad exponent"},
		{"1e400", "too large or too small"},
		{"-1e400", "too large or too small"},
	}
	for _, tt := range tests {
		got, err := Decimal(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Decimal(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
		}
	}
}

func TestDecimalDoesNotAllocate(t *testing.T) {
	for _, in := range []string{"8.75", "8,75", "1.250.000,5"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = Decimal(in) }); n != 0 {
			t.Errorf("Decimal(%q) allocates %v times", in, n)
		}
	}
}

func TestMark(t *testing.T) {
	tests := []struct {
		in     string
		want   float64
		absent bool
	}{
		{"8,75", 8.75, false},
		{"8.75", 8.75, false},
		{"10", 10, false},
		{"10,00", 10, false},
		{"0", 0, false}, // zero is a mark, not an absence
		{"0,25", 0.25, false},
		{"", 0, true},
		{"   ", 0, true},
		{"VẮNG", 0, true},
		{"vắng", 0, true},
		{"Vắng", 0, true},
		{"VANG", 0, true}, // typed without Vietnamese accents
		{" vắng ", 0, true},
		{"V", 0, true},
		{"v", 0, true},
		{"-", 0, true},
	}
	for _, tt := range tests {
		got, absent, err := Mark(tt.in)
		if err != nil || got != tt.want || absent != tt.absent {
			t.Errorf("Mark(%q) = %v, %v, %v; want %v, %v", tt.in, got, absent, err, tt.want, tt.absent)
		}
	}
}

func TestMarkRejects(t *testing.T) {
	tests := []struct{ in, err string }{
		{"10,5", "outside 0 to 10"},
		{"11", "outside 0 to 10"},
		{"-1", "outside 0 to 10"},
		{"-0,5", "outside 0 to 10"},
		{"100", "outside 0 to 10"},
		{"KT", `mark "KT" is not a number, nor VẮNG, V or - for absent`}, // disciplined: the mapping must say
		{"MIỄN", "is not a number"},
		{"CT", "is not a number"},
		{"--", "is not a number"},
		{"VV", "is not a number"},
		{"NaN", "is not a number"},
		{"8,5đ", "is not a number"},
	}
	for _, tt := range tests {
		got, absent, err := Mark(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Mark(%q) = %v, %v, %v; want error containing %q", tt.in, got, absent, err, tt.err)
		}
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"9", 9},
		{" 9 ", 9},
		{"+9", 9},
		{"-9", -9},
		{"9.0", 9},
		{"9,0", 9},
		{"9.000", 9}, // one separator is the decimal one
		{"1.250.000", 1250000},
		{"1,250,000", 1250000},
		{"9223372036854775807", math.MaxInt64},
		{"9007199254740993", 9007199254740993}, // beyond float64's exact range, read exactly
		{"1e3", 1000},
	}
	for _, tt := range tests {
		got, err := Int(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Int(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, err string }{
		{"", "whole number is empty"},
		{"9.5", `"9.5" is not a whole number`},
		{"9,5", "not a whole number"},
		{"x", "not a whole number"},
		{"9223372036854775808", "too large for a whole number"},
		{"1e300", "too large to read exactly"},
		{"9007199254740993.0", "too large to read exactly"},
	}
	for _, tt := range bad {
		got, err := Int(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Int(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
		}
	}
}

func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"8,75", "1.250.000,5", "1,250,000.5", "-1e3", "NaN", ".", "1.2.3", " 7 ", "VẮNG", "1,5e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Decimal(s)
		if err != nil {
			return
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("Decimal(%q) = %v", s, v)
		}
		// What Decimal returns, written back plainly, reads the same.
		if again, err := Decimal(strconv.FormatFloat(v, 'g', -1, 64)); err != nil || again != v {
			t.Fatalf("Decimal(%q) = %v, but reading it back gives %v, %v", s, v, again, err)
		}
		if m, absent, err := Mark(s); err == nil && !absent && (m < 0 || m > 10 || m != v) {
			t.Fatalf("Mark(%q) = %v, Decimal says %v", s, m, v)
		}
		if n, err := Int(s); err == nil && float64(n) != v && math.Abs(v) <= 1<<53 {
			t.Fatalf("Int(%q) = %d, Decimal says %v", s, n, v)
		}
	})
}

func BenchmarkDecimal(b *testing.B) {
	for _, in := range []string{"8.75", "8,75", "1.250.000,5"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decimal(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
