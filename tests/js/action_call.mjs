// One action through the official npm ConvexHttpClient, with the log lines it printed.
// Usage: node action_call.mjs <url> <path> [args JSON] [token]
// Prints {value, threw, message, data, logs, seconds}.
import { ConvexHttpClient } from "convex/browser";

const [url, path, argsJson, token] = process.argv.slice(2);
const logs = [];
const keep = (...args) => logs.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
const logger = { log: keep, warn: keep, error: keep, logVerbose: () => {} };
const client = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger });
if (token) client.setAuth(token);
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
console.log(JSON.stringify(out));
