// Every line marked `// error` must fail to compile; nothing else may.
import { ConvexHttpClient } from "convex/browser";
import { api } from "./_generated/api.js";
import type { DataModel, Doc, Id } from "./_generated/dataModel.js";

const client = new ConvexHttpClient("http://127.0.0.1:3210");

export async function main(id: Id<"tasks">): Promise<void> {
  await client.mutation(api.tasks.create, { title: "t", done: false, dueAt: null, project: "p" }); // error
  await client.mutation(api.tasks.update, { id, project: "moved" }); // error
  const s = await client.query(api.tasks.summary, { id });
  const due: number = s!.dueAt; // error
  const bad: Doc<"events"> = { _id: "x" as Id<"events">, _creationTime: 0, kind: "status", taskId: id, body: "b" }; // error
  console.log(due, bad);
}

export type Staged = DataModel["tasks"]["indexes"]["by_assignee"]; // error
