// The Convect dashboard: one page, a view per hash route, every data view a live query
// of an admin-only system function (`_system/dashboard:*`) through the official client.
import { h, clear, fmtTime, fmtBytes, jsonText } from "./dom.js";
import { dataView, documentView } from "./data.js";
import { argsForm } from "./form.js";
import { logsView } from "./logs.js";
import { healthView } from "./health.js";
import { envView } from "./env.js";
import { deploysCard } from "./deploys.js";
import { convexToJson } from "./values.js";

if (!window.convex) {
  document.body.textContent = "The dashboard's copy of the convex client (vendor/convex.js) is missing: run `make setup`.";
  throw new Error("vendor/convex.js is missing");
}
const { ConvexClient } = window.convex; // the official client (takes a function's path as is)
const KEY = "convect-admin-key";
const sys = (name) => "_system/dashboard:" + name;

const ctx = { key: null, client: null, subs: [], timers: [] };

/** Calls through the official client, with the admin key. */
ctx.watch = (name, args, onValue, onError) => {
  const ref = name.includes(":") ? name : sys(name);
  const stop = ctx.client.onUpdate(ref, args, onValue, onError || ((e) => console.error(e)));
  let live = true;
  const unsub = () => {  // safe to call twice: a view's own stop, then the route's
    if (!live) return;
    live = false;
    ctx.subs.splice(ctx.subs.indexOf(unsub), 1);
    stop();
  };
  ctx.subs.push(unsub);
  return unsub;
};
ctx.query = (name, args = {}) => ctx.client.query(sys(name), args);
ctx.mutation = (name, args = {}) => ctx.client.mutation(sys(name), args);
ctx.action = (name, args = {}) => ctx.client.action(sys(name), args);
/** A fetch with the admin key. */
ctx.fetch = (url, init = {}) =>
  fetch(url, { ...init, headers: { ...(init.headers || {}), Authorization: `Convex ${ctx.key}` } });
ctx.every = (ms, fn) => { fn(); ctx.timers.push(setInterval(fn, ms)); };

