// ConvexHttpClient.consistentQuery against Convect: every consistent query of one client
// reads at the timestamp its first one got from /api/query_ts (through /api/query_at_ts),
// whatever committed since. MODE=window: the server holds few snapshots for a short
// window, and a timestamp past it is refused with a clear error, never read at the latest.
// Prints one JSON line of observations; tests/core/test_consistent_reads.py asserts on it.
import { ConvexHttpClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const author = process.env.AUTHOR;
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const count = async (client, consistent) => {
  const args = { author };
  try {
    const docs = consistent
      ? await client.consistentQuery("messages:get_by_author", args)
      : await client.query("messages:get_by_author", args);
    return docs.length;
  } catch (e) {
    return { error: e.message.slice(0, 400) };
  }
};
const writer = new ConvexHttpClient(url);
const write = (body) => writer.mutation("messages:create", { author, body });

const out = {};
await write("before");
const reader = new ConvexHttpClient(url);
if (process.env.MODE !== "window") {
  out.first = await count(reader, true);
  await write("after");
  out.again = await count(reader, true); // still at its timestamp
  out.latest = await count(reader, false);
  out.fresh = await count(new ConvexHttpClient(url), true); // a new client: a new timestamp
  const many = await Promise.all([1, 2, 3, 4, 5].map(() => count(reader, true)));
  out.concurrent = many;
} else {
  // CONVECT_CONSISTENT_READ_SNAPSHOTS=1, CONVECT_CONSISTENT_READ_WINDOW=2
  out.first = await count(reader, true);
  await write("after");
  const other = new ConvexHttpClient(url);
  out.other = await count(other, true); // takes the one snapshot slot
  out.evicted = await count(reader, true);
  await wait(2500);
  out.expired = await count(other, true);
}
console.log(JSON.stringify(out));
