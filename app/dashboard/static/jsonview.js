// A Convex value as JSON text in which document ids are links. `idPaths` (from the
// server) names where ids are: `author`, `refs[]` (array items), `meta.owner`, `byName{}`
// (record values); every other part stays plain text, so a document without ids costs
// what JSON.stringify costs.
import { h } from "./dom.js";
import { convexToJson } from "./values.js";

/** The id paths and every path that leads to one (which the renderer has to walk). */
export function idIndex(idPaths) {
  const leads = new Set();
  if (Object.keys(idPaths || {}).length) leads.add("");
  for (const p of Object.keys(idPaths || {})) {
    for (let i = 1; i < p.length; i++) if (p[i] === "." || p[i] === "[" || p[i] === "{") leads.add(p.slice(0, i));
    leads.add(p);
  }
  return { paths: idPaths || {}, leads };
}

/** A link to the document with id `id`. */
export function idLink(id, text = id) {
  return h("a", { class: "id", href: `#/doc/${encodeURIComponent(id)}` }, text);
}

function join(path, name) { return path ? `${path}.${name}` : name; }

/**
 * `value` (a Convex value at `path` of a document) as JSON nodes with its ids linked;
 * `indent` > 0 lays it out over lines like JSON.stringify(value, null, indent).
 */
export function linkedJson(value, index, path = "", indent = 0) {
  const out = [];
  const walk = (json, at, depth) => {
    if (typeof json === "string" && index.paths[at] !== undefined) { out.push(idLink(json, JSON.stringify(json))); return; }
    const pad = indent ? "\n" + " ".repeat(indent * depth) : "";
    if (!index.leads.has(at) || json === null || typeof json !== "object") {
      const text = JSON.stringify(json, null, indent || undefined);
      out.push(pad ? text.replaceAll("\n", pad) : text);
      return;
    }
    const inner = indent ? "\n" + " ".repeat(indent * (depth + 1)) : "";
    const sep = indent ? "," : ", ";
    if (Array.isArray(json)) {
      out.push("[");
      json.forEach((item, i) => { out.push((i ? sep : "") + inner); walk(item, at + "[]", depth + 1); });
      out.push((json.length ? pad : "") + "]");
      return;
    }
    const record = index.leads.has(at + "{}");
    const keys = Object.keys(json);
    out.push("{");
    keys.forEach((k, i) => {
      out.push(`${i ? sep : ""}${inner}${JSON.stringify(k)}: `);
      walk(json[k], record ? at + "{}" : join(at, k), depth + 1);
    });
    out.push((keys.length ? pad : "") + "}");
  };
  walk(convexToJson(value), path, 0);
  // Adjacent strings as one text node.
  const nodes = [];
  for (const part of out) {
    if (typeof part === "string" && typeof nodes[nodes.length - 1] === "string") nodes[nodes.length - 1] += part;
    else nodes.push(part);
  }
  return nodes;
}
