// Official npm clients against the ported app (tests/apps/porting): Convex's db forms,
// derived validators, union and any tables, staged indexes, live counts, byte-limited pages,
// environment variables (set and removed through the admin API `npx convex env` calls).
// Argument: "staged" (first deploy) or "enabled" (after the staged flags were removed).
// Prints one JSON line of observations; the Python test asserts on it.
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const phase = process.argv[2];
const client = new ConvexClient(url);
const http = new ConvexHttpClient(url);
const out = { phase, counts: [], errors: {} };
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (pred, ms = 5000) => {
  const end = Date.now() + ms;
  while (!pred()) { if (Date.now() > end) throw new Error("timeout"); await wait(10); }
};
const message = async (p) => {
  try { await p; return null; } catch (e) { return e.message; }
};
const project = `p-${phase}`;
const base = { project, done: false, assignee: null, dueAt: null };

if (phase === "staged") {
  // A live count: updates when a write enters or leaves the range.
  client.onUpdate("tasks:count", { project, done: false }, (n) => out.counts.push(n));
  await until(() => out.counts.length === 1);
  const a = await client.mutation("tasks:create", { ...base, title: "write the port" });
  await until(() => out.counts.at(-1) === 1);
  const b = await http.mutation("tasks:create", { ...base, title: "ship it", assignee: "ana", dueAt: 5 });
  await until(() => out.counts.at(-1) === 2);
  await http.mutation("tasks:create", { ...base, project: "elsewhere", title: "not counted" });
  await http.mutation("tasks:update", { id: a, done: true }); // leaves the open range
  await until(() => out.counts.at(-1) === 1);
  await http.mutation("tasks:remove", { id: b });
  await until(() => out.counts.at(-1) === 0);
  await wait(100);
  out.countsSettled = out.counts.slice();

  // Two-argument db forms and derived validators.
  const c = await http.mutation("tasks:create", { ...base, title: "c", notes: "n" });
  out.get = await http.query("tasks:get", { id: c });
  await http.mutation("tasks:update", { id: c, title: "c2", assignee: "bo" });
  out.summary = await http.query("tasks:summary", { id: c });
  await http.mutation("tasks:overwrite", { id: c, doc: { ...base, title: "c3", assignee: "bo" } });
  out.replaced = await http.query("tasks:get", { id: c });
  out.errors.missingNullable = await message(http.mutation("tasks:create", { project, title: "x", done: false, dueAt: null }));
  out.errors.partialUnknown = await message(http.mutation("tasks:update", { id: c, project: "moved" }));
  out.countDone = await http.query("tasks:count", { project, done: true });
  out.countAll = await http.query("tasks:count", { project });
  out.countUnassigned = await http.query("tasks:count_unassigned", { project });

  // Union-typed table: either variant; neither is refused; the index on shared fields.
  const e1 = await http.mutation("events:add", { event: { kind: "comment", taskId: c, body: "hi" } });
  await http.mutation("events:add", { event: { kind: "status", taskId: c, done: true } });
  out.events = (await http.query("events:for_task", { taskId: c })).map((e) => e.kind).sort();
  out.comments = (await http.query("events:for_task", { taskId: c, kind: "comment" })).length;
  out.errors.badVariant = await message(http.mutation("events:add_unchecked", { event: { kind: "status", taskId: c, body: "x" } }));
  // The id of another table, in each two-argument form.
  for (const op of ["get", "patch", "replace", "delete"]) {
    out.errors[`wrongTable_${op}`] = await message(http.mutation("tasks:wrong_table", { table: "tasks", id: e1, op }));
  }
  // v.any() table.
  await http.mutation("events:store_payload", { payload: { source: "stripe", data: [1, { x: "y" }] } });
  await http.mutation("events:store_payload", { payload: { source: "stripe", other: true } });
  out.payloads = (await http.query("events:payloads", { source: "stripe" })).length;

  // maximumBytesRead: a page ends early, as Convex ends it.
  for (let i = 0; i < 5; i++) await http.mutation("tasks:create", { ...base, project: "bytes", title: `t${i}` });
  const pages = [];
  let cursor = null;
  for (;;) {
    const p = await http.query("tasks:page", { project: "bytes", paginationOpts: { numItems: 100, cursor, maximumBytesRead: 1 } });
    pages.push({ n: p.page.length, isDone: p.isDone, pageStatus: p.pageStatus ?? null });
    if (p.isDone) break;
    cursor = p.continueCursor;
  }
  out.bytePages = pages;
  const whole = await http.query("tasks:page", { project: "bytes", paginationOpts: { numItems: 100, cursor: null, maximumBytesRead: 1e6 } });
  out.wholePage = { n: whole.page.length, isDone: whole.isDone, pageStatus: whole.pageStatus ?? null };

  // Identity: none without a token; with one, the UserIdentity as a plain object.
  out.whoami = await http.query("tasks:whoami", {});
  const authed = new ConvexHttpClient(url);
  authed.setAuth(process.env.PORTING_TOKEN);
  out.whoamiAuthed = await authed.query("tasks:whoami", {});
  out.whoamiChecked = await authed.query("tasks:whoami_checked", {});
  out.whoamiCheckedAnon = await http.query("tasks:whoami_checked", {});

  // Environment variables: the start-up value, then a stored one (live, in every cache),
  // then the start-up value again once the stored one is removed.
  const env = async (value) => {
    const r = await fetch(`${url}/api/update_environment_variables`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Convex ${process.env.ADMIN_KEY}` },
      body: JSON.stringify({ changes: [{ name: "PORTING_GREETING", value }] }),
    });
    if (!r.ok) throw new Error(`env update: ${r.status} ${await r.text()}`);
  };
  const greetings = [];
  client.onUpdate("config:greeting", {}, (g) => greetings.push(g));
  await until(() => greetings.length === 1);
  out.greetingStartup = await http.query("config:greeting", {});
  await env("hola");
  await until(() => greetings.at(-1) === "hola", 15000);
  out.greetingStored = await http.query("config:greeting", {});
  out.greetingAction = await http.action("config:greeting_in_action", {});
  await env(null);
  await until(() => greetings.at(-1) === "hello", 15000);
  out.greetingRemoved = await http.query("config:greeting", {});
  await env("bonjour"); // kept for the next phase: a restarted server reads it at start
  await until(() => greetings.at(-1) === "bonjour", 15000);
  out.greetings = greetings;
}
if (phase === "enabled") out.greetingAfterRestart = await http.query("config:greeting", {});

// Staged indexes: an error until enabled, then queryable.
out.byAssignee = await message(http.query("tasks:by_assignee", { assignee: "bo" }));
out.search = await message(http.query("tasks:search", { text: "c3", project: "p-staged" }));
if (phase === "enabled") {
  out.byAssigneeRows = (await http.query("tasks:by_assignee", { assignee: "bo" })).map((d) => d.title);
  out.searchRows = (await http.query("tasks:search", { text: "c3", project: "p-staged" })).map((d) => d.title);
}
await client.close();
console.log(JSON.stringify(out));
