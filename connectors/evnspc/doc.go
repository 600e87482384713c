// Package evnspc is the `evn_spc_outage` source: the power-outage schedules that
// EVN SPC (Tổng công ty Điện lực miền Nam) publishes per unit (Điện lực) on its
// customer-service site.
//
// On every poll it fetches the public page /TraCuu/LichNgungGiamCungCapDien for
// the session cookie, then, per unit, GET
// /TraCuu/GetThongTinLichNgungGiamCungCapDien?madvi=PB0601&tuNgay=dd-MM-yyyy&denNgay=dd-MM-yyyy&ChucNang=MaDonVi
// with that page as Referer and X-Requested-With: XMLHttpRequest. The answer is
// an HTML fragment, always HTTP 200: one div.entry per schedule (span.where,
// span.time, span.cause), or in the older shape a table of start, end, area and
// reason, or the sentence "không có lịch ngừng giảm cung cấp điện". Any other
// page is an error, so a broken poll never looks like every schedule cancelled.
//
// The site gives no id: a schedule's key (MaLich) is its unit, area and start, so
// a changed end or reason is an update and a moved start is a new schedule (and
// the old one disappears). Times are written in the source's zone and emitted in
// UTC.
package evnspc
