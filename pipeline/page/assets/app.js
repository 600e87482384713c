// The steering page: reads /api/v1 with the session cookie, refreshes itself
// every 30 seconds and whenever the event stream brings news. Everything shown is
// what the API returned for this token (its agencies, masked citizen data).
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const nf = new Intl.NumberFormat("vi-VN");
  const pf = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 1 });
  let session = null, zone = "Asia/Ho_Chi_Minh", agencyNames = {};
  const has = { figures: true, feedback: true };

  const TYPES = { created: "Tạo mới", updated: "Cập nhật", deleted: "Xoá", rule: "Quy tắc" };
  const RULES = {
    "dossier.received": "Đã tiếp nhận", "dossier.rejected": "Từ chối tiếp nhận", "dossier.supplement_requested": "Yêu cầu bổ sung",
    "dossier.fees_due": "Chờ nộp phí", "dossier.result_ready": "Có kết quả", "dossier.due_moved": "Đổi ngày hẹn trả",
    "deadline.due_soon": "Sắp đến hạn", "deadline.overdue": "Quá hạn",
  };
  const STATUS = { 1: "Mới", 2: "Đã tiếp nhận", 3: "Từ chối", 4: "Đang xử lý", 5: "Yêu cầu bổ sung", 6: "Chờ nộp phí",
    7: "Rút hồ sơ", 8: "Dừng xử lý", 9: "Có kết quả", 10: "Đã trả kết quả" };
  const DEAD = { holding: "đang giữ", open: "mở", superseded: "đã thay thế", dismissed: "đã bỏ qua" };

  function node(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function showError(msg) { const e = $("error"); e.textContent = msg; e.hidden = !msg; }

  async function api(path, opts) {
    opts = opts || {};
    const headers = { Accept: "application/json" };
    if (opts.body !== undefined) { headers["Content-Type"] = "application/json"; headers["X-CSRF-Token"] = session.csrf_token || ""; }
    const r = await fetch(path, { method: opts.method || "GET", headers, credentials: "same-origin",
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    if (r.status === 401) { location.href = "/login"; throw new Error("hết phiên đăng nhập"); }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { const e = new Error(data.error || r.statusText); e.status = r.status; throw e; }
    return data;
  }

  const time = t => new Intl.DateTimeFormat("vi-VN", { timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(t));
  const dateTime = t => new Intl.DateTimeFormat("vi-VN", { timeZone: zone, dateStyle: "short", timeStyle: "short" }).format(new Date(t));
  const today = () => new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date());
  const addDays = (d, n) => { const x = new Date(d + "T00:00:00Z"); x.setUTCDate(x.getUTCDate() + n); return x.toISOString().slice(0, 10); };
  const name = code => agencyNames[code] || code || "—";

  // Periods: the flows (received, finished, notices) count within them.
  const PERIODS = [
    ["30d", "30 ngày qua", () => addDays(today(), -29)],
    ["7d", "7 ngày qua", () => addDays(today(), -6)],
    ["month", "Tháng này", () => today().slice(0, 8) + "01"],
    ["year", "Năm nay", () => today().slice(0, 5) + "01-01"],
    ["all", "Toàn bộ", () => ""],
  ];
  function query() {
    const p = new URLSearchParams();
    const from = PERIODS.find(x => x[0] === $("period").value)[2]();
    if (from) p.set("from", from);
    if ($("agency").value) p.set("agency", $("agency").value);
    return p;
  }

  function renderFigures(f) {
    // Shown before drawing: the charts take the width of their place.
    for (const id of ["figures-section", "reach-section"]) $(id).hidden = false;
    $("filters").hidden = false;
    agencyNames = {};
    for (const a of [...f.agencies, ...f.parents]) agencyNames[a.code] = a.name;
    const sel = $("agency"), cur = sel.value;
    if (sel.options.length <= 1) {
      const seen = new Set();
      for (const a of [...f.parents, ...f.agencies]) {
        if (!seen.has(a.code)) { seen.add(a.code); sel.append(node("option", { value: a.code }, a.name)); }
      }
      sel.value = cur;
    }
    const t = f.total;
    const rate = t.on_time_rate === null ? "—" : pf.format(t.on_time_rate * 100) + "%";
    const cards = [
      ["received", "Tiếp nhận", nf.format(t.received)], ["in_progress", "Đang xử lý", nf.format(t.in_progress)],
      ["finished", "Đã giải quyết", nf.format(t.finished)], ["on_time_rate", "Đúng hạn", rate],
      ["overdue_now", "Quá hạn hiện tại", nf.format(t.overdue_now), t.overdue_now > 0],
      ["due_soon", "Sắp đến hạn (2 ngày)", nf.format(t.due_soon)],
      ["supplement_requests", "Yêu cầu bổ sung", nf.format(t.supplement_requests)],
      ["outages", "Lịch cắt điện", nf.format(t.outages)],
    ];
    if (f.feedback) cards.push(["feedback", "Góp ý (đã trả lời)", `${nf.format(f.feedback.received)} (${nf.format(f.feedback.answered)})`]);
    $("totals").replaceChildren(...cards.map(([k, label, v, bad]) =>
      node("div", { class: "total" + (bad ? " bad" : ""), "data-k": k }, node("b", {}, v), node("span", {}, label))));
    const list = f.agencies.filter(a => a.received + a.in_progress + a.finished > 0);
    Charts.hbars($("ontime-chart"), list.filter(a => a.on_time_rate !== null).map(a => ({
      label: a.name, value: a.on_time_rate * 100, text: pf.format(a.on_time_rate * 100) + "%",
      cls: a.on_time_rate >= 0.9 ? "ok" : a.on_time_rate < 0.7 ? "bad" : "" })), { max: 100, title: "Tỷ lệ đúng hạn" });
    Charts.hbars($("overdue-chart"), list.map(a => ({ label: a.name, value: a.overdue_now, text: nf.format(a.overdue_now), cls: "bad" })),
      { title: "Quá hạn hiện tại" });
    const n = t.notices, routes = [["OA", n.oa, "ok"], ["ZNS", n.zns, ""], ["Không gửi được", n.undeliverable, "bad"],
      ["Quá hạn gửi", n.stale, ""], ["Đang chờ gửi", n.deferred, ""], ["Thất bại", n.failed, "bad"]];
    Charts.hbars($("reach-chart"), routes.map(([label, v, cls]) => ({ label, value: v, text: nf.format(v), cls })), { title: "Thông báo theo kênh" });
    $("saving").textContent = n.saving_dong === null ? "Chưa cấu hình giá SMS để tính tiết kiệm."
      : `Tiết kiệm so với SMS: ${nf.format(Math.round(n.saving_dong))} đồng` + (n.dry_run ? ` (chạy thử: ${nf.format(n.dry_run)} tin không thực gửi)` : "");
  }

  // The index: per group, the points of the indicators that have verified points
  // (score/of), or the rates of those that have none; "—" where the data cannot
  // support the group (the note below the table says why).
  function renderQuality(q) {
    $("quality-section").hidden = false;
    const cell = g => {
      if (!g.supported) return "—";
      const parts = g.indicators.filter(i => i.supported && i.rate !== null && i.score === null).map(i => pf.format(i.rate * 100) + "%");
      if (g.of) parts.unshift(`${pf.format(g.score)}/${pf.format(g.of)}`);
      return parts.length ? parts.join(" · ") : "·";
    };
    const tip = g => g.indicators.map(i => i.supported ? `${i.name}: ${i.numerator}/${i.denominator}` : `${i.name}: ${i.why || "không có dữ liệu"}`).join("\n");
    const head = node("tr", {}, node("th", {}, "Đơn vị"), ...q.groups.map(g => node("th", { class: "num", title: g.name }, `${g.name} (${g.max})`)),
      node("th", { class: "num" }, "Điểm"));
    const row = a => node("tr", { "data-code": a.code || "total" }, node("td", {}, a.code ? a.name : "Tổng"),
      ...a.groups.map(g => node("td", { class: "num", title: tip(g) }, cell(g))),
      node("td", { class: "num" }, node("b", {}, a.of ? `${pf.format(a.score)}/${pf.format(a.of)}` : "—")));
    const rows = [...q.parents, ...q.agencies].filter(a => a.groups.some(g => g.indicators.some(i => i.denominator > 0)));
    $("quality").replaceChildren(node("table", {}, node("thead", {}, head), node("tbody", {}, ...rows.map(row), row(q.total))));
    $("quality-note").textContent = q.unsupported.length
      ? "Dữ liệu đồng bộ chưa đủ để chấm nhóm: " + q.unsupported.map(g => g.name).join("; ") + ". Di chuột lên ô để xem lý do và công thức."
      : "";
  }

  function renderDaily(days) {
    $("daily-section").hidden = false;
    Charts.line($("daily-chart"), days.map(d => ({ label: d.day.slice(8, 10) + "/" + d.day.slice(5, 7), value: d.received })), { title: "Hồ sơ tiếp nhận theo ngày" });
  }

  function eventLine(e, fresh) {
    const what = e.rule ? (RULES[e.rule] || e.rule) : (TYPES[e.type] || e.type);
    const a = e.after || {};
    let detail = "";
    if (e.changed && e.changed.includes("status") && e.before && e.after) detail = `${STATUS[e.before.status] || e.before.status} → ${STATUS[a.status] || a.status}`;
    else if (a.status !== undefined) detail = STATUS[a.status] || "";
    const li = node("li", { class: fresh ? "fresh" : "", "data-seq": e.seq },
      node("span", { class: "t" }, time(e.detected_at)), node("span", { class: "k" }, what), " ", e.key, " · ", name(e.agency),
      detail ? " · " + detail : "", e.message ? node("span", { class: "msg" }, e.message.text) : null);
    return li;
  }

  function renderAlerts(a) {
    $("alerts").replaceChildren(...(a.events.length ? a.events.slice(0, 30).map(e => {
      const due = e.after && e.after.due_at ? " · hẹn trả " + dateTime(e.after.due_at) : "";
      return node("li", { "data-seq": e.seq }, node("span", { class: "t" }, dateTime(e.detected_at)),
        node("span", { class: "k" }, RULES[e.rule] || e.rule), " ", e.key, " · ", name(e.agency), due);
    }) : [node("li", { class: "muted" }, "Không có cảnh báo.")]));
  }

  function renderStatus(st) {
    const rows = [
      ...st.sources.map(s => node("tr", {}, node("td", { class: s.ok ? "ok-dot" : "bad-dot" }, "Nguồn " + s.name),
        node("td", {}, s.stopped || s.last_error || (s.last_commit ? "đồng bộ lúc " + time(s.last_commit) : "chưa đồng bộ")),
        node("td", { class: "num" }, s.quarantined ? `${nf.format(s.quarantined)} cách ly` : ""))),
      ...st.sinks.map(s => node("tr", {}, node("td", { class: s.ok ? "ok-dot" : "bad-dot" }, "Đích " + s.name),
        node("td", {}, `chờ gửi ${nf.format(s.outbox)}`), node("td", { class: "num" }, s.dead_letters ? `${nf.format(s.dead_letters)} thất bại` : ""))),
    ];
    $("status").replaceChildren(node("table", {}, node("tbody", {}, ...rows)));
  }

  const canOperate = () => session.role === "operator" || session.role === "admin";

  function renderDead(d) {
    if (!d.dead_letters.length) { $("dead").replaceChildren(node("p", { class: "muted" }, "Không có.")); return; }
    const act = (label, path, id) => node("button", { class: "act", type: "button", onclick: async () => {
      try { await api(path, { method: "POST", body: { ids: [id] } }); refresh(); } catch (e) { showError(e.message); }
    } }, label);
    $("dead").replaceChildren(node("table", {}, node("tbody", {}, ...d.dead_letters.slice(0, 20).map(x => node("tr", {},
      node("td", {}, `${x.sink} · ${x.event.key}`, node("div", { class: "muted" }, x.reason.split("\n")[0].slice(0, 120))),
      node("td", {}, DEAD[x.state] || x.state, x.held ? ` (giữ ${x.held})` : ""),
      node("td", {}, canOperate() && (x.state === "holding" || x.state === "open")
        ? [act("Gửi lại", "/api/v1/dead-letters/replay", x.id), " ", act("Bỏ qua", "/api/v1/dead-letters/dismiss", x.id)] : null))))));
  }

  function renderFeedback(fb) {
    $("feedback-open").textContent = `${nf.format(fb.open)} chưa trả lời`;
    $("feedback").replaceChildren(...(fb.feedback.length ? fb.feedback.slice(0, 30).map(f => {
      const li = node("li", {}, node("b", {}, f.ref), " · ", name(f.agency), " · ", node("span", { class: "muted" }, dateTime(f.created_at)),
        node("div", {}, f.text));
      if (f.answer) li.append(node("div", { class: "answer" }, "Đã trả lời: " + f.answer));
      else if (canOperate()) {
        const ta = node("textarea", { placeholder: "Trả lời người dân (gửi qua Zalo)", maxLength: 2000 });
        li.append(node("form", { onsubmit: async ev => {
          ev.preventDefault();
          try { await api(`/api/v1/feedback/${encodeURIComponent(f.ref)}/answer`, { method: "POST", body: { text: ta.value } }); refresh(); }
          catch (e) { showError(e.message); }
        } }, ta, node("button", { class: "act", type: "submit" }, "Gửi")));
      }
      return li;
    }) : [node("li", { class: "muted" }, "Chưa có góp ý.")]));
    $("feedback-section").hidden = false;
  }

  // refresh reloads everything; a missing part (404: not configured) hides its section.
  async function refresh() {
    const q = query().toString();
    const jobs = [
      api("/api/v1/status").then(renderStatus),
      api("/api/v1/alerts").then(renderAlerts),
      api("/api/v1/dead-letters").then(renderDead),
    ];
    if (has.figures) jobs.push(
      api("/api/v1/figures?" + q).then(renderFigures).then(() => Promise.all([
        api("/api/v1/quality?" + q).then(renderQuality),
        api("/api/v1/figures/daily?" + q).then(x => renderDaily(x.days)),
      ])).catch(e => { if (e.status === 404) has.figures = false; else throw e; }));
    if (has.feedback) jobs.push(api("/api/v1/feedback").then(renderFeedback)
      .catch(e => { if (e.status === 404) has.feedback = false; else throw e; }));
    try {
      await Promise.all(jobs);
      showError("");
      $("updated").textContent = "Cập nhật lúc " + time(new Date());
      document.body.dataset.loaded = "1";
    } catch (e) { showError("Không tải được số liệu: " + e.message); }
  }

  let pending = null;
  const refreshSoon = () => { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 2000); };

  async function live() {
    const page = await api("/api/v1/events?limit=30");
    $("feed").replaceChildren(...page.events.map(e => eventLine(e, false)));
    const after = page.events.length ? page.events[0].seq : "";
    const es = new EventSource("/api/v1/events/stream" + (after !== "" ? "?after=" + after : ""));
    es.onopen = () => { $("live").textContent = "trực tiếp"; $("live").className = "badge on"; };
    es.onerror = () => { $("live").textContent = "mất kết nối, đang thử lại…"; $("live").className = "badge warn"; };
    es.addEventListener("event", m => {
      const e = JSON.parse(m.data), feed = $("feed");
      feed.prepend(eventLine(e, true));
      while (feed.children.length > 50) feed.lastChild.remove();
      refreshSoon();
    });
  }

  async function start() {
    session = await api("/api/v1/session");
    zone = session.zone || zone;
    const scope = session.agencies && session.agencies.length ? " · " + session.agencies.join(", ") : "";
    $("who").textContent = `${session.name} (${{ viewer: "xem", operator: "vận hành", admin: "quản trị" }[session.role] || session.role})${scope}`;
    for (const [v, label] of PERIODS) $("period").append(node("option", { value: v }, label));
    $("period").onchange = $("agency").onchange = refresh;
    await refresh();
    live().catch(e => showError("Không mở được luồng sự kiện: " + e.message));
    setInterval(refresh, 30000);
  }
  document.addEventListener("DOMContentLoaded", () => start().catch(e => showError(e.message)));
})();
