package mapping

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// BenchmarkDossierMapAndHash measures what the engine does per row: map a DVCQG
// dossier row through the shipped mapping (types, transforms, computed fields) and
// hash the record for change detection. Run with -cpu 1 for the one-core figure.
func BenchmarkDossierMapAndHash(b *testing.B) {
	data, err := os.ReadFile("../../mappings/dossier-dvcqg.yaml")
	if err != nil {
		b.Fatal(err)
	}
	m, err := Compile("dossier-dvcqg.yaml", data, Options{Clock: func() time.Time { return time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC) }})
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]pipeline.Row, 1024)
	for i := range rows {
		rows[i] = pipeline.Row{
			"MaHoSo": fmt.Sprintf("000.00.12.H45-261120-%04d", i), "MaTTHC": "1.001612", "TenTTHC": "Đăng ký khai sinh",
			"ChuHoSo": "Nguyễn Văn An", "SoDienThoai": "0912 345 678", "DonViXuLy": "UBND-XA-PHUOCLAI", "KenhThucHien": int64(2),
			"TrangThaiHoSo": int64(4), "NgayTiepNhan": "20261120083000", "NgayHenTra": "20261130170000", "NgayKetThucXuLy": nil,
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec, err := m.Apply(rows[i%len(rows)], "UBND-HUYEN-CANGIUOC")
		if err != nil {
			b.Fatal(err)
		}
		_ = rec.Hash()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
