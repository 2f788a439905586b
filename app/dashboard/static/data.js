// The data view: tables with counts; a table page by page, live, sorted by an index,
// narrowed by an index range and field filters; ids linked wherever the schema (or, with
// none, the values) puts them; the document editor and a document's own page.
import { h, clear, fmtTime, jsonText, parseJson } from "./dom.js";
import { idIndex, idLink, linkedJson } from "./jsonview.js";
import { convexToJson, jsonToConvex } from "./values.js";

/** An error from the client as a person reads it: a ConvexError's data, else the message. */
export function errorText(e) {
  if (typeof e.data === "string") return e.data;
  if (e.data !== undefined) return JSON.stringify(convexToJson(e.data));
  return e.message.replace(/^\[CONVEX [^\]]*\]\s*/, "");
}

function cellValue(value, field, index) {
  if (field === "_creationTime") return h("td", {}, fmtTime(value));
  if (typeof value === "string" && (field === "_id" || index.paths[field] !== undefined)) return h("td", {}, idLink(value));
  if (value !== undefined && index.leads.has(field)) {
    return h("td", { class: "json", title: jsonText(value) }, ...linkedJson(value, index, field));
  }
  return h("td", { class: "json", title: jsonText(value) }, jsonText(value));
}

// Convex's order of values: undefined < null < int64 < float64 < boolean < string < bytes < array < object.
function rank(x) {
  if (x === undefined) return 0;
  if (x === null) return 1;
  if (typeof x === "bigint") return 2;
  if (typeof x === "number") return 3;
  if (typeof x === "boolean") return 4;
  if (typeof x === "string") return 5;
  if (x instanceof ArrayBuffer) return 6;
  return Array.isArray(x) ? 7 : 8;
}

/** Compare two Convex values in Convex's order (arrays and objects by their JSON text). */
export function compareValues(a, b) {
  const ra = rank(a), rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra <= 1) return 0;
  if (ra >= 6) { const x = jsonText(a), y = jsonText(b); return x < y ? -1 : x > y ? 1 : 0; }
  return a < b ? -1 : a > b ? 1 : 0;
}

function conditionRows(box, ops, onChange) {
  const rows = [];
  const list = h("div", {});
  const add = () => {
    const field = h("input", { placeholder: "field", size: 10 });
    const op = h("select", {}, ...ops.map((o) => h("option", { value: o }, o)));
    const value = h("input", { placeholder: "value (JSON or text)", size: 14 });
    const row = h("span", { class: "bar" }, field, op, value,
      h("button", { onclick: () => { rows.splice(rows.indexOf(cond), 1); row.remove(); onChange(); } }, "×"));
    const cond = { field, op, value };
    rows.push(cond);
    for (const el of [field, op, value]) el.addEventListener("change", onChange);
    list.append(row);
  };
  box.append(list);
  return {
    add,
    values: () => rows.filter((c) => c.field.value).map((c) => ({
      field: c.field.value, op: c.op.value, value: jsonToConvex(parseJson(c.value.value)),
    })),
  };
}

export function dataView(main, [table], ctx) {
  const side = h("div", { class: "side" }, h("h3", {}, "Tables"));
  const content = h("div", { class: "content" });
  main.append(h("div", { class: "cols" }, side, content));
  const list = h("div", {});
  side.append(list);
  const counts = {};
  ctx.every(5000, async () => {
    const tables = await ctx.action("tables");
    for (const t of tables) counts[t.name] = t;
    clear(list).append(...tables.map((t) => h("a", {
      href: `#/data/${encodeURIComponent(t.name)}`, class: t.name === table ? "active" : "",
      "data-table": t.name,
    }, h("span", {}, t.name), h("span", { class: "muted count" }, (t.estimated ? "~" : "") + String(t.count)))));
    if (!tables.length) list.append(h("p", { class: "muted" }, "No tables yet."));
  });
  if (!table) { content.append(h("p", { class: "muted" }, "Choose a table.")); return; }
  browseTable(content, table, ctx, counts);
}

/**
 * The index that returns the table sorted by `field`: one whose first field it is, or the
 * chosen index when the range fixes (eq) every field before it.
 */
function indexFor(field, indexes, current, ranges) {
  if (field === "_creationTime") return { name: "" };
  const chosen = indexes.find((i) => i.name === current);
  if (chosen) {
    const k = chosen.fields.indexOf(field);
    const fixed = (f) => ranges.some((c) => c.field === f && c.op === "eq");
    if (k >= 0 && chosen.fields.slice(0, k).every(fixed)) return chosen;
  }
  return indexes.find((i) => i.fields[0] === field) || null;
}

