package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// dossierColumns are the agency table's columns, in the national public service
// portal's (DVCQG) names; the first twelve are what mappings/dossier-dvcqg.yaml reads.
// The last three make rows as wide as a real one-stop-shop table; the source is told
// to read only the mapped columns, as a tuned deployment would.
var dossierColumns = []string{
	"MaHoSo", "MaTTHC", "TenTTHC", "ChuHoSo", "SoDienThoai", "DonViXuLy", "KenhThucHien",
	"TrangThaiHoSo", "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayCapNhat",
	"DiaChiChuHoSo", "SoGiayToChuHoSo", "EmailChuHoSo",
}

// readColumns are the columns the pipeline reads (and the floor selects).
var readColumns = dossierColumns[:12]

const (
	cursorColumn = "NgayCapNhat"
	keyColumn    = "MaHoSo"
)

const createDossierSQL = `CREATE TABLE ho_so (
	"MaHoSo"          text PRIMARY KEY,
	"MaTTHC"          text NOT NULL,
	"TenTTHC"         text NOT NULL,
	"ChuHoSo"         text NOT NULL,
	"SoDienThoai"     text,
	"DonViXuLy"       text NOT NULL,
	"KenhThucHien"    int NOT NULL,
	"TrangThaiHoSo"   int NOT NULL,
	"NgayTiepNhan"    text,
	"NgayHenTra"      text,
	"NgayKetThucXuLy" text,
	"NgayCapNhat"     timestamp NOT NULL,
	"DiaChiChuHoSo"   text,
	"SoGiayToChuHoSo" text,
	"EmailChuHoSo"    text
)`

var (
	familyNames = []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Trương", "Đinh"}
	middleNames = []string{"Văn", "Thị", "Hữu", "Minh", "Thanh", "Đức", "Ngọc", "Thu", "Quốc", "Hoàng", "Kim", "Thị Thanh", "Văn Hoài", "Bảo"}
	givenNames  = []string{"An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Lan", "Long", "Mai", "Nam", "Phương", "Quân", "Sơn", "Tâm", "Trang", "Tuấn", "Yến", "Hạnh", "Thảo", "Khánh", "Nhung", "Phúc", "Lộc", "Thủy"}
	procedures  = [][2]string{
		{"1.004946", "Cấp bản sao trích lục hộ tịch"},
		{"1.001193", "Đăng ký kết hôn"},
		{"1.002755", "Chứng thực bản sao từ bản chính giấy tờ, văn bản do cơ quan tổ chức có thẩm quyền của Việt Nam cấp hoặc chứng nhận"},
		{"2.000986", "Đăng ký thường trú"},
		{"1.010727", "Cấp giấy phép xây dựng nhà ở riêng lẻ"},
		{"2.001263", "Đăng ký thành lập hộ kinh doanh"},
		{"1.004227", "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất"},
		{"1.001765", "Cấp Giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở và tài sản khác gắn liền với đất lần đầu"},
		{"1.000656", "Đăng ký khai sinh"},
		{"2.000528", "Cấp phiếu lý lịch tư pháp cho công dân Việt Nam, người nước ngoài đang cư trú tại Việt Nam"},
		{"1.003583", "Giải quyết chế độ trợ cấp xã hội hằng tháng đối với người cao tuổi"},
		{"1.008004", "Thủ tục thẩm định, phê duyệt phương án cắm mốc giới hành lang bảo vệ nguồn nước"},
	}
	units   = []string{"UBND-XA-PHUOCLAI", "UBND-XA-LONGHAU", "UBND-HUYEN-CANGIUOC", "CA-HUYEN-CANGIUOC", "VPDKDD-CANGIUOC"}
	streets = []string{"Đường Nguyễn Thái Bình", "Ấp Phước Thuận", "Ấp Long Thạnh", "Đường Trần Văn Nghĩa", "Tỉnh lộ 826", "Ấp Tân Điền", "Khu phố Hòa Thuận"}
	wards   = []string{"xã Phước Lại", "xã Long Hậu", "thị trấn Cần Giuộc", "xã Phước Lý", "xã Tân Kim"}
	// mobilePrefixes are today's Vietnamese mobile prefixes (without the leading 0).
	mobilePrefixes = []string{"90", "93", "70", "79", "77", "76", "78", "91", "94", "83", "84", "85", "81", "82", "86", "96", "97", "98", "32", "33", "34", "35", "36", "37", "38", "39"}
	// statusWeights skews dossiers towards finished ones, as a real table is.
	statusWeights = []int{1: 2, 2: 8, 3: 2, 4: 12, 5: 3, 6: 2, 7: 1, 8: 1, 9: 9, 10: 60}
)

