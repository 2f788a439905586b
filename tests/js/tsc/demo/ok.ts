// Calls the demo app's functions the way a TypeScript app would: all of this compiles.
import { ConvexHttpClient } from "convex/browser";
import type { FunctionArgs, FunctionReference } from "convex/server";
import { api } from "./_generated/api.js";
import type { DataModel, Doc, Id, TableNames } from "./_generated/dataModel.js";

const client = new ConvexHttpClient("http://127.0.0.1:3210");

export async function main(): Promise<void> {
  await client.query(api.messages.list, {});
  await client.query(api.messages.list);
  await client.query(api.messages.get_by_author, { author: "ann" });
  await client.query(api.messages.newest_by_author, { author: "ann" });
  await client.query(api.messages.newest_by_author, { author: "ann", count: 3 });
  const id: Id<"messages"> = await client.mutation(api.messages.create, {
    author: "ann",
    body: "hi",
  });
  await client.mutation(api.messages.like, { id });
  await client.action(api.actions.echo, { text: "x" });
  const doc: Doc<"messages"> = (await client.query(api.messages.get, { id }))!;
  const author: string = doc.author;
  const likes: number | undefined = doc.likes;
  const created: number = doc._creationTime;
  const table: TableNames = "accounts";
  console.log(author, likes, created, table);
}

type ByAuthor = FunctionArgs<typeof api.messages.get_by_author>;
export const args: ByAuthor = { author: "bob" };
export const ref: FunctionReference<"mutation"> = api.accounts.transfer;
export type Indexes = DataModel["messages"]["indexes"]["by_author"];
export const index: Indexes = ["author", "_creationTime"];
