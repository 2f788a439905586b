// One call through the official npm ConvexHttpClient; prints {threw, message, seconds}.
// Usage: node call_once.mjs <url> <query|mutation|action> <path> [args JSON]
import { ConvexHttpClient } from "convex/browser";

const [url, kind, path, argsJson] = process.argv.slice(2);
const client = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true });
const started = Date.now();
const out = {};
try {
  out.value = await client[kind](path, JSON.parse(argsJson ?? "{}"));
  out.threw = false;
} catch (e) {
  out.threw = true;
  out.message = e.message;
}
out.seconds = (Date.now() - started) / 1000;
console.log(JSON.stringify(out));
