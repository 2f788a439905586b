// The logs view: the live function-call stream of `/api/stream_function_logs` (the
// endpoint `npx convex logs` polls), with filters by function, outcome and text.
import { h, clear } from "./dom.js";

const KEEP = 5000; // entries kept in the browser
const SHOWN = 300; // rows drawn (newest first)

function lineText(line) {
  if (typeof line === "string") return line;
  return `[${line.level}] ${line.messages.join(" ")}`;
}

export function logsView(main, _rest, ctx) {
  const fn = h("input", { placeholder: "function", id: "log-fn", size: 18 });
  const outcome = h("select", { id: "log-outcome" },
    h("option", { value: "" }, "all outcomes"), h("option", { value: "success" }, "success"), h("option", { value: "failure" }, "failure"));
  const text = h("input", { placeholder: "text in logs or error", id: "log-text", size: 24 });
  const pause = h("button", {}, "Pause");
  const status = h("span", { class: "muted" });
  const body = h("tbody", { id: "log-rows" });
  main.append(h("h2", {}, "Logs"), h("div", { class: "bar" }, fn, outcome, text, pause, status),
    h("table", {}, h("thead", {}, h("tr", {}, ...["Time", "Kind", "Function", "Duration", "Outcome", "Log lines", "Request"].map((c) => h("th", {}, c)))), body));
  const entries = [];
  let dirty = true;
  let paused = false;
  let stopped = false;
  pause.addEventListener("click", () => { paused = !paused; pause.textContent = paused ? "Resume" : "Pause"; dirty = true; });
  for (const el of [fn, outcome, text]) el.addEventListener("input", () => { dirty = true; });

  const matches = (e) => {
    if (fn.value && !e.identifier.includes(fn.value)) return false;
    const failed = e.error !== undefined && e.error !== null;
    if (outcome.value === "success" && failed) return false;
    if (outcome.value === "failure" && !failed) return false;
    if (text.value) {
      const hay = (e.logLines || []).map(lineText).join("\n") + (e.error || "");
      if (!hay.includes(text.value)) return false;
    }
    return true;
  };
  const draw = () => {
    if (!dirty || paused) return;
    dirty = false;
    const rows = [];
    for (let i = entries.length - 1; i >= 0 && rows.length < SHOWN; i--) {
      const e = entries[i];
      if (!matches(e)) continue;
      const failed = e.error !== undefined && e.error !== null;
      rows.push(h("tr", { "data-fn": e.identifier },
        h("td", {}, new Date(e.timestamp * 1000).toLocaleTimeString(undefined, { hour12: false })),
        h("td", {}, e.udfType), h("td", {}, e.identifier),
        h("td", {}, e.executionTime !== undefined ? `${Math.ceil(e.executionTime * 1000)} ms` : ""),
        h("td", {}, h("span", { class: `pill ${failed ? "failed" : "success"}` }, failed ? "failure" : "success"),
          failed ? h("div", { class: "error" }, e.error) : ""),
        h("td", { class: "loglines" }, h("pre", {}, (e.logLines || []).map(lineText).join("\n"))),
        h("td", { class: "muted" }, e.requestId || "")));
    }
    clear(body).append(...rows);
    status.textContent = `${entries.length} calls received`;
  };
  const timer = setInterval(draw, 250);

  (async () => {
    let cursor = 0;
    let first = true;
    while (!stopped) {
      try {
        const r = await ctx.fetch(`/api/stream_function_logs?cursor=${cursor}`);
        if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
        const page = await r.json();
        cursor = page.newCursor;
        for (const e of page.entries) if (e.kind === "Completion" || e.kind === undefined) entries.push(e);
        if (entries.length > KEEP) entries.splice(0, entries.length - KEEP);
        if (page.entries.length || first) dirty = true;
        first = false;
      } catch (e) {
        status.textContent = `log stream: ${e.message}`;
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
  })();
  ctx.onLeave = () => { stopped = true; clearInterval(timer); };
}
