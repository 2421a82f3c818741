// One task's PGR over time as inline SVG: each accepted dev score a dot, the best so far a line,
// and the verified best's 95% interval a band.

import { clock, el, num, svg } from "./dom.js";

export function chart(task, rows, board) {
  const W = 640, H = 200, P = { l: 44, r: 12, t: 12, b: 26 };
  const points = rows.filter((r) => r.status === "accepted" && Number.isFinite(r.pgr)).sort((a, b) => a.ts - b.ts);
  const best = board && board.best ? board.standings.find((s) => s.config_key === board.best) : null;
  const ys = points.map((p) => p.pgr).concat([0, 1]);
  if (best && best.final_ci) ys.push(...best.final_ci);
  const y0 = Math.max(-2, Math.min(...ys)), y1 = Math.min(3, Math.max(...ys));
  const t0 = points.length ? points[0].ts : 0, t1 = points.length ? points[points.length - 1].ts : 1;
  const x = (t) => P.l + (t1 > t0 ? ((t - t0) / (t1 - t0)) * (W - P.l - P.r) : (W - P.l - P.r) / 2);
  const y = (v) => P.t + (1 - (Math.min(y1, Math.max(y0, v)) - y0) / (y1 - y0 || 1)) * (H - P.t - P.b);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  root.dataset.task = task;
  for (const v of [0, 1]) {
    root.append(svg("line", { x1: P.l, x2: W - P.r, y1: y(v), y2: y(v), class: "ref" }));
    const label = svg("text", { x: P.l - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" });
    label.textContent = `PGR ${v}`;
    root.append(label);
  }
  if (best && best.final_ci) {
    root.append(svg("rect", { x: P.l, width: W - P.l - P.r, y: y(best.final_ci[1]), height: Math.max(1, y(best.final_ci[0]) - y(best.final_ci[1])), class: "band" }));
  }
  let top = -Infinity, path = "";
  for (const p of points) {
    top = Math.max(top, p.pgr);
    path += `${path ? "L" : "M"}${x(p.ts).toFixed(1)},${y(top).toFixed(1)} `;
  }
  if (path) root.append(svg("path", { d: path, class: "best-line" }));
  for (const p of points) {
    const dot = svg("circle", { cx: x(p.ts), cy: y(p.pgr), r: 3.5, class: p.flags.length ? "dot flagged" : "dot" });
    dot.dataset.scoreId = p.id;
    const tip = svg("title");
    tip.textContent = `${p.method} seed ${p.seed}: dev PGR ${num(p.pgr)} (${clock(p.ts)})`;
    dot.append(tip);
    root.append(dot);
  }
  const caption = el("figcaption", {}, el("strong", { text: task }), ` · ${points.length} dev scores; line: best so far; band: verified best's 95% interval`);
  return el("figure", { className: "chart-box", data: { task } }, caption, root);
}
