// Convex's own error-text integration test (customErrors.test.ts), ported: the official
// npm clients call functions that throw, over HTTP and over the socket.
// Usage: node custom_errors.mjs <kitchen url> <kitchen site url>
// Prints one JSON object: {cases: {name: {http, socket}}, httpAction}.
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { ConvexError } from "convex/values";

const [url, siteUrl] = process.argv.slice(2);
const http = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
const socket = new ConvexClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });

const cases = {
  queryThrowingConvexError: ["query", "custom_errors:query_throwing_convex_error"],
  queryThrowingNormalError: ["query", "custom_errors:query_throwing_normal_error"],
  queryThrowingConvexErrorSubclass: ["query", "custom_errors:query_throwing_convex_error_subclass"],
  mutationThrowingConvexError: ["mutation", "custom_errors:mutation_throwing_convex_error"],
  actionThrowingConvexError: ["action", "custom_errors:action_throwing_convex_error"],
  actionCallingQueryThrowingConvexError: [
    "action",
    "custom_errors:action_calling_query_throwing_convex_error",
  ],
  actionCallingQueryThrowingConvexErrorSubclass: [
    "action",
    "custom_errors:action_calling_query_throwing_convex_error_subclass",
  ],
  actionCallingMutationThrowingConvexError: [
    "action",
    "custom_errors:action_calling_mutation_throwing_convex_error",
  ],
  actionCallingQueryThrowingError: ["action", "custom_errors:action_calling_query_throwing_error"],
};

const replacer = (_k, v) => (typeof v === "bigint" ? `${v}n` : v);

async function caught(call) {
  try {
    await call();
    return { threw: false };
  } catch (e) {
    return {
      threw: true,
      isConvexError: e instanceof ConvexError,
      name: e.name,
      message: e.message,
      data: e.data === undefined ? null : JSON.parse(JSON.stringify(e.data, replacer)),
    };
  }
}

const out = { cases: {} };
for (const [name, [kind, path]] of Object.entries(cases)) {
  out.cases[name] = {
    http: await caught(() => http[kind](path, {})),
    socket: await caught(() => socket[kind](path, {})),
  };
}
const response = await fetch(`${siteUrl}/kitchen/failer_custom`);
out.httpAction = {
  status: response.status,
  contentType: response.headers.get("content-type"),
  body: await response.json(),
};
await socket.close();
console.log(JSON.stringify(out));
