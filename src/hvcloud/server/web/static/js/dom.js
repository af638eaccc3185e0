// DOM building without innerHTML: every value from the API lands as text, never as markup.

/** h("div", {class: "x", onclick: fn}, child, "text", [more]) → an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value" && "value" in el) el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function bytes(n) {
  let value = Number(n) || 0;
  let i = 0;
  while (value >= 1024 && i < UNITS.length - 1) { value /= 1024; i++; }
  return `${value.toFixed(i && value < 10 ? 1 : 0)} ${UNITS[i]}`;
}

export function when(text) {
  if (!text) return "";
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? String(text) : d.toLocaleString();
}

const GOOD = new Set(["running", "up", "ready", "enabled", "allocated", "implemented", "active", "setup",
                      "success", "true", "succeeded"]);
const BAD = new Set(["error", "down", "alert", "disconnected", "failed", "expunging", "destroyed", "disabled",
                     "false", "maintenance", "errorinmaintenance"]);

/** A coloured state label (text is the state itself, so it reads without colour too). */
export function badge(state) {
  const s = String(state ?? "");
  const kind = GOOD.has(s.toLowerCase()) ? "good" : BAD.has(s.toLowerCase()) ? "bad" : "neutral";
  return h("span", {class: `badge ${kind}`}, s || "–");
}
