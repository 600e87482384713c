// Small SVG charts drawn by hand: horizontal bars and a line. No library, no
// network: the page works offline and under a strict Content-Security-Policy.
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function empty(host, msg) {
    const svg = el("svg", { viewBox: "0 0 600 40", role: "img" });
    svg.appendChild(el("text", { x: 0, y: 24, class: "empty" }, msg || "Chưa có số liệu"));
    host.replaceChildren(svg);
    host.dataset.ready = "1";
  }
  // hbars draws one bar per row: {label, value, text?, cls?}; max is the scale
  // (default the largest value).
  function hbars(host, rows, opts) {
    opts = opts || {};
    if (!rows.length) return empty(host);
    // Drawn at the host's own width, so that text keeps its size on any screen.
    const W = Math.max(280, host.clientWidth || 600), rowH = 26, valueW = 64;
    const labelW = Math.min(Math.round(W * 0.45), Math.max(...rows.map(r => r.label.length)) * 7 + 8);
    const maxChars = Math.floor(labelW / 6.5);
    const max = opts.max || Math.max(1, ...rows.map(r => r.value));
    const svg = el("svg", { viewBox: `0 0 ${W} ${rows.length * rowH + 4}`, role: "img", "aria-label": opts.title || "" });
    rows.forEach((r, i) => {
      const y = i * rowH + 2, barW = Math.max(0, (W - labelW - valueW) * r.value / max);
      const label = el("text", { x: 0, y: y + 17 }, r.label.length > maxChars ? r.label.slice(0, maxChars - 1) + "…" : r.label);
      label.appendChild(el("title", {}, r.label));
      svg.appendChild(label);
      svg.appendChild(el("rect", { x: labelW, y: y + 4, width: barW.toFixed(1), height: rowH - 8, rx: 2, class: "bar " + (r.cls || "") }));
      svg.appendChild(el("text", { x: labelW + barW + 6, y: y + 17, class: "value", "data-label": r.label }, r.text !== undefined ? r.text : String(r.value)));
    });
    host.replaceChildren(svg);
    host.dataset.ready = "1";
  }
  // line draws points {label, value} in order, with the first, middle and last
  // labels under the axis and each value on hover.
  function line(host, points, opts) {
    opts = opts || {};
    if (!points.length) return empty(host);
    const W = Math.max(280, host.clientWidth || 600), H = 200, L = 36, B = 24, T = 10, R = 16;
    const max = Math.max(1, ...points.map(p => p.value));
    const x = i => L + (points.length === 1 ? (W - L - R) / 2 : i * (W - L - R) / (points.length - 1));
    const y = v => T + (H - T - B) * (1 - v / max);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.title || "" });
    svg.appendChild(el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
    svg.appendChild(el("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
    svg.appendChild(el("text", { x: L - 4, y: T + 10, "text-anchor": "end" }, String(max)));
    svg.appendChild(el("text", { x: L - 4, y: H - B, "text-anchor": "end" }, "0"));
    svg.appendChild(el("polyline", { class: "lineplot", points: points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ") }));
    points.forEach((p, i) => {
      const dot = el("circle", { cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 3, class: "dot", "data-label": p.label, "data-value": p.value });
      dot.appendChild(el("title", {}, `${p.label}: ${p.value}`));
      svg.appendChild(dot);
    });
    const marks = [...new Set([0, Math.floor((points.length - 1) / 2), points.length - 1])];
    for (const i of marks) svg.appendChild(el("text", { x: x(i), y: H - 6, "text-anchor": "middle" }, points[i].label));
    host.replaceChildren(svg);
    host.dataset.ready = "1";
  }
  return { hbars, line, empty };
})();