function browseTable(content, table, ctx, counts) {
  const state = {
    cursors: [null], page: 0, pageSize: 25, unsub: null, previous: new Map(),
    indexes: [], fields: [], result: null,
  };
  const index = h("select", { id: "data-index" }, h("option", { value: "" }, "by_creation_time"));
  const sortField = h("select", { id: "sort-field" }, h("option", { value: "_creationTime" }, "_creationTime"));
  const order = h("select", { id: "sort-order" }, h("option", { value: "desc" }, "descending"), h("option", { value: "asc" }, "ascending"));
  const sortNote = h("span", { id: "sort-note", class: "muted" });
  const rangeBox = h("div", { class: "bar" }, h("span", { class: "muted" }, "Index range:"));
  const filterBox = h("div", { class: "bar" }, h("span", { class: "muted" }, "Filters:"));
  const status = h("span", { class: "muted" });
  const grid = h("div", { class: "grid" });
  const refresh = () => { state.cursors = [null]; state.page = 0; subscribe(); };
  const range = conditionRows(rangeBox, ["eq", "gt", "gte", "lt", "lte"], () => { pickIndexForSort(); refresh(); });
  const filters = conditionRows(filterBox, ["eq", "neq", "gt", "gte", "lt", "lte"], refresh);
  rangeBox.append(h("button", { onclick: range.add }, "+ range"));
  filterBox.append(h("button", { onclick: filters.add }, "+ filter"));

  /** The sort field's index, if any: chosen in the index box, or the note says why not. */
  function pickIndexForSort() {
    const field = sortField.value;
    const found = indexFor(field, state.indexes, index.value, range.values());
    if (found) {
      index.value = found.name;
      sortNote.className = "muted";
      sortNote.textContent = found.name ? `sorted by ${field} through index ${found.name}` : "sorted by creation time";
      state.pageOnly = false;
      return;
    }
    const known = counts[table];
    const size = known ? `${known.estimated ? "about " : ""}${known.count} documents` : "every document";
    sortNote.className = "warn";
    sortNote.textContent = `No index starts with ${field}: sorting the whole table by it would be a full scan ` +
      `(${size}), so only this page is sorted. To sort the table, add .index("by_${field}", ["${field}"]) ` +
      `to its define_table in schema.py.`;
    state.pageOnly = true;
  }
  sortField.addEventListener("change", () => { pickIndexForSort(); refresh(); });
  index.addEventListener("change", () => {
    const chosen = state.indexes.find((i) => i.name === index.value);
    const field = chosen ? chosen.fields[0] : "_creationTime";
    if (![...sortField.options].some((o) => o.value === field)) sortField.append(h("option", { value: field }, field));
    sortField.value = field;
    pickIndexForSort();
    refresh();
  });
  order.addEventListener("change", refresh);
  const selection = () => ({
    table, order: order.value,
    ...(index.value ? { index: index.value, range: range.values() } : {}),
    filters: filters.values(),
  });
  const prev = h("button", { onclick: () => { if (state.page > 0) { state.page--; subscribe(); } } }, "‹ Prev");
  const next = h("button", { onclick: () => { if (state.cursors[state.page + 1] !== undefined) { state.page++; subscribe(); } } }, "Next ›");
  content.append(
    h("h2", {}, table),
    h("div", { class: "bar" }, "Sort by", sortField, order, "Index", index,
      h("button", { class: "primary", onclick: () => editDocument(ctx, table, null) }, "Add document"),
      h("button", { class: "danger", id: "bulk-delete", onclick: bulkDelete }, "Delete all matching")),
    h("div", { class: "bar" }, sortNote),
    rangeBox, filterBox, h("div", { class: "bar" }, prev, next, status), grid);
  ctx.query("table", { table }).then((t) => {
    state.indexes = t.indexes;
    for (const i of t.indexes) index.append(h("option", { value: i.name }, `${i.name} (${i.fields.join(", ")})`));
    addFields(t.fields);
  });

  function addFields(fields) {
    for (const f of fields) {
      if (f.startsWith("_") || state.fields.includes(f)) continue;
      state.fields.push(f);
      sortField.append(h("option", { value: f }, f));
    }
  }

  async function bulkDelete() {
    if (!confirm(`Delete every document of ${table} that the current filters select?`)) return;
    let total = 0;
    for (;;) {
      const r = await ctx.mutation("remove_matching", selection());
      total += r.deleted;
      status.textContent = `deleted ${total}…`;
      if (r.done) break;
    }
    status.textContent = `deleted ${total}`;
  }

  function subscribe() {
    if (state.unsub) state.unsub();
    const args = { ...selection(), paginationOpts: { numItems: state.pageSize, cursor: state.cursors[state.page] } };
    state.unsub = ctx.watch("page", args, render, (e) => { clear(grid).append(h("p", { class: "error" }, errorText(e))); });
  }

  function sortHeader(c) {
    const th = h("th", { class: "sortable", "data-field": c, title: `sort by ${c}` }, c);
    if (c === sortField.value) th.append(order.value === "asc" ? " ▲" : " ▼");
    th.addEventListener("click", () => {
      if (c === "_id") return;
      if (sortField.value === c) order.value = order.value === "asc" ? "desc" : "asc";
      else {
        if (![...sortField.options].some((o) => o.value === c)) sortField.append(h("option", { value: c }, c));
        sortField.value = c;
        pickIndexForSort();
      }
      refresh();
    });
    return th;
  }

  function render(result) {
    state.cursors[state.page + 1] = result.isDone ? undefined : result.continueCursor;
    prev.disabled = state.page === 0;
    next.disabled = result.isDone;
    status.textContent = `page ${state.page + 1} · ${result.page.length} documents`;
    const fields = new Set(["_id"]);
    for (const d of result.page) for (const k of Object.keys(d)) if (k !== "_creationTime") fields.add(k);
    fields.add("_creationTime");
    addFields([...fields]);
    const cols = [...fields];
    let docs = result.page;
    if (state.pageOnly && state.page === 0 && result.isDone) {
      sortNote.textContent = `No index starts with ${sortField.value}, but the whole table fits on this page, ` +
        `so it is sorted here. A larger table would need .index("by_${sortField.value}", ["${sortField.value}"]) ` +
        `in schema.py (without it, a sort is a full scan).`;
    }
    if (state.pageOnly) {
      const f = sortField.value;
      const sign = order.value === "asc" ? 1 : -1;
      docs = [...docs].sort((a, b) => sign * compareValues(a[f], b[f]));
    }
    const ids = idIndex(result.idPaths);
    const seen = new Map();
    const rows = docs.map((d) => {
      const text = jsonText(d);
      seen.set(d._id, text);
      const old = state.previous.get(d._id);
      return h("tr", { class: old !== undefined && old !== text ? "changed" : "", "data-id": d._id },
        ...cols.map((c) => cellValue(d[c], c, ids)),
        h("td", {},
          h("button", { onclick: () => editDocument(ctx, table, d) }, "Edit"), " ",
          h("button", { class: "danger", onclick: async () => {
            if (confirm(`Delete ${d._id}?`)) await ctx.mutation("remove", { ids: [d._id] });
          } }, "Delete")));
    });
    state.previous = seen;
    clear(grid).append(h("table", {}, h("thead", {}, h("tr", {}, ...cols.map(sortHeader), h("th", {}, ""))),
      h("tbody", {}, ...rows)));
  }
  pickIndexForSort();
  subscribe();
  ctx.onLeave = () => state.unsub && state.unsub();
}

