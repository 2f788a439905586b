// The official npm ConvexClient as one workload of the two-pods test: one mutation after
// another, each with a unique token, and a subscription to its own count, for DURATION_MS.
// The client reconnects by itself when its pod drains. Prints "ready" once subscribed,
// then one JSON line: tokens whose mutation resolved, errors, the subscription's last value.
import { createRequire } from "node:module";

const require = createRequire(new URL("../js/package.json", import.meta.url));
const { ConvexClient } = require("convex/browser");

const name = process.env.LEDGER_CLIENT ?? "npm";
const client = new ConvexClient(process.env.CONVECT_URL);
const out = { done: [], errors: [], updates: 0, last: null };
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

client.onUpdate("ledger:count_for", { client: name }, (n) => {
  out.updates += 1;
  out.last = n;
});
while (out.updates === 0) await wait(5);
console.log("ready");

const until = Date.now() + Number(process.env.DURATION_MS ?? 3000);
for (let i = 0; Date.now() < until; i += 1) {
  const token = `${name}-${i}`;
  try {
    await client.mutation("ledger:record", { token, client: name, confirm: true });
    out.done.push(token);
  } catch (e) {
    out.errors.push({ token, message: String(e?.message ?? e).slice(0, 300) });
  }
}
// The subscription ends at the latest state: every resolved mutation counted once.
const end = Date.now() + 10000;
while (out.last !== out.done.length && Date.now() < end) await wait(20);
await client.close();
console.log(JSON.stringify(out));
