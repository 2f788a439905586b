// A function reads the deployment's URLs from its environment (npm ConvexHttpClient).
// Usage: node deployment_urls.mjs <url>
import { ConvexHttpClient } from "convex/browser";

const client = new ConvexHttpClient(process.argv[2], { logger: false });
const out = {
  query: await client.query("deployment_env:urls", {}),
  action: await client.action("deployment_env:urls_in_action", {}),
};
console.log(JSON.stringify(out));
