// Several official npm ConvexClients paginating the same query with the same arguments
// (as every tab of a usePaginatedQuery app does): each subscription keeps its own page
// end (the query journal), so a client that connects later, or reloads, starts with a
// fresh first page instead of another client's grown one.
// Prints one JSON line of observations; tests/sync/test_paginated_clients.py asserts on it.
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const http = new ConvexHttpClient(url);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (pred, what, ms = 5000) => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await wait(10);
  }
};

// One "tab": a client with one paginated subscription of 5 items a page.
const open = () => {
  const tab = { client: new ConvexClient(url), last: null };
  tab.stop = tab.client.onPaginatedUpdate_experimental(
    "search:newest_page", {}, { initialNumItems: 5 }, (r) => { tab.last = r; },
  );
  tab.view = () => ({ n: tab.last.results.length, status: tab.last.status });
  tab.ready = () => tab.last !== null && tab.last.status !== "LoadingFirstPage";
  return tab;
};

const out = {};
const first = open();
await until(first.ready, "the first tab's empty page");
out.firstEmpty = first.view();
for (let i = 0; i < 7; i++) {
  await http.mutation("messages:create", { author: "pager", body: `m${i}` });
}
await until(() => first.last.results.length === 7, "the first tab's page to grow");
out.firstGrown = first.view();

const second = open();
await until(second.ready, "the second tab's first page");
out.second = second.view();
second.last.loadMore(5);
await until(() => second.last.status === "Exhausted", "the second tab's last page");
out.secondMore = second.view();

const third = open();
await until(third.ready, "the third tab's first page");
out.third = third.view();

// The first tab reloads: a new client, the same subscription.
await first.client.close();
const reloaded = open();
await until(reloaded.ready, "the reloaded tab's first page");
out.reloaded = reloaded.view();

// Live updates still reach every page: a new message is the newest of all.
await http.mutation("messages:create", { author: "pager", body: "m7" });
await until(() => reloaded.last.results[0]?.body === "m7", "the new message on a fresh page");
await until(() => third.last.results[0]?.body === "m7", "the new message on the third tab");
out.afterInsert = { reloaded: reloaded.view(), third: third.view() };
out.oneShot = await http.query("search:newest_page", { paginationOpts: { numItems: 5, cursor: null } });
out.oneShot = { n: out.oneShot.page.length, isDone: out.oneShot.isDone };

for (const tab of [second, third, reloaded]) await tab.client.close();
console.log(JSON.stringify(out));
