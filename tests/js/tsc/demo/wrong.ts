// Every line marked `// error` must fail to compile; nothing else may.
import { ConvexHttpClient } from "convex/browser";
import { api, internal } from "./_generated/api.js";
import type { Doc } from "./_generated/dataModel.js";

const client = new ConvexHttpClient("http://127.0.0.1:3210");

export async function main(): Promise<void> {
  await client.query(api.messages.get_by_author, { author: 5 }); // error
  await client.query(api.messages.get_by_author, {}); // error
  await client.query(api.messages.get_by_author, { author: "a", extra: 1 }); // error
  await client.mutation(api.messages.list, {}); // error
  await client.query(api.messages.get, { id: "not an id" }); // error
  await client.mutation(internal.logs.record, { event: "x" }); // error
  await client.query(api.logs.count, {}); // error
  const doc = (await client.query(api.messages.list))[0] as Doc<"messages">;
  const n: number = doc.author; // error
  console.log(n);
}
