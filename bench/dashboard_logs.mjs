// The Logs view's frame times under load: Debian's chromium through playwright-core
// (from tests/js/node_modules). env: CONVECT_URL, ADMIN_KEY, CHROMIUM, NODE_MODULES,
// WARMUP_MS, MEASURE_MS, FILTER (text typed into the text filter in the second phase).
// Prints one JSON line: per phase the frames' median/p95/max, long frames, rows shown.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const { chromium } = await import(pathToFileURL(join(process.env.NODE_MODULES, "playwright-core", "index.mjs")).href);
const URL = process.env.CONVECT_URL;
const KEY = process.env.ADMIN_KEY;
const WARMUP = Number(process.env.WARMUP_MS || 3000);
const MEASURE = Number(process.env.MEASURE_MS || 10000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const out = { phases: [] };
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 760 } })).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${URL}/dashboard/#key=${encodeURIComponent(KEY)}`);
  await page.waitForSelector("#shell:not([hidden])", { timeout: 15000 });
  await page.evaluate(() => { location.hash = "#/logs"; });
  await page.waitForSelector("#log-rows tr", { timeout: 15000 });
  await page.waitForTimeout(WARMUP);

  const measure = async (name) => {
    const r = await page.evaluate(async (ms) => {
      const frames = [];
      let longTasks = 0, longTaskMs = 0;
      const obs = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) { longTasks++; longTaskMs += e.duration; }
      });
      obs.observe({ entryTypes: ["longtask"] });
      const rowsSeen = [];
      await new Promise((resolve) => {
        let last = performance.now();
        const end = last + ms;
        const tick = (now) => {
          frames.push(now - last);
          last = now;
          if (frames.length % 30 === 0) rowsSeen.push(document.querySelectorAll("#log-rows tr").length);
          if (now < end) requestAnimationFrame(tick); else resolve();
        };
        requestAnimationFrame(tick);
      });
      obs.disconnect();
      frames.sort((a, b) => a - b);
      const q = (p) => frames[Math.min(frames.length - 1, Math.floor(p * frames.length))];
      return {
        frames: frames.length, fps: +(frames.length / (ms / 1000)).toFixed(1),
        medianMs: +q(0.5).toFixed(1), p95Ms: +q(0.95).toFixed(1), maxMs: +frames[frames.length - 1].toFixed(1),
        over50ms: frames.filter((f) => f > 50).length, longTasks, longTaskMs: Math.round(longTaskMs),
        rowsShown: Math.max(...rowsSeen, document.querySelectorAll("#log-rows tr").length),
        nodes: document.getElementsByTagName("*").length,
        status: (document.querySelector("#log-status") || document.querySelector("main .bar .muted") || {}).textContent || "",
      };
    }, MEASURE);
    out.phases.push({ name, ...r });
  };

  await measure("unfiltered");
  if (process.env.FILTER) {
    const started = Date.now();
    await page.fill("#log-text", process.env.FILTER);
    try {
      await page.waitForFunction(() => {
        const first = document.querySelector("#log-rows tr .loglines");
        return first && first.textContent.includes(document.querySelector("#log-text").value);
      }, null, { timeout: 15000 });
      out.filterAppliedMs = Date.now() - started;
    } catch (e) {
      out.filterAppliedMs = `never (${e.message.split("\n")[0]}); first row: ` +
        await page.evaluate(() => (document.querySelector("#log-rows tr") || {}).textContent);
    }
    await measure(`text filter ${JSON.stringify(process.env.FILTER)}`);
  }
  out.pageErrors = errors;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
