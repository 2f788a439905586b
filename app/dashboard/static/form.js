// The args form of a function, generated from the JSON Schema of its args validator
// (app/values/jsonschema.py): one input per field, typed by the field's schema.
import { h } from "./dom.js";

import { jsonToConvex } from "./values.js";

function kindOf(schema) {
  const t = schema["x-convex-type"];
  if (t === "int64" || t === "float64" || t === "bytes") return t;
  if (schema["x-convex-table"]) return "id";
  if (schema.const !== undefined) return "const";
  if (schema.type === "string" || schema.type === "boolean") return schema.type;
  if (schema.anyOf && schema.anyOf.every((s) => s.const !== undefined)) return "enum";
  return "json";
}

function input(name, schema) {
  const kind = kindOf(schema);
  const attrs = { name, "data-arg": name };
  let el;
  if (kind === "boolean") el = h("input", { ...attrs, type: "checkbox" });
  else if (kind === "enum") el = h("select", attrs, ...schema.anyOf.map((s) => h("option", { value: JSON.stringify(s.const) }, JSON.stringify(s.const))));
  else if (kind === "json") el = h("textarea", { ...attrs, rows: 3, placeholder: "JSON" });
  else el = h("input", { ...attrs, type: kind === "float64" ? "number" : "text", step: "any",
    placeholder: kind === "id" ? `Id in ${schema["x-convex-table"]}` : kind === "int64" ? "integer" : "" });
  if (kind === "const") { el.value = JSON.stringify(schema.const); el.disabled = true; }
  const read = () => {
    if (kind === "boolean") return el.checked;
    if (el.value === "") return undefined;
    if (kind === "string" || kind === "id") return el.value;
    if (kind === "float64") return Number(el.value);
    if (kind === "int64") return BigInt(el.value);
    if (kind === "bytes") return jsonToConvex({ $bytes: el.value });
    try { return jsonToConvex(JSON.parse(el.value)); } catch (e) { throw new Error(`${name}: ${e.message}`); }
  };
  return { el, kind, read };
}

/** A form for `schema` (an object schema, or any object): `{element, value()}`. */
export function argsForm(schema) {
  const props = schema.properties;
  if (!props) {
    const raw = input("args", {});
    raw.el.value = "{}";
    return { element: h("div", { class: "field" }, h("label", {}, "args (JSON object)"), raw.el), value: () => raw.read() || {} };
  }
  const required = new Set(schema.required || []);
  const fields = Object.entries(props).map(([name, s]) => ({ name, ...input(name, s) }));
  const element = h("div", {}, ...fields.map((f) => h("div", { class: "field" },
    h("label", {}, f.name, required.has(f.name) ? " *" : " (optional)", h("span", { class: "muted" }, ` ${f.kind}`)), f.el)));
  if (!fields.length) element.append(h("p", { class: "muted" }, "No arguments."));
  return {
    element,
    value() {
      const out = {};
      for (const f of fields) {
        const v = f.read();
        if (v === undefined) {
          if (required.has(f.name)) throw new Error(`${f.name} is required`);
        } else out[f.name] = v;
      }
      return out;
    },
  };
}
