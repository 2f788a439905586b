// The official npm ConvexClient paginating over the sync socket (onPaginatedUpdate_experimental,
// the engine behind usePaginatedQuery): load more pages, reach the end, see live changes.
// (Inserts and deletes inside an earlier page need the query journal in the live-query
// hub, which keeps a re-run page ending where it ended; see app/db/paginate.py.)
// Prints one JSON line of observations; tests/search/test_npm_paginate.py asserts on it.
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const client = new ConvexClient(url);
const http = new ConvexHttpClient(url);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (pred, what, ms = 5000) => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await wait(10);
  }
};

const ids = [];
for (let i = 0; i < 12; i++) {
  ids.push(await http.mutation("messages:create", { author: "pager", body: `m${i}` }));
}

let last = null;
const snapshots = [];
const sub = client.onPaginatedUpdate_experimental(
  "search:oldest_page", {}, { initialNumItems: 5 },
  (r) => { last = r; snapshots.push({ n: r.results.length, status: r.status }); },
);
const bodies = () => (last ? last.results.map((m) => m.body) : []);
const out = {};

await until(() => last && last.status === "CanLoadMore", "the first page");
out.first = bodies();
last.loadMore(5);
await until(() => bodies().length === 10, "the second page");
out.second = bodies();
last.loadMore(5);
await until(() => last.status === "Exhausted", "the last page");
out.exhausted = bodies();

await http.mutation("messages:create", { author: "pager", body: "m12" });
await until(() => bodies().includes("m12"), "a new message at the end");
out.appended = bodies();

await http.mutation("messages:update", { id: ids[6], body: "m6 edited" });
await until(() => bodies().includes("m6 edited"), "an edit on the second page");
out.edited = bodies();

// A delete inside the first page: the next page must not gain a duplicate, because each
// live page keeps ending where it ended (the query journal).
await http.mutation("messages:remove", { id: ids[2] });
await until(() => !bodies().includes("m2"), "a delete on the first page");
out.afterDelete = bodies();

out.statuses = [...new Set(snapshots.map((s) => s.status))];

sub();
await client.close();
console.log(JSON.stringify(out));