// seedEpoch is the first reception time; every seeded row is older than any
// incremental change the benchmark makes (those are stamped "now").
var seedEpoch = time.Date(2024, 1, 2, 7, 30, 0, 0, time.UTC)

// dossierRow is one generated row, in dossierColumns order; nil means NULL.
type dossierRow []any

// generator makes deterministic pseudo-random dossiers: the same seed gives the
// same rows in the same order, so runs compare like with like.
type generator struct {
	rng   *rand.Rand
	total int
}

func newGenerator(seed uint64, total int) *generator {
	return &generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), total: total}
}

func (g *generator) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *generator) status() int {
	sum := 0
	for _, w := range statusWeights {
		sum += w
	}
	n := g.rng.IntN(sum)
	for s, w := range statusWeights {
		if n < w {
			return s
		}
		n -= w
	}
	return 10
}

// row returns the i-th dossier (0-based). Reception times spread the rows evenly
// over two years, so the cursor column has realistic, mostly distinct values.
func (g *generator) row(i int) dossierRow {
	span := 2 * 365 * 24 * time.Hour
	received := seedEpoch.Add(time.Duration(int64(span) / int64(max(g.total, 1)) * int64(i))).Truncate(time.Second)
	received = received.Add(time.Duration(g.rng.IntN(600)) * time.Second)
	unitIdx := g.rng.IntN(len(units))
	proc := procedures[g.rng.IntN(len(procedures))]
	status := g.status()
	due := received.Add(time.Duration(3+g.rng.IntN(28)) * 24 * time.Hour)
	updated := received.Add(time.Duration(g.rng.IntN(72*3600)) * time.Second)
	var finished any
	if status >= 9 {
		f := received.Add(time.Duration(g.rng.IntN(int(due.Sub(received)/time.Second)*12/10+1)) * time.Second)
		finished = portalTime(f)
		if f.After(updated) {
			updated = f
		}
	}
	name := g.pick(familyNames) + " " + g.pick(middleNames) + " " + g.pick(givenNames)
	code := fmt.Sprintf("000.00.%02d.H45-%s-%07d", 10+unitIdx, received.Format("060102"), i+1)
	return dossierRow{
		code, proc[0], proc[1], name, g.phone(), units[unitIdx],
		1 + g.rng.IntN(3), status,
		portalTime(received), portalTime(due), finished, updated,
		fmt.Sprintf("Số %d, %s, %s, huyện Cần Giuộc, tỉnh Long An", 1+g.rng.IntN(400), g.pick(streets), g.pick(wards)),
		fmt.Sprintf("0%02d%09d", 80+g.rng.IntN(20), g.rng.IntN(1_000_000_000)),
		g.email(name),
	}
}

// phone writes a mobile number the many ways clerks type them; a few are NULL or
// not a phone at all (the mapping keeps those rows without a phone).
func (g *generator) phone() any {
	p := g.pick(mobilePrefixes)
	rest := fmt.Sprintf("%07d", g.rng.IntN(10_000_000))
	switch n := g.rng.IntN(100); {
	case n < 3:
		return nil
	case n < 5:
		return "không có"
	case n < 55:
		return "0" + p + rest
	case n < 70:
		return "+84 " + p + " " + rest[:3] + " " + rest[3:]
	case n < 80:
		return "84" + p + rest
	case n < 90:
		return "0" + p + "." + rest[:3] + "." + rest[3:]
	default:
		return p + rest // the leading 0 lost by a spreadsheet
	}
}

func (g *generator) email(name string) any {
	if g.rng.IntN(3) > 0 {
		return nil
	}
	parts := strings.Fields(name)
	return fmt.Sprintf("%s%d@gmail.com", asciiFold(strings.ToLower(parts[len(parts)-1])), g.rng.IntN(10000))
}

// portalTime is the national portal's yyyyMMddHHmmss text.
func portalTime(t time.Time) string { return t.Format("20060102150405") }

// asciiFold drops Vietnamese diacritics for e-mail local parts.
func asciiFold(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case strings.ContainsRune("àáạảãâầấậẩẫăằắặẳẵ", r):
			r = 'a'
		case strings.ContainsRune("èéẹẻẽêềếệểễ", r):
			r = 'e'
		case strings.ContainsRune("ìíịỉĩ", r):
			r = 'i'
		case strings.ContainsRune("òóọỏõôồốộổỗơờớợởỡ", r):
			r = 'o'
		case strings.ContainsRune("ùúụủũưừứựửữ", r):
			r = 'u'
		case strings.ContainsRune("ỳýỵỷỹ", r):
			r = 'y'
		case r == 'đ':
			r = 'd'
		case r == 'Đ':
			r = 'D'
		}
		b.WriteRune(r)
	}
	return b.String()
}
