// The log lines of a query reach the official npm clients on every answer, including one
// served from the server's cache of an identical earlier call (as Convex repeats them):
// over HTTP (ConvexHttpClient) and over the socket (a second ConvexClient joining a
// live query another client holds).
// Prints one JSON line of observations; tests/core/test_cached_log_lines.py asserts on it.
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const tag = process.env.TAG;
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const recorder = () => {
  const lines = [];
  const keep = (...args) => lines.push(args.filter((a) => !String(a).startsWith("color:")).join(" "));
  return { lines, logger: { log: keep, warn: keep, error: keep, logVerbose: () => {} } };
};

const out = { http: [], socket: [] };
for (let i = 0; i < 2; i++) {
  const rec = recorder();
  const http = new ConvexHttpClient(url, { logger: rec.logger });
  out.http.push({ value: await http.query("core_tx:noisy", { tag }), lines: rec.lines });
}
for (let i = 0; i < 2; i++) {
  const rec = recorder();
  const client = new ConvexClient(url, { logger: rec.logger });
  let value = null;
  client.onUpdate("core_tx:noisy", { tag: `${tag}-live` }, (v) => { value = v; });
  const end = Date.now() + 5000;
  while (value === null && Date.now() < end) await wait(10);
  await wait(50);
  out.socket.push({ value, lines: rec.lines });
  if (i === 1) await client.close();
  else out.first = client; // stays subscribed: the second client joins its live query
}
await out.first.close();
delete out.first;
console.log(JSON.stringify(out));
