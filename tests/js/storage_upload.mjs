// Convex's file upload flow with the official npm client and fetch (tests/storage).
// Env: CONVEX_URL (the API listener). Prints one JSON object of observations.
import { ConvexHttpClient } from "convex/browser";

const client = new ConvexHttpClient(process.env.CONVEX_URL, {
  skipConvexDeploymentUrlCheck: true,
});
const out = {};

// 1. A mutation hands out a short-lived upload URL.
const uploadUrl = await client.mutation("files:generate_upload_url", {});
out.uploadUrl = uploadUrl;

// 2. The browser-style upload: POST the file with its content type.
const bytes = new Uint8Array(300 * 1024).map((_, i) => (i * 7) % 251);
const file = new Blob([bytes], { type: "image/png" });
const res = await fetch(uploadUrl, {
  method: "POST",
  headers: { "Content-Type": file.type },
  body: file,
});
out.uploadStatus = res.status;
const { storageId } = await res.json();
out.storageId = storageId;

// 3. Store the id in a document, then read it back with the URL get_url gives.
const fileId = await client.mutation("files:save", { name: "pic.png", storageId });
const doc = await client.query("files:get", { id: fileId });
out.doc = { name: doc.name, storageId: doc.storageId, size: doc.size, url: doc.url };
const served = await fetch(doc.url);
const back = new Uint8Array(await served.arrayBuffer());
out.served = {
  status: served.status,
  contentType: served.headers.get("content-type"),
  length: back.length,
  same: back.length === bytes.length && back.every((b, i) => b === bytes[i]),
  etag: served.headers.get("etag"),
};
const ranged = await fetch(doc.url, { headers: { Range: "bytes=100-199" } });
const part = new Uint8Array(await ranged.arrayBuffer());
out.range = { status: ranged.status, length: part.length, same: part.every((b, i) => b === bytes[100 + i]) };

// 4. A used URL is refused; a text upload (fetch's default string content type) on a new one.
const reused = await fetch(uploadUrl, { method: "POST", body: "plain text" });
out.reused = { status: reused.status, body: await reused.json() };
const secondUrl = await client.mutation("files:generate_upload_url", {});
const again = await fetch(secondUrl, { method: "POST", body: "plain text" });
const { storageId: textId } = await again.json();
out.textMeta = await client.query("files:metadata", { storageId: textId });

// 5. A tampered URL is refused.
const bad = await fetch(uploadUrl.slice(0, -3) + "xyz", { method: "POST", body: "nope" });
out.tampered = { status: bad.status, body: await bad.json() };

console.log(JSON.stringify(out));