/** The document editor: JSON checked as you type, the schema checked by the server. */
export function editDocument(ctx, table, doc) {
  const fields = {};
  for (const [k, val] of Object.entries(doc || {})) if (!k.startsWith("_")) fields[k] = val;
  const area = h("textarea", { id: "doc-editor" });
  area.value = JSON.stringify(convexToJson(fields), null, 2);
  const problem = h("p", { class: "error", id: "doc-error" });
  const save = h("button", { class: "primary", id: "doc-save" }, doc ? "Save" : "Insert");
  const dialog = h("dialog", {},
    h("h3", {}, doc ? `Edit ${doc._id}` : `New document in ${table}`), area, problem,
    h("div", { class: "bar" }, save, h("button", { onclick: () => dialog.close() }, "Cancel")));
  area.addEventListener("input", () => {
    try { JSON.parse(area.value); problem.textContent = ""; } catch (e) { problem.textContent = e.message; }
  });
  save.addEventListener("click", async () => {
    let value;
    try { value = jsonToConvex(JSON.parse(area.value)); } catch (e) { problem.textContent = e.message; return; }
    try {
      if (doc) await ctx.mutation("replace", { id: doc._id, document: value });
      else await ctx.mutation("insert", { table, document: value });
      dialog.close();
      dialog.remove();
    } catch (e) { problem.textContent = errorText(e); }
  });
  document.body.append(dialog);
  dialog.showModal();
}

export function documentView(main, [id], ctx) {
  const box = h("div", { class: "card" });
  main.append(h("h2", {}, "Document"), box);
  ctx.watch("document", { id }, (r) => {
    clear(box);
    if (!r) { box.append(h("p", { class: "muted" }, `No document ${id}`)); return; }
    box.append(h("p", {}, "Table ", h("a", { href: `#/data/${r.table}` }, r.table)),
      h("pre", { id: "doc-json" }, ...linkedJson(r.document, idIndex(r.idPaths), "", 2)),
      r.table.startsWith("_") ? "" : h("button", { onclick: () => editDocument(ctx, r.table, r.document) }, "Edit"));
  });
}