async function checkKey(key) {
  const r = await fetch("/api/query", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Convex ${key}` },
    body: JSON.stringify({ path: "_system/dashboard:crons", args: {}, format: "json" }),
  });
  const body = await r.json().catch(() => ({}));
  if (r.ok && body.status === "success") return null;
  return body.errorMessage || body.message || `The key was refused (${r.status})`;
}

async function login(key) {
  const problem = await checkKey(key);
  if (problem) return problem;
  ctx.key = key;
  sessionStorage.setItem(KEY, key);
  ctx.client = new ConvexClient(location.origin, { unsavedChangesWarning: false });
  ctx.client.setAdminAuth(key);
  document.getElementById("login").hidden = true;
  document.getElementById("shell").hidden = false;
  route();
  return null;
}

function showLogin(message) {
  document.getElementById("shell").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

function stopView() {
  for (const unsub of [...ctx.subs]) unsub();
  for (const t of ctx.timers.splice(0)) clearInterval(t);
  if (ctx.onLeave) { ctx.onLeave(); ctx.onLeave = null; }
}

const VIEWS = {
  data: dataView, doc: documentView, functions: functionsView, logs: logsView,
  scheduled: scheduledView, files: filesView, schema: schemaView, env: envView, health: healthView,
};

function route() {
  if (!ctx.client) return;
  stopView();
  const [name, ...rest] = (location.hash.replace(/^#\/?/, "") || "data").split("/");
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === "#/" + name);
  }
  const main = clear(document.getElementById("view"));
  (VIEWS[name] || dataView)(main, rest.map(decodeURIComponent), ctx);
}

// ------------------------------------------------------------------ functions

function functionsView(main) {
  const side = h("div", { class: "side" }, h("h3", {}, "Functions"));
  const content = h("div", { class: "content" }, h("p", { class: "muted" }, "Choose a function."));
  main.append(h("div", { class: "cols" }, side, content));
  ctx.action("functions").then((fns) => {
    let module = null;
    for (const fn of fns) {
      fn.args = JSON.parse(fn.args);
      fn.returns = JSON.parse(fn.returns);
      if (fn.module !== module) { module = fn.module; side.append(h("h3", {}, module)); }
      side.append(h("a", { href: "javascript:void 0", "data-fn": fn.path, onclick: () => showFunction(content, fn) },
        h("span", {}, fn.path.split(":")[1]), h("span", { class: "pill" }, (fn.visibility === "internal" ? "internal " : "") + fn.kind)));
    }
  });
}

function showFunction(content, fn) {
  for (const unsub of [...ctx.subs]) unsub();
  clear(content);
  const form = argsForm(fn.args);
  const out = h("div", { id: "run-output" });
  const live = h("div", { id: "live-output" });
  const run = h("button", { class: "primary", id: "run" }, `Run ${fn.kind}`);
  run.addEventListener("click", async () => {
    clear(out);
    let args;
    try { args = form.value(); } catch (e) { out.append(h("p", { class: "error" }, e.message)); return; }
    const started = performance.now();
    const r = await ctx.fetch("/api/function", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path: fn.path, args: convexToJson(args), format: "json" }),
    });
    const body = await r.json();
    const ms = Math.round(performance.now() - started);
    out.append(h("h3", {}, body.status === "success" ? "Result" : "Error", h("span", { class: "muted" }, ` (${ms} ms)`)));
    if (body.status === "success") out.append(h("pre", { class: "ok", id: "run-result" }, JSON.stringify(body.value, null, 2)));
    else out.append(h("pre", { class: "error", id: "run-error" }, body.errorMessage || JSON.stringify(body)));
    if (body.errorData !== undefined) out.append(h("pre", {}, JSON.stringify(body.errorData, null, 2)));
    out.append(h("h3", {}, "Log lines"), h("pre", { id: "run-logs" }, (body.logLines || []).join("\n") || "(none)"));
  });
  const buttons = h("div", { class: "bar" }, run);
  if (fn.kind === "query") {
    buttons.append(h("button", { id: "subscribe", onclick: () => {
      let args;
      try { args = form.value(); } catch (e) { clear(live).append(h("p", { class: "error" }, e.message)); return; }
      for (const unsub of [...ctx.subs]) unsub();
      clear(live).append(h("h3", {}, "Live result"), h("pre", {}, "…"));
      ctx.watch(fn.path, args, (value) => {
        live.lastChild.textContent = `${new Date().toLocaleTimeString()}\n` + JSON.stringify(convexToJson(value), null, 2);
      }, (e) => { live.lastChild.textContent = e.message; });
    } }, "Subscribe"));
  }
  content.append(
    h("h2", {}, fn.path, " ", h("span", { class: "pill" }, `${fn.visibility} ${fn.kind}`)),
    fn.doc ? h("p", {}, fn.doc) : "",
    h("div", { class: "cols" },
      h("div", { class: "content card" }, h("h3", {}, "Arguments"), form.element, buttons, out, live),
      h("div", { class: "content card" }, h("h3", {}, "Args schema"), h("pre", {}, JSON.stringify(fn.args, null, 2)),
        h("h3", {}, "Returns schema"), h("pre", {}, JSON.stringify(fn.returns, null, 2)))));
}

// ------------------------------------------------------------------ scheduled functions and crons

function scheduledView(main) {
  const stateSel = h("select", {}, ...["", "pending", "inProgress", "success", "failed", "canceled"]
    .map((s) => h("option", { value: s }, s || "all states")));
  const jobs = h("div", {});
  const crons = h("div", {});
  main.append(h("h2", {}, "Scheduled functions"), h("div", { class: "bar" }, stateSel), jobs, h("h2", {}, "Crons"), crons);
  let unsub = null;
  const subscribe = () => {
    if (unsub) unsub();
    unsub = ctx.watch("scheduled", stateSel.value ? { state: stateSel.value } : {}, (docs) => {
      clear(jobs).append(h("table", {}, h("tr", {}, ...["Function", "Args", "Scheduled for", "State", "Completed", ""].map((c) => h("th", {}, c))),
        ...docs.map((d) => {
          const kind = d.state.kind;
          return h("tr", { "data-id": d._id, "data-fn": d.name },
            h("td", {}, d.name), h("td", { class: "json" }, jsonText(d.args[0] ?? d.args)),
            h("td", {}, fmtTime(d.scheduledTime)),
            h("td", {}, h("span", { class: `pill ${kind}` }, kind), d.state.error ? h("div", { class: "error" }, d.state.error) : ""),
            h("td", {}, d.completedTime ? fmtTime(d.completedTime) : ""),
            h("td", {}, kind === "pending" || kind === "inProgress"
              ? h("button", { class: "danger", onclick: () => ctx.mutation("cancel", { id: d._id }) }, "Cancel") : ""));
        })));
      if (!docs.length) jobs.append(h("p", { class: "muted" }, "Nothing scheduled."));
    });
  };
  stateSel.addEventListener("change", subscribe);
  subscribe();
  ctx.watch("crons", {}, (list) => {
    clear(crons).append(h("table", {}, h("tr", {}, ...["Name", "Schedule", "Function", "Last run", "Next run"].map((c) => h("th", {}, c))),
      ...list.map((c) => h("tr", { "data-cron": c.name }, h("td", {}, c.name), h("td", {}, c.schedule), h("td", {}, c.function),
        h("td", {}, c.lastRun ? `${fmtTime(c.lastRun.scheduledTime)} (${c.lastRun.state.kind})` : "never"),
        h("td", {}, c.nextRun ? fmtTime(c.nextRun) : "")))));
    if (!list.length) crons.append(h("p", { class: "muted" }, "No crons."));
  });
}

// ------------------------------------------------------------------ files

function filesView(main) {
  const input = h("input", { type: "file", id: "upload" });
  const status = h("span", { class: "muted" });
  const list = h("div", {});
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    status.textContent = `uploading ${file.name}…`;
    const url = await ctx.mutation("upload_url");
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file });
    status.textContent = r.ok ? `uploaded ${file.name}` : `upload failed (${r.status})`;
    input.value = "";
  });
  main.append(h("h2", {}, "Files"), h("div", { class: "bar" }, "Upload", input, status), list);
  ctx.watch("files", {}, (files) => {
    const row = (f) => h("tr", { "data-id": f._id },
      h("td", {}, (f.contentType || "").startsWith("image/") && f.url ? h("img", { class: "preview", src: f.url, alt: f._id }) : ""),
      h("td", {}, h("a", { class: "id", href: `#/doc/${f._id}` }, f._id)),
      h("td", {}, f.contentType || ""),
      h("td", {}, fmtBytes(f.size)),
      h("td", {}, fmtTime(f._creationTime)),
      h("td", {},
        f.url ? h("a", { href: f.url, download: f._id }, "Download") : "", " ",
        h("button", { class: "danger", onclick: () => confirm(`Delete file ${f._id}?`) && ctx.mutation("delete_file", { id: f._id }) }, "Delete")));
    clear(list).append(h("table", {},
      h("tr", {}, ...["", "Id", "Type", "Size", "Uploaded", ""].map((c) => h("th", {}, c))),
      ...files.map(row)));
    if (!files.length) list.append(h("p", { class: "muted" }, "No files."));
  });
}

