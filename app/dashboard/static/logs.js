// The logs view: the live function-call stream of `/api/stream_function_logs` (the
// endpoint `npx convex logs` polls), with filters by function, outcome and text.
//
// Built to stay smooth at a thousand calls a second: the stream is polled at most every
// POLL_GAP_MS (FLOOD_GAP_MS when a poll brings more than the table shows; each poll
// brings everything new), each call's filter text is computed once,
// new rows are added once per animation frame (only the new ones, at the top), and the
// table keeps the newest SHOWN matching rows; a filter change redraws from the kept calls.
import { h, clear } from "./dom.js";

const KEEP = 5000; // calls kept in the browser
const SHOWN = 200; // rows in the table (newest first)
const POLL_GAP_MS = 100; // the least time between two polls that brought calls
const FLOOD_GAP_MS = 250; // ... when the last one brought a whole table of them

function lineText(line) {
  if (typeof line === "string") return line;
  return `[${line.level}] ${line.messages.join(" ")}`;
}

const two = (n) => String(n).padStart(2, "0");
function clock(seconds) {
  const d = new Date(seconds * 1000);
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

/** A stream entry with what the filters and rows need, computed once. */
function call(e) {
  const lines = (e.logLines || []).map(lineText).join("\n");
  const failed = e.error !== undefined && e.error !== null;
  return { e, lines, failed, hay: lines + (failed ? "\n" + e.error : "") };
}

function row(c) {
  const e = c.e;
  return h("tr", { "data-fn": e.identifier },
    h("td", {}, clock(e.timestamp)),
    h("td", {}, e.udfType), h("td", {}, e.identifier),
    h("td", {}, e.cachedResult ? "(cached)"
      : e.executionTime !== undefined ? `${Math.ceil(e.executionTime * 1000)} ms` : ""),
    h("td", {}, h("span", { class: `pill ${c.failed ? "failed" : "success"}` }, c.failed ? "failure" : "success"),
      c.failed ? h("div", { class: "error" }, e.error) : ""),
    h("td", { class: "loglines" }, c.lines ? h("pre", {}, c.lines) : ""),
    h("td", { class: "muted" }, e.requestId || ""));
}

export function logsView(main, _rest, ctx) {
  const fn = h("input", { placeholder: "function", id: "log-fn", size: 18 });
  const outcome = h("select", { id: "log-outcome" },
    h("option", { value: "" }, "all outcomes"), h("option", { value: "success" }, "success"), h("option", { value: "failure" }, "failure"));
  const text = h("input", { placeholder: "text in logs or error", id: "log-text", size: 24 });
  const pause = h("button", { id: "log-pause" }, "Pause");
  const status = h("span", { class: "muted", id: "log-status" });
  const body = h("tbody", { id: "log-rows" });
  main.append(h("h2", {}, "Logs"), h("div", { class: "bar" }, fn, outcome, text, pause, status),
    h("div", { class: "logs" }, h("table", { class: "logs" },
      h("thead", {}, h("tr", {}, ...["Time", "Kind", "Function", "Duration", "Outcome", "Log lines", "Request"].map((c) => h("th", {}, c)))), body)));
  const calls = [];
  let received = 0;
  let pending = []; // matching calls not drawn yet, oldest first
  let redraw = true; // filters changed: draw from `calls`
  let frame = 0;
  let paused = false;
  let stopped = false;

  const matches = (c) => {
    if (fn.value && !c.e.identifier.includes(fn.value)) return false;
    if (outcome.value === "success" && c.failed) return false;
    if (outcome.value === "failure" && !c.failed) return false;
    return !text.value || c.hay.includes(text.value);
  };
  const shownText = () => {
    const rows = body.childElementCount;
    status.textContent = `${received} calls received · showing the newest ${rows}` +
      `${rows >= SHOWN ? ` (at most ${SHOWN} rows; the newest ${KEEP} calls are kept for filtering)` : ""}` +
      `${paused ? " · paused" : ""}`;
  };
  const draw = () => {
    frame = 0;
    if (paused) return;
    if (redraw) {
      redraw = false;
      pending = [];
      const rows = [];
      for (let i = calls.length - 1; i >= 0 && rows.length < SHOWN; i--) if (matches(calls[i])) rows.push(row(calls[i]));
      clear(body).append(...rows);
    } else if (pending.length) {
      const fresh = pending.slice(-SHOWN);
      pending = [];
      const rows = document.createDocumentFragment();
      for (let i = fresh.length - 1; i >= 0; i--) rows.append(row(fresh[i]));
      body.prepend(rows);
      for (let extra = body.childElementCount - SHOWN; extra > 0; extra--) body.lastElementChild.remove();
    }
    shownText();
  };
  const schedule = () => { if (!frame) frame = requestAnimationFrame(draw); };
  const refilter = () => { redraw = true; schedule(); };
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    if (paused) shownText(); else refilter();
  });
  for (const el of [fn, outcome, text]) el.addEventListener("input", refilter);

  (async () => {
    let cursor = 0;
    while (!stopped) {
      const started = performance.now();
      let got = 0;
      try {
        const r = await ctx.fetch(`/api/stream_function_logs?cursor=${cursor}`);
        if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
        const page = await r.json();
        cursor = page.newCursor;
        for (const e of page.entries) {
          if (e.kind !== "Completion" && e.kind !== undefined) continue;
          const c = call(e);
          calls.push(c);
          got++;
          if (!redraw && matches(c)) pending.push(c);
        }
        received += got;
        if (calls.length > KEEP) calls.splice(0, calls.length - KEEP);
        if (pending.length > SHOWN) pending.splice(0, pending.length - SHOWN);
        schedule();
      } catch (e) {
        status.textContent = `log stream: ${e.message}`;
        await new Promise((res) => setTimeout(res, 1000));
      }
      const gap = got >= SHOWN ? FLOOD_GAP_MS : POLL_GAP_MS; // a flood: fewer, larger redraws
      const wait = got ? gap - (performance.now() - started) : 0;
      if (wait > 0 && !stopped) await new Promise((res) => setTimeout(res, wait));
    }
  })();
  ctx.onLeave = () => { stopped = true; if (frame) cancelAnimationFrame(frame); };
}
