// The Schema view's deploy history: what each of the last deploys changed (tables,
// indexes with search and vector ones, function signatures), from `_convect_deploys`.
import { h, fmtTime } from "./dom.js";

function indexText(i) {
  const fields = i.fields || [i.searchField || i.vectorField, ...(i.filterFields || [])];
  const kind = i.kind === "index" ? "index" : `${i.kind} index`;
  const staged = i.staged ? " staged" : "";
  return `${kind} ${i.table}.${i.name} (${fields.join(", ")})${staged}`;
}

/** The change lines of one deploy: [mark, text] with mark one of + − ~. */
export function changeLines(c) {
  const out = [];
  for (const t of c.tablesAdded || []) out.push(["+", `table ${t}`]);
  for (const t of c.tablesRemoved || []) out.push(["−", `table ${t}`]);
  for (const t of c.tablesChanged || []) out.push(["~", `table ${t}: its fields`]);
  for (const i of c.indexesAdded || []) out.push(["+", indexText(i)]);
  for (const i of c.indexesRemoved || []) out.push(["−", indexText(i)]);
  for (const i of c.indexesChanged || []) {
    const was = i.before.fields || [i.before.searchField || i.before.vectorField, ...(i.before.filterFields || [])];
    out.push(["~", `${indexText(i)}, was (${was.join(", ")})${i.before.staged ? " staged" : ""}`]);
  }
  for (const f of c.functionsAdded || []) out.push(["+", `${f.visibility === "internal" ? "internal " : ""}${f.kind} ${f.path}`]);
  for (const f of c.functionsRemoved || []) out.push(["−", `${f.visibility === "internal" ? "internal " : ""}${f.kind} ${f.path}`]);
  for (const f of c.functionsChanged || []) out.push(["~", `${f.path}: its ${f.changed.join(" and ")}`]);
  return out;
}

const SHOWN_LINES = 6; // per deploy; a first deploy lists everything the app has

/** The "Recent deploys" card. */
export function deploysCard(deploys) {
  const card = h("div", { class: "card", id: "deploys" }, h("h3", {}, "Recent deploys"));
  if (!deploys || !deploys.length) {
    card.append(h("p", { class: "muted" }, "No deploy recorded yet (`convect deploy` and `convect dev` record them)."));
    return card;
  }
  for (const d of deploys) {
    const lines = changeLines(d.changes);
    const what = d.source === "dev" ? "convect dev" : "convect deploy";
    const list = h("ul", { class: "changes" }, ...lines.slice(0, SHOWN_LINES).map(([mark, text]) =>
      h("li", { class: mark === "+" ? "added" : mark === "−" ? "removed" : "changed" }, h("b", {}, mark), " ", text)));
    if (lines.length > SHOWN_LINES) {
      const more = h("li", { class: "muted" }, h("a", { href: "javascript:void 0" }, `${lines.length - SHOWN_LINES} more…`));
      more.addEventListener("click", () => {
        more.replaceWith(...lines.slice(SHOWN_LINES).map(([mark, text]) =>
          h("li", { class: mark === "+" ? "added" : mark === "−" ? "removed" : "changed" }, h("b", {}, mark), " ", text)));
      });
      list.append(more);
    }
    card.append(h("div", { class: "deploy", "data-deploy": d.id },
      h("div", {}, h("b", {}, fmtTime(d.deployedAt)), " ", h("span", { class: "pill" }, what),
        d.first ? h("span", { class: "muted" }, " first recorded deploy") : ""),
      lines.length ? list : h("p", { class: "muted" }, "No change to tables, indexes or function signatures.")));
  }
  return card;
}
