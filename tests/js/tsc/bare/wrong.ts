// Every line marked `// error` must fail to compile; nothing else may.
import { ConvexHttpClient } from "convex/browser";
import { api } from "./_generated/api.js";

const client = new ConvexHttpClient("http://127.0.0.1:3210");

export async function main(): Promise<void> {
  await client.mutation(api.sub.deep.put, { note: { text: 1 } }); // error
  await client.mutation(api.sub.deep.put, { note: {} }); // error
  await client.query(api.notes.get, { id: 1 }); // error
  await client.query(api.sub.put, {}); // error
}
