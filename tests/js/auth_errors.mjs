// Rejected tokens through the official npm clients: ConvexHttpClient (the error is the
// response body) and ConvexClient over the socket (the AuthError text it logs, verbose,
// and onChange(false)).
// Env: CONVECT_URL, HTTP_CASES and SOCKET_CASES (JSON objects: case name -> token).
import { ConvexClient, ConvexHttpClient } from "convex/browser";

const url = process.env.CONVECT_URL;
const httpCases = JSON.parse(process.env.HTTP_CASES);
const socketCases = JSON.parse(process.env.SOCKET_CASES);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const out = { http: {}, socket: {} };

for (const [name, token] of Object.entries(httpCases)) {
  const http = new ConvexHttpClient(url, { logger: false });
  http.setAuth(token);
  try {
    await http.query("posts:whoami", {});
    out.http[name] = null;
  } catch (e) {
    out.http[name] = e.message;
  }
}

for (const [name, token] of Object.entries(socketCases)) {
  const errors = [];
  const logger = {
    log: () => {},
    warn: () => {},
    error: (...a) => errors.push(a.map(String).join(" ")),
    logVerbose: (...a) => errors.push(a.map(String).join(" ")),
  };
  const client = new ConvexClient(url, { logger });
  const changes = [];
  client.setAuth(async () => token, (ok) => changes.push(ok));
  const end = Date.now() + 15000;
  while (!changes.includes(false) && Date.now() < end) await wait(50);
  out.socket[name] = { changes, errors };
  await client.close();
}
console.log(JSON.stringify(out));
