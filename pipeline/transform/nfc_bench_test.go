package transform

import "testing"

// BenchmarkNFC measures NFC on text that is already NFC, as nearly every value a
// source returns is: codes (ASCII) and Vietnamese names and procedures.
func BenchmarkNFC(b *testing.B) {
	for name, s := range map[string]string{
		"ascii":     "000.00.12.H45-261120-0001",
		"name":      "Nguyễn Thị Thanh Hường",
		"procedure": "Cấp Giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở và tài sản khác gắn liền với đất lần đầu",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if NFC(s) != s {
					b.Fatal("changed")
				}
			}
		})
	}
}
