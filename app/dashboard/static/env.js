// The environment-variables view: list, set, remove; values hidden until asked. Reads
// through `_system/cli/queryEnvironmentVariables` and writes through
// `/api/update_environment_variables`, the contract `npx convex env` uses.
import { h, clear } from "./dom.js";


export function envView(main, _rest, ctx) {
  const name = h("input", { placeholder: "NAME", id: "env-name" });
  const value = h("input", { placeholder: "value", id: "env-value", type: "password" });
  const problem = h("p", { class: "error", id: "env-error" });
  const list = h("div", { id: "env-list" });
  const update = async (changes) => {
    problem.textContent = "";
    const r = await ctx.fetch("/api/update_environment_variables", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ changes }),
    });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      problem.textContent = body.message || body.errorMessage || `Refused (${r.status})`;
      return false;
    }
    return true;
  };
  const save = h("button", { class: "primary", id: "env-save", onclick: async () => {
    if (await update([{ name: name.value.trim(), value: value.value }])) { name.value = ""; value.value = ""; }
  } }, "Set");
  main.append(h("h2", {}, "Environment variables"),
    h("p", { class: "muted" }, "Read by functions as os.environ; changes apply to the next call."),
    h("div", { class: "bar" }, name, value, save), problem, list);
  ctx.watch("_system/cli/queryEnvironmentVariables:default", {}, (vars) => {
    clear(list).append(h("table", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Value"), h("th", {}, "")),
      ...vars.map((v) => {
        const cell = h("td", { class: "json" }, "••••••••");
        let shown = false;
        return h("tr", { "data-name": v.name }, h("td", {}, v.name), cell,
          h("td", {},
            h("button", { onclick: (e) => { shown = !shown; cell.textContent = shown ? v.value : "••••••••"; e.target.textContent = shown ? "Hide" : "Show"; } }, "Show"), " ",
            h("button", { class: "danger", onclick: () => confirm(`Remove ${v.name}?`) && update([{ name: v.name }]) }, "Remove")));
      })));
    if (!vars.length) list.append(h("p", { class: "muted" }, "No environment variables."));
  }, (e) => { clear(list).append(h("p", { class: "error" }, e.message)); });
}
