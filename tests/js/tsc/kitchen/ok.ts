// int64, bytes, literals, records, unions and returns= types of kitchen/rest_types.py.
import { ConvexHttpClient } from "convex/browser";
import { api } from "./_generated/api.js";
import type { GenericId } from "convex/values";

const client = new ConvexHttpClient("http://127.0.0.1:3210");

export async function main(ref: GenericId<"rest_things">): Promise<void> {
  const n: bigint = await client.mutation(api.rest_types.bump, { count: 1n, step: 2n });
  const r = await client.action(api.rest_types.reverse_bytes, { data: new ArrayBuffer(2) });
  const size: number = r.size;
  const data: ArrayBuffer = r.data;
  const keys: string[] = await client.query(api.rest_types.true_keys, { keys: { a: true } });
  const loose: string | null = await client.query(api.rest_types.loose, { anything: [1] });
  const echoed = await client.query(api.rest_types.echo, {
    text: "t",
    number: 1,
    big: 2n,
    flag: true,
    nothing: null,
    blob: new ArrayBuffer(0),
    anything: { x: 1 },
    ref,
    mode: 3,
    tags: ["a"],
    scores: { a: 0.5 },
    point: { x: 1 },
  });
  const mode: "fast" | "slow" | 3 | true = echoed.mode;
  const y: number | undefined = echoed.point.y;
  console.log(n, size, data, keys, loose, mode, y);
}
