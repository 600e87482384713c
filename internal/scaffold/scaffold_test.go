package scaffold

import (
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

func TestGuessTypesMasksAndCursor(t *testing.T) {
	tests := []struct {
		name       string
		cols       []Column
		rows       []pipeline.Row
		wantTypes  string // field:type/mask, …
		wantCursor string
		wantErr    string
	}{
		{
			name: "timestamps: the one named for updates wins",
			cols: []Column{{Name: "MaHoSo", DBType: "character varying", PrimaryKey: true}, {Name: "NgayTiepNhan", DBType: "timestamp without time zone"},
				{Name: "NgayCapNhat", DBType: "timestamp with time zone"}, {Name: "SoDienThoai", DBType: "text"}, {Name: "HoTen", DBType: "text"}},
			wantTypes:  "mahoso:string ngaytiepnhan:time ngaycapnhat:time sodienthoai:phone_vn/phone hoten:string/name",
			wantCursor: "NgayCapNhat",
		},
		{
			name:      "a text column of phones is found by its values",
			cols:      []Column{{Name: "id", DBType: "bigint", PrimaryKey: true}, {Name: "lien_lac", DBType: "text"}, {Name: "ghi_chu", DBType: "text"}, {Name: "ngay", DBType: "date"}},
			rows:      []pipeline.Row{{"id": int64(1), "lien_lac": "0912 345 678", "ghi_chu": "0912345678 hoặc 0987654321", "ngay": time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}, {"id": int64(2), "lien_lac": nil}},
			wantTypes: "id:int lien_lac:phone_vn/phone ghi_chu:string ngay:time",
		},
		{name: "no primary key", cols: []Column{{Name: "a", DBType: "text"}}, wantErr: "no primary key"},
		{name: "composite key", cols: []Column{{Name: "a", DBType: "text", PrimaryKey: true}, {Name: "b", DBType: "text", PrimaryKey: true}}, wantErr: "one-column key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := tt.rows
			if rows == nil {
				rows = []pipeline.Row{{tt.cols[0].Name: "x1"}} // the key; the rest NULL
			}
			r, err := Guess(Table{Schema: "s", Name: "t", Columns: tt.cols, Rows: rows}, "t.yaml", "", "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range r.Fields {
				s := f.Name + ":" + f.Type
				if f.Mask != "" {
					s += "/" + f.Mask
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != tt.wantTypes || r.CursorCol != tt.wantCursor {
				t.Errorf("fields %s cursor %q; want %s cursor %q", strings.Join(got, " "), r.CursorCol, tt.wantTypes, tt.wantCursor)
			}
		})
	}
}
