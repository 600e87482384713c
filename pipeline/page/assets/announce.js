// The page's announcements section (pipeline/announce): reach, failures and cost
// per agency, the approval queue of the person logged in, a draft form with a
// preview of exactly what citizens will see, and the list with its steps. The
// regulation decides every step; the page only shows the API's refusals.
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const nf = new Intl.NumberFormat("vi-VN");
  let csrf = "", zone = "Asia/Ho_Chi_Minh";
  const STATE = { draft: "Nháp", submitted: "Chờ duyệt", approved: "Đã duyệt", rejected: "Bị trả lại", scheduled: "Đã lên lịch",
    sending: "Đang gửi", sent: "Đã gửi", cancelled: "Đã huỷ" };

  function node(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) { if (k === "class") e.className = v; else e[k] = v; }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function say(msg, bad) { const e = $("announce-msg"); e.textContent = msg; e.className = bad ? "error" : "muted"; }
  async function api(path, opts) {
    opts = opts || {};
    const headers = { Accept: "application/json" };
    if (opts.body !== undefined) { headers["Content-Type"] = "application/json"; headers["X-CSRF-Token"] = csrf; }
    const r = await fetch(path, { method: opts.method || "GET", headers, credentials: "same-origin",
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { const e = new Error(data.error || r.statusText); e.status = r.status; throw e; }
    return data;
  }
  const when = t => new Intl.DateTimeFormat("vi-VN", { timeZone: zone, dateStyle: "short", timeStyle: "short" }).format(new Date(t));
  const num = v => node("td", { class: "num" }, nf.format(v || 0));

  function draft() {
    const f = $("announce-form").elements;
    const places = f.places.value.split(";").map(s => s.trim()).filter(Boolean);
    return { agency: f.agency.value.trim(), title: f.title.value,
      content: { text: f.text.value, link: f.link.value.trim(), image: f.image.value.trim() },
      segment: { kind: f.kind.value, places, topic: f.topic.value.trim(), agency: f.of.value.trim() },
      send_at: f.send_at.value ? new Date(f.send_at.value).toISOString() : "" };
  }

  function showPreview(p) {
    $("announce-preview").textContent = p.text;
    $("announce-counts").replaceChildren(node("table", {}, node("tbody", {},
      node("tr", {}, node("th", {}, "Người nhận"), num(p.recipients)),
      node("tr", {}, node("th", {}, "OA trong hạn mức miễn phí"), num(p.oa_free)),
      node("tr", {}, node("th", {}, "OA trả phí"), num(p.oa_paid)),
      node("tr", {}, node("th", {}, "ZNS theo số điện thoại"), num(p.zns)),
      node("tr", {}, node("th", {}, "Không liên lạc được"), num(p.unreachable)),
      node("tr", {}, node("th", {}, "Đã từ chối nhận (HUY TIN)"), num(p.opted_out)),
      node("tr", {}, node("th", {}, "Chi phí (đồng)"), num(p.cost)),
      node("tr", {}, node("th", {}, "Hạn mức ngày / tháng đã dùng"), node("td", { class: "num" },
        `${nf.format(p.daily_used)}/${nf.format(p.daily_cap)} · ${nf.format(p.month_used)}/${nf.format(p.monthly_cap)}`)))),
      ...(p.problems || []).map(x => node("p", { class: "error" }, x)));
  }

  async function step(id, name, reason) {
    try { await api(`/api/v1/announcements/${id}/${name}`, { method: "POST", body: { reason: reason || "" } }); say(`Thông báo ${id}: ${name} xong.`); refresh(); }
    catch (e) { say(e.message, true); }
  }
  const act = (label, f) => node("button", { class: "act", type: "button", onclick: f }, label);

  async function refresh() {
    const [rep, queue, list] = await Promise.all([api("/api/v1/announcements/report"), api("/api/v1/announcements/queue"), api("/api/v1/announcements")]);
    $("announce-report").replaceChildren(node("table", {},
      node("thead", {}, node("tr", {}, ...["Đơn vị", "Số thông báo", "Chờ duyệt", "Người nhận", "Đã gửi", "Lỗi", "Không liên lạc được", "Từ chối nhận", "Chi phí (đ)"].map(h => node("th", {}, h)))),
      node("tbody", {}, ...rep.agencies.map(r => node("tr", {}, node("td", {}, r.name || r.agency), num(r.announcements), num(r.waiting_approval),
        num(r.recipients), num(r.sent), num(r.failed), num(r.unreachable), num(r.opted_out), num(r.cost))))));
    $("announce-queue-count").textContent = nf.format(queue.announcements.length);
    $("announce-queue").replaceChildren(...(queue.announcements.length ? queue.announcements.map(a => {
      const reason = node("input", { placeholder: "Lý do trả lại" });
      return node("li", {}, node("b", {}, `#${a.id} ${a.title}`), ` · ${a.agency} · ${a.author} · gửi lúc ${when(a.send_at)} `,
        act("Xem trước", async () => { try { showPreview(await api(`/api/v1/announcements/${a.id}/preview`)); } catch (e) { say(e.message, true); } }), " ",
        act("Duyệt", () => step(a.id, "approve")), " ", reason, act("Trả lại", () => step(a.id, "reject", reason.value)));
    }) : [node("li", { class: "muted" }, "Không có thông báo nào chờ bạn duyệt.")]));
    $("announce-list").replaceChildren(node("table", {},
      node("thead", {}, node("tr", {}, ...["#", "Đơn vị", "Tiêu đề", "Trạng thái", "Gửi lúc", "Người nhận", "Đã gửi", "Lỗi", "Chi phí", ""].map(h => node("th", {}, h)))),
      node("tbody", {}, ...list.announcements.slice(0, 50).map(a => node("tr", {}, node("td", {}, a.id), node("td", {}, a.agency), node("td", {}, a.title),
        node("td", {}, STATE[a.state] || a.state, a.reason ? node("div", { class: "muted" }, a.reason) : null), node("td", {}, when(a.send_at)),
        num(a.recipients), num(a.sent), num(a.failed), num(a.cost),
        node("td", {}, a.state === "draft" ? act("Gửi duyệt", () => step(a.id, "submit")) : null,
          a.state === "approved" ? act("Lên lịch gửi", () => step(a.id, "schedule")) : null,
          ["sent", "cancelled"].includes(a.state) ? null : act("Huỷ", () => step(a.id, "cancel"))))))));
    $("announce-section").hidden = false;
  }

  async function start() {
    const s = await api("/api/v1/session");
    csrf = s.csrf_token || ""; zone = s.zone || zone;
    $("announce-form").onsubmit = async ev => {
      ev.preventDefault();
      try {
        if (ev.submitter && ev.submitter.name === "preview") { showPreview(await api("/api/v1/announcements/preview", { method: "POST", body: draft() })); say(""); return; }
        const r = await api("/api/v1/announcements", { method: "POST", body: draft() });
        say(`Đã lưu nháp #${r.id}; bấm "Gửi duyệt" trong danh sách.`); refresh();
      } catch (e) { say(e.message, true); }
    };
    await refresh();
    setInterval(() => refresh().catch(() => {}), 30000);
  }
  // Without announcements (404) the section stays hidden.
  document.addEventListener("DOMContentLoaded", () => start().catch(e => { if (e.status !== 404) say(e.message, true); }));
})();
