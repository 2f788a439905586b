// The official npm ConvexHttpClient against Convect's HTTP API (core engine tests).
// Usage: node core_http_client.mjs <demo url> <kitchen url>
// Prints one JSON object of observations; tests/core/test_official_clients.py asserts on it.
import { ConvexHttpClient } from "convex/browser";
import { ConvexError } from "convex/values";

const [demoUrl, kitchenUrl] = process.argv.slice(2);
const logged = [];
const logger = {
  log: (...a) => logged.push(["log", a.map(String).join(" ")]),
  warn: (...a) => logged.push(["warn", a.map(String).join(" ")]),
  error: (...a) => logged.push(["error", a.map(String).join(" ")]),
  logVerbose: () => {},
};
const demo = new ConvexHttpClient(demoUrl, { skipConvexDeploymentUrlCheck: true, logger });
const kitchen = new ConvexHttpClient(kitchenUrl, { skipConvexDeploymentUrlCheck: true, logger });
const out = {};

function describeError(e) {
  return {
    isConvexError: e instanceof ConvexError,
    isError: e instanceof Error,
    message: e.message,
    hasData: "data" in e,
    data: e.data === undefined ? null : e.data,
  };
}

async function failure(promise) {
  try {
    await promise;
    return { threw: false };
  } catch (e) {
    return { threw: true, ...describeError(e) };
  }
}

const author = `npm-${Date.now()}`;
const id = await demo.mutation("messages:create", { author, body: "hello" });
out.idType = typeof id;
await demo.mutation("messages:like", { id });
await demo.mutation("messages:like", { id });
const doc = await demo.query("messages:get", { id });
out.doc = { body: doc.body, likes: doc.likes, likesType: typeof doc.likes, id: doc._id === id };
out.byAuthor = (await demo.query("messages:get_by_author", { author })).map((d) => d.body);
out.echo = await demo.action("actions:echo", { text: "hi from npm" });

const a = await demo.mutation("accounts:open", { owner: "a", balance: 100 });
const b = await demo.mutation("accounts:open", { owner: "b", balance: 0 });
out.transferOk = await demo.mutation("accounts:transfer", { fromId: a, toId: b, amount: 40 });
out.insufficient = await failure(
  demo.mutation("accounts:transfer", { fromId: a, toId: b, amount: 1000 }),
);
out.badArgs = await failure(demo.query("messages:get", { id: 5 }));
out.badActionArgs = await failure(demo.action("actions:echo", { text: 1 }));
out.unknown = await failure(demo.query("messages:nope", {}));
out.internal = await failure(demo.mutation("logs:record", { event: "x" }));
out.balances = [
  (await demo.query("accounts:get", { id: a })).balance,
  (await demo.query("accounts:get", { id: b })).balance,
];

const big = 2n ** 62n + 7n;
const echoed = await kitchen.query("core_tx:echo", {
  value: { i: big, neg: -5n, f: 1.5, whole: 3, bytes: new Uint8Array([1, 2, 3]).buffer },
});
out.int64 = {
  type: typeof echoed.i,
  equal: echoed.i === big,
  neg: echoed.neg === -5n,
  f: echoed.f,
  whole: echoed.whole,
  bytes: Array.from(new Uint8Array(echoed.bytes)),
};
out.kinds = await kitchen.query("core_tx:describe", { value: { i: big, whole: 3 } });
out.serverError = await failure(kitchen.query("core_tx:crash", {}));
await kitchen.query("core_tx:noisy", { tag: `npm-${Date.now()}` });
out.logged = logged;

console.log(JSON.stringify(out));
