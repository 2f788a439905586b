// The generated api.js at run time: the official client calls the demo through it.
import { ConvexHttpClient } from "convex/browser";
import { api } from "./_generated/api.js";

const client = new ConvexHttpClient(process.argv[2]);
const id = await client.mutation(api.messages.create, { author: "ts", body: "typed" });
const docs = await client.query(api.messages.get_by_author, { author: "ts" });
console.log(JSON.stringify({ id, bodies: docs.map((d) => d.body) }));
