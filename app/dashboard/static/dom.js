// Small DOM and formatting helpers of the dashboard.
import { convexToJson } from "./values.js";

/** An element with attributes (on* are listeners) and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== "") el.append(c instanceof Node ? c : String(c));
  return el;
}

/** Empty `el` and return it. */
export function clear(el) { el.replaceChildren(); return el; }

/** A time in ms since the epoch, local and readable. */
export function fmtTime(ms) {
  if (typeof ms !== "number") return "";
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false });
}

/** Bytes as B/KiB/MiB. */
export function fmtBytes(n) {
  if (typeof n === "bigint") n = Number(n);
  if (typeof n !== "number") return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A Convex value as compact JSON text (int64 and bytes in their wire form). */
export function jsonText(value) {
  if (value === undefined) return "";
  try { return JSON.stringify(convexToJson(value)); } catch { return String(value); }
}

/** Text typed in a filter box: JSON when it parses, else the text itself. */
export function parseJson(text) {
  try { return JSON.parse(text); } catch { return text; }
}
