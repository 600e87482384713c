package transform

import (
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestMaskNameKeepsFirstLetters(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Nguyễn Văn An", "N*** V** A*"},
		{norm.NFD.String("Nguyễn Văn An"), "N*** V** A*"},
		{"Ấu Thị Ư", "Ấ* T** Ư"},
		{norm.NFD.String("Ấu Thị Ư"), "Ấ* T** Ư"}, // Ấ decomposed is three code points, one letter
		{"  Trần\u00a0 Thị  Bích   Ngọc ", "T*** T** B*** N***"},
		{"Đỗ", "Đ*"},
		{"", ""},
		{"   ", ""},
	}
	for _, tt := range tests {
		if got := MaskName(tt.in); got != tt.want {
			t.Errorf("MaskName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskIDKeepsLastThree(t *testing.T) {
	tests := []struct{ in, want string }{
		{"001203004567", "*********567"}, // CCCD
		{"212345678", "******678"},       // CMND
		{" 001203004567 ", "*********567"},
		{"001 203 004 567", "*** *** *** 567"},
		{"123", "***"},
		{"1", "***"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MaskID(tt.in); got != tt.want {
			t.Errorf("MaskID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
