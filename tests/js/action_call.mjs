// One action through an official npm client, with the log lines it printed.
// Usage: node action_call.mjs <url> <path> [args JSON] [token] [http|ws]
// (ws: ConvexClient over the sync socket; default http: ConvexHttpClient)
// Prints {value, threw, message, data, logs, seconds}.
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const [url, path, argsJson, token, transport] = process.argv.slice(2);
const logs = [];
const keep = (...args) => logs.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
const logger = { log: keep, warn: keep, error: keep, logVerbose: () => {} };
const ws = transport === "ws";
const client = ws
  ? new ConvexClient(url, { skipConvexDeploymentUrlCheck: true, logger })
  : new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger });
if (token) client.setAuth(ws ? async () => token : token);
const started = Date.now();
const out = {};
try {
  out.value = await client.action(path, JSON.parse(argsJson ?? "{}"));
  out.threw = false;
} catch (e) {
  out.threw = true;
  out.message = e.message;
  out.data = e.data;
}
out.seconds = (Date.now() - started) / 1000;
out.logs = logs;
if (ws) await client.close();
console.log(JSON.stringify(out));