// ------------------------------------------------------------------ schema

// An index's state: ready or backfilling; a staged one's background build (backfilling,
// backfilled: built and waiting to be enabled, failed: the error on hover).
function indexState(i) {
  const state = i.state || "ready";
  const pill = h("span", { class: `pill ${state}`, title: i.error || "" }, state);
  return i.staged ? [h("span", { class: "pill staged" }, "staged"), " ", pill] : pill;
}

function schemaView(main) {
  const box = h("div", {});
  main.append(h("h2", {}, "Schema and indexes"), box);
  ctx.action("schema").then((s) => {
    box.append(deploysCard(s.deploys));
    if (!s.schemaDefined) box.append(h("p", { class: "muted" }, "The app has no schema.py: tables are schemaless."));
    for (const t of s.tables) {
      box.append(h("div", { class: "card" }, h("h3", {}, t.table, t.validated ? h("span", { class: "pill" }, " validated") : ""),
        h("table", {}, h("tr", {}, h("th", {}, "Index"), h("th", {}, "Kind"), h("th", {}, "Fields"), h("th", {}, "State")),
          h("tr", {}, h("td", {}, "by_creation_time"), h("td", {}, "built-in"), h("td", {}, "_creationTime"), h("td", {}, h("span", { class: "pill ready" }, "ready"))),
          ...t.indexes.map((i) => h("tr", {}, h("td", {}, i.name), h("td", {}, "index"), h("td", {}, i.fields.join(", ")), h("td", {}, indexState(i)))),
          ...t.searchIndexes.map((i) => h("tr", {}, h("td", {}, i.name), h("td", {}, "search"), h("td", {}, [i.searchField, ...i.filterFields].join(", ")), h("td", {}, indexState(i)))),
          ...t.vectorIndexes.map((i) => h("tr", {}, h("td", {}, i.name), h("td", {}, `vector (${i.dimensions})`), h("td", {}, [i.vectorField, ...i.filterFields].join(", ")), h("td", {}, indexState(i)))))));
    }
  });
}

// ------------------------------------------------------------------ start

document.getElementById("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const problem = await login(document.getElementById("login-key").value.trim());
  if (problem) showLogin(problem);
});
document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  location.hash = "";
  location.reload();
});
window.addEventListener("hashchange", route);

(async () => {
  const m = location.hash.match(/[#&]key=([^&]+)/);
  if (m) history.replaceState(null, "", location.pathname + "#/data");
  const key = m ? decodeURIComponent(m[1]) : sessionStorage.getItem(KEY);
  if (!key) return showLogin();
  const problem = await login(key);
  if (problem) showLogin(problem);
})();

export { ctx };
