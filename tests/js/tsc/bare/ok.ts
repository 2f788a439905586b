// An app without schema.py: any table, documents typed `any`.
import { ConvexHttpClient } from "convex/browser";
import { api } from "./_generated/api.js";
import type { Doc, Id } from "./_generated/dataModel.js";

const client = new ConvexHttpClient("http://127.0.0.1:3210");

export async function main(id: Id<"notes">): Promise<void> {
  const doc: Doc<"notes"> = await client.query(api.notes.get, { id });
  const anything: number = doc.whatever;
  await client.mutation(api.sub.deep.put, { note: { text: "x" } });
  console.log(anything);
}
