// A scheduled mutation that cancels itself, watched through the official npm clients:
// its `_scheduled_functions` row ends `canceled` (as in Convex), not `success`.
// Prints one JSON line of observations; tests/scheduler/test_self_cancel.py asserts on it.
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const http = new ConvexHttpClient(url);
const client = new ConvexClient(url);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

const id = await http.mutation("sched_funcs:schedule_self_cancel", { label: "self-cancel" });
const states = [];
const stop = client.onUpdate("sched_funcs:scheduled_state", { id }, (s) => states.push(s));
const end = Date.now() + 15000;
while (!["success", "failed", "canceled"].includes(states.at(-1)) && Date.now() < end) await wait(20);
await wait(200); // nothing moves it on afterwards
stop();
const runs = await http.query("sched_funcs:runs", { label: "self-cancel" });
console.log(JSON.stringify({
  states,
  final: await http.query("sched_funcs:scheduled_state", { id }),
  ran: runs.length,
  sawCanceledInside: runs[0]?.anonymous ?? null,
}));
await client.close();
