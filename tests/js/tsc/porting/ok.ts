// The ported app (tests/apps/porting): v.nullable, derived object validators, a union-typed
// table, a v.any() table, and staged indexes left out of the data model until enabled.
import { ConvexHttpClient } from "convex/browser";
import { api } from "./_generated/api.js";
import type { DataModel, Doc, Id } from "./_generated/dataModel.js";

const client = new ConvexHttpClient("http://127.0.0.1:3210");

export async function main(id: Id<"tasks">): Promise<void> {
  const made: Id<"tasks"> = await client.mutation(api.tasks.create, {
    title: "t",
    done: false,
    assignee: null,
    dueAt: 3,
    project: "p",
  });
  await client.mutation(api.tasks.update, { id: made, title: "only this" });
  const summary = await client.query(api.tasks.summary, { id });
  const who: string | null = summary!.assignee;
  const event: Doc<"events"> = { _id: "x" as Id<"events">, _creationTime: 0, kind: "comment", taskId: id, body: "b" };
  console.log(describe(event));
  const payload: Doc<"payloads"> = { _id: "y" as Id<"payloads">, _creationTime: 0, anything: [1] };
  const count: number = await client.query(api.tasks.count, { project: "p" });
  console.log(who, payload, count);
}

function describe(event: Doc<"events">): string {
  return event.kind === "status" ? `done: ${event.done}` : event.body;
}

export type Shared = DataModel["events"]["indexes"]["by_task_kind"];
export type Enabled = DataModel["tasks"]["indexes"]["by_project_done"];
