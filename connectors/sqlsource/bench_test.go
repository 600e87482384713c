package sqlsource

import (
	"testing"

	"github.com/egov-bridge/egov-bridge/internal/testpg"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// BenchmarkPostgresReadBatch measures keyset reads of 1000-row batches from a
// 100k-row table with an index on (cursor, key), as a sync run does them.
func BenchmarkPostgresReadBatch(b *testing.B) {
	dsn, _ := testpg.Schema(b)
	db := testpg.Open(b, dsn)
	mustExec(b, db, `CREATE TABLE ho_so (ma_ho_so bigint PRIMARY KEY, ngay_cap_nhat timestamp NOT NULL,
		chu_ho_so text NOT NULL, trang_thai int NOT NULL, phi numeric(12,2))`)
	mustExec(b, db, `INSERT INTO ho_so SELECT g, timestamp '2025-01-01' + g / 5 * interval '1 second',
		'Nguyễn Văn ' || g, g % 10, g * 1.5 FROM generate_series(1, 100000) g`)
	mustExec(b, db, `CREATE INDEX ON ho_so (ngay_cap_nhat, ma_ho_so)`)
	mustExec(b, db, `ANALYZE ho_so`)
	o := NewOptions()
	o.Driver, o.DSN, o.Table = "postgres", dsn, "ho_so"
	o.Cursor = CursorOptions{Column: "ngay_cap_nhat", Key: "ma_ho_so"}
	src := openSource(b, pipeline.Env{}, o)

	var pos pipeline.Position
	rows := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		next, done, err := src.ReadBatch(b.Context(), pos, pipeline.EmitFunc(func(pipeline.Row) error { rows++; return nil }))
		if err != nil {
			b.Fatal(err)
		}
		pos = next
		if done {
			pos = nil // start the table again
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
