// Every line marked `// error` must fail to compile; nothing else may.
import { ConvexHttpClient } from "convex/browser";
import { api } from "./_generated/api.js";

const client = new ConvexHttpClient("http://127.0.0.1:3210");

export async function main(): Promise<void> {
  await client.mutation(api.rest_types.bump, { count: 1 }); // error
  await client.action(api.rest_types.reverse_bytes, { data: "abc" }); // error
  await client.query(api.rest_types.true_keys, { keys: { c: true } }); // error
  const s: string = await client.mutation(api.rest_types.bump, { count: 1n }); // error
  const m: "fast" = (await client.query(api.rest_types.loose, {}))!; // error
  await client.query(api.rest_types.hidden, {}); // error
  console.log(s, m);
}
