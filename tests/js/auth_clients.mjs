// Official npm clients with auth: ConvexHttpClient.setAuth and ConvexClient.setAuth with refresh.
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const tokens = JSON.parse(process.env.TOKENS);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const out = { authChanges: [], badAuthChanges: [], timedOut: [] };
const within = (promise, ms, what) =>
  Promise.race([promise, new Promise((resolve) => setTimeout(() => { out.timedOut.push(what); resolve(null); }, ms))]);

const http = new ConvexHttpClient(url);
http.setAuth(tokens[0]);
out.httpWhoami = await within(http.query("posts:whoami", {}), 10000, "http query");

const client = new ConvexClient(url);
let fetches = 0;
client.setAuth(async () => tokens[Math.min(fetches++, tokens.length - 1)], (ok) => out.authChanges.push(ok));
let latest = null;
client.onUpdate("posts:whoami", {}, (v) => { latest = v; });
const end = Date.now() + 8000;
while ((latest === null || out.authChanges.length === 0) && Date.now() < end) await wait(20);
out.socketWhoami = latest;
// Tokens live 12 s: the client refreshes at exp - 10 s, so within a few seconds.
const end2 = Date.now() + 10000;
while (fetches < 3 && Date.now() < end2) await wait(50);
await wait(300);
out.fetches = fetches;
out.afterRefresh = await within(client.query("posts:whoami", {}), 10000, "query after refresh");
await within(client.close(), 5000, "close");

const bad = new ConvexClient(url);
bad.setAuth(async () => process.env.BAD, (ok) => out.badAuthChanges.push(ok));
const end3 = Date.now() + 8000;
while (out.badAuthChanges.length === 0 && Date.now() < end3) await wait(20);
await within(bad.close(), 5000, "bad close");
console.log(JSON.stringify(out));
