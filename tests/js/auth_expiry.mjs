// ConvexClient.setAuth with tokens the client cannot refresh on its own (no `iat`): when
// one expires the server ends it (AuthError), and the client must fetch the next and go on.
import { ConvexClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const tokens = JSON.parse(process.env.TOKENS);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const out = { authChanges: [], timedOut: [] };
const within = (promise, ms, what) =>
  Promise.race([promise, new Promise((resolve) => setTimeout(() => { out.timedOut.push(what); resolve(null); }, ms))]);

const client = new ConvexClient(url);
let fetches = 0;
client.setAuth(async () => tokens[Math.min(fetches++, tokens.length - 1)], (ok) => out.authChanges.push(ok));
let latest = null;
client.onUpdate("posts:whoami", {}, (v) => { latest = v; });
const end = Date.now() + 8000;
while ((latest === null || out.authChanges.length === 0) && Date.now() < end) await wait(20);
out.before = latest;
const fetchedBefore = fetches;
await wait(4500); // the first token (3 s) has expired by now
out.fetchesAfterExpiry = fetches;
out.fetchedBefore = fetchedBefore;
out.after = await within(client.query("posts:whoami", {}), 10000, "query after expiry");
await within(client.close(), 5000, "close");
console.log(JSON.stringify(out));
