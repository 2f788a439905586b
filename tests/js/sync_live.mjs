// Official npm ConvexClient against Convect: subscriptions, mutations, errors, actions.
// Prints one JSON line of observations; the Python test asserts on it.
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const client = new ConvexClient(url);
const http = new ConvexHttpClient(url);
const out = { updates: [], unrelated: 0, errors: {} };
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (pred, ms = 5000) => {
  const end = Date.now() + ms;
  while (!pred()) { if (Date.now() > end) throw new Error("timeout"); await wait(10); }
};

client.onUpdate("messages:get_by_author", { author: "npm" }, (v) => out.updates.push(v.map((d) => d.body)));
client.onUpdate("messages:get_by_author", { author: "nobody" }, () => { out.unrelated += 1; });
await until(() => out.updates.length === 1 && out.unrelated === 1);

// A write through the socket: the promise resolves after the subscription shows it.
await client.mutation("messages:create", { author: "npm", body: "from socket" });
out.sawOwnWriteOnResolve = out.updates.at(-1).includes("from socket");

// A write from another client (HTTP) reaches the subscriber.
const t0 = Date.now();
await http.mutation("messages:create", { author: "npm", body: "from http" });
await until(() => out.updates.at(-1).includes("from http"), 1000);
out.httpLatencyMs = Date.now() - t0;

try {
  const a = await client.mutation("accounts:open", { owner: "o", balance: 1 });
  await client.mutation("accounts:transfer", { fromId: a, toId: a, amount: 9 });
} catch (e) {
  out.errors.convex = { name: e.constructor.name, data: e.data ?? null };
}
try {
  await client.mutation("messages:create", { author: 5, body: "x" });
} catch (e) {
  out.errors.validation = { name: e.constructor.name, hasData: e.data !== undefined, message: e.message.slice(0, 200) };
}
out.action = await client.action("actions:echo", { text: "npm" });
out.oneShot = (await client.query("messages:get_by_author", { author: "npm" })).length;
await wait(200);
out.unrelatedAfter = out.unrelated;
await client.close();
console.log(JSON.stringify(out));
