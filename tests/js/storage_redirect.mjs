// Downloads through a presigned redirect (CONVECT_S3_DOWNLOADS=redirect), as a Convex app
// does: the official npm client gets the URL from a query, fetch follows the redirect.
// Env: CONVEX_URL (the API listener). Prints one JSON object of observations.
import { ConvexHttpClient } from "convex/browser";

const client = new ConvexHttpClient(process.env.CONVEX_URL, {
  skipConvexDeploymentUrlCheck: true,
});
const out = {};

const uploadUrl = await client.mutation("files:generate_upload_url", {});
const bytes = new Uint8Array(200 * 1024).map((_, i) => (i * 13) % 253);
const res = await fetch(uploadUrl, {
  method: "POST",
  headers: { "Content-Type": "image/png" },
  body: new Blob([bytes], { type: "image/png" }),
});
const { storageId } = await res.json();
const fileId = await client.mutation("files:save", { name: "pic.png", storageId });
const doc = await client.query("files:get", { id: fileId });
out.url = doc.url;

const manual = await fetch(doc.url, { redirect: "manual" });
out.manual = { status: manual.status, location: manual.headers.get("location") };

const served = await fetch(doc.url);
const back = new Uint8Array(await served.arrayBuffer());
out.served = {
  status: served.status,
  redirected: served.redirected,
  finalUrl: served.url,
  contentType: served.headers.get("content-type"),
  same: back.length === bytes.length && back.every((b, i) => b === bytes[i]),
};
const ranged = await fetch(doc.url, { headers: { Range: "bytes=100-199" } });
const part = new Uint8Array(await ranged.arrayBuffer());
out.range = {
  status: ranged.status,
  length: part.length,
  same: part.every((b, i) => b === bytes[100 + i]),
};
console.log(JSON.stringify(out));
