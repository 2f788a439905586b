// The health view: read from the same numbers as /metrics (scraped every 2 s) and /readyz.
import { h, clear } from "./dom.js";

/** Prometheus text → [{name, labels, value}]. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function quantile(buckets, q) {
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (!total) return null;
  for (const [le, count] of buckets) if (count >= q * total) return le;
  return Infinity;
}

const ms = (s) => (s === null ? "–" : s === Infinity ? "> max" : `≤ ${Math.round(s * 1000 * 10) / 10} ms`);

export function healthView(main, _rest, ctx) {
  const cards = h("div", { class: "metrics", id: "health-cards" });
  const table = h("div", {});
  main.append(h("h2", {}, "Health"), cards, h("h3", {}, "Functions (since start)"), table);
  let last = null;
  ctx.every(2000, async () => {
    const [metricsRes, ready] = await Promise.all([ctx.fetch("/metrics"), fetch("/readyz")]);
    if (!metricsRes.ok) { clear(cards).append(h("p", { class: "error" }, `/metrics: ${metricsRes.status}`)); return; }
    const rows = parseMetrics(await metricsRes.text());
    const sum = (name, pred = () => true) => rows.filter((r) => r.name === name && pred(r.labels)).reduce((a, r) => a + r.value, 0);
    const calls = sum("convect_function_calls_total");
    const errors = sum("convect_function_calls_total", (l) => l.outcome !== "success");
    const now = performance.now();
    const rate = last ? ((calls - last.calls) / ((now - last.at) / 1000)).toFixed(1) : "…";
    last = { calls, at: now };
    const card = (label, value, id) => h("div", { class: "metric", id }, h("b", {}, String(value)), label);
    clear(cards).append(
      card("calls / second", rate, "m-rate"), card("calls", calls), card("errors", errors),
      card("live subscriptions", sum("convect_sync_subscriptions")), card("open sockets", sum("convect_sync_sockets")),
      card("scheduler lag (s)", sum("convect_scheduler_lag_seconds").toFixed(2)),
      card("scheduler queue", sum("convect_scheduler_queue_depth")),
      card("pool in use", `${sum("convect_pool_in_use")} / ${sum("convect_pool_size")}`),
      card("readiness", ready.ok ? "ready" : `not ready (${ready.status})`, "m-ready"));
    const byFn = new Map();
    for (const r of rows) {
      const f = r.labels.function;
      if (!f) continue;
      const e = byFn.get(f) || { calls: 0, errors: 0, buckets: [], kind: r.labels.kind };
      if (r.name === "convect_function_calls_total") { e.calls += r.value; if (r.labels.outcome !== "success") e.errors += r.value; }
      if (r.name === "convect_function_duration_seconds_bucket") e.buckets.push([Number(r.labels.le), r.value]);
      byFn.set(f, e);
    }
    clear(table).append(h("table", {}, h("tr", {}, ...["Function", "Kind", "Calls", "Errors", "p50", "p99"].map((c) => h("th", {}, c))),
      ...[...byFn].sort((a, b) => b[1].calls - a[1].calls).map(([f, e]) => {
        e.buckets.sort((a, b) => a[0] - b[0]);
        return h("tr", {}, h("td", {}, f), h("td", {}, e.kind || ""), h("td", {}, e.calls), h("td", {}, e.errors),
          h("td", {}, ms(quantile(e.buckets, 0.5))), h("td", {}, ms(quantile(e.buckets, 0.99))));
      })));
  });
}
