// DOM helpers for the dashboard: every string from the bus is set as text, never parsed as HTML.

const SVG = "http://www.w3.org/2000/svg";

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else if (key === "title") node.title = String(value);
    else if (key === "data") for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

export function num(x, digits = 3) {
  return x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

export function clock(ts) {
  return ts ? new Date(ts * 1000).toLocaleTimeString() : "–";
}

export function age(ts) {
  if (!ts) return "–";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 90) return `${s.toFixed(0)}s ago`;
  if (s < 5400) return `${(s / 60).toFixed(0)}m ago`;
  return `${(s / 3600).toFixed(1)}h ago`;
}

export function short(text, n) {
  const s = String(text ?? "");
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

export function paramsText(params) {
  const entries = Object.entries(params || {});
  return entries.length ? entries.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ") : "";
}

export function replaceChildren(node, children, emptyText, emptyTag = "p") {
  node.replaceChildren(...(children.length ? children : [el(emptyTag, { className: "empty", text: emptyText })]));
}
