// Drives the dashboard in a real browser (Debian's chromium through playwright-core).
// env: CONVECT_URL, ADMIN_KEY, CHROMIUM (the executable), SHOTS (screenshot folder),
// STEPS (comma-separated: refused,data,functions,scheduled,files,schema,health,logs,env).
// Prints one JSON line: what each step saw.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const URL = process.env.CONVECT_URL;
const KEY = process.env.ADMIN_KEY;
const SHOTS = process.env.SHOTS;
const STEPS = new Set((process.env.STEPS || "").split(",").filter(Boolean));
const out = {};
const T = 15000;
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
const external = [];
context.on("request", (r) => { if (!r.url().startsWith(URL) && !r.url().startsWith("blob:") && !r.url().startsWith("data:")) external.push(r.url()); });
const errors = [];

async function shot(page, name) {
  if (!SHOTS) return;
  await page.mouse.move(0, 0); // no hover highlight in the picture
  await page.waitForTimeout(150);
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function open(hash, { key = KEY, form = false } = {}) {
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("dialog", (d) => d.accept());
  if (form) {
    await page.goto(`${URL}/dashboard/`);
    await page.fill("#login-key", key);
    await page.click("#login-form button");
  } else {
    await page.goto(`${URL}/dashboard/#key=${encodeURIComponent(key)}`);
  }
  await page.waitForSelector("#shell:not([hidden])", { timeout: T });
  if (hash) await page.evaluate((h) => { location.hash = h; }, hash);
  return page;
}

try {
  if (STEPS.has("refused")) {
    // A wrong key and no key: the login stays, and every data request the page made failed.
    const page = await context.newPage();
    const answers = [];
    page.on("response", async (r) => {
      if (r.url().includes("/api/")) answers.push(await r.text().catch(() => ""));
    });
    await page.goto(`${URL}/dashboard/#key=wrong-key`);
    await page.waitForSelector("#login:not([hidden])", { timeout: T });
    await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0, null, { timeout: T });
    out.refusedMessage = await page.textContent("#login-error");
    await page.fill("#login-key", "");
    await page.click("#login-form button");
    await page.waitForTimeout(300);
    out.refusedShell = await page.isVisible("#shell");
    out.refusedAnswers = answers;
    await shot(page, "login");
    await page.close();
  }

  if (STEPS.has("data")) {
    const page = await open("#/data/books", { form: true });
    await page.waitForSelector("tr[data-id]", { timeout: T });
    out.tables = await page.$$eval(".side a[data-table]", (as) => as.map((a) => a.dataset.table + "=" + a.querySelector(".count").textContent));
    out.rows = await page.$$eval("tr[data-id]", (rs) => rs.length);
    out.idLinks = await page.$$eval("tr[data-id] a.id", (as) => as.length);
    out.nestedIdLinks = await page.$$eval("tr[data-id] td.json a.id", (as) => as.length);
    await shot(page, "data");
    // Sorting by a field an index starts with goes through that index; by another, the
    // page is sorted and the note says a whole-table sort would be a full scan.
    const column = async (field) => page.$$eval("tr[data-id]", (rs, f) => {
      const at = [...document.querySelectorAll("thead th")].findIndex((th) => th.dataset.field === f);
      return rs.map((r) => r.children[at].textContent);
    }, field);
    await page.selectOption("#sort-field", "year");
    await page.selectOption("#sort-order", "asc");
    await page.waitForFunction(() => document.querySelector("#data-index").value === "by_year", null, { timeout: T });
    await page.waitForFunction(() => [...document.querySelectorAll("thead th")].some((th) => th.textContent.includes("year ▲")), null, { timeout: T });
    out.sortedByYear = await column("year");
    out.sortByYearNote = await page.textContent("#sort-note");
    await page.click('thead th[data-field="title"]');
    await page.waitForFunction(() => document.querySelector("#sort-note").textContent.includes("full scan"), null, { timeout: T });
    await page.waitForFunction(() => [...document.querySelectorAll("thead th")].some((th) => th.textContent.includes("title ▲")), null, { timeout: T });
    out.sortedByTitle = (await column("title")).map((t) => JSON.parse(t));
    out.sortByTitleNote = await page.textContent("#sort-note");
    await page.selectOption("#sort-field", "_creationTime");
    await page.selectOption("#sort-order", "desc");
    // A second page watches the same table while the first edits a document.
    const second = await open("#/data/books");
    await second.waitForSelector("tr[data-id]", { timeout: T });
    const id = await page.$eval("tr[data-id]", (r) => r.dataset.id);
    await page.click(`tr[data-id="${id}"] button:text("Edit")`);
    await page.waitForSelector("#doc-editor");
    const text = await page.inputValue("#doc-editor");
    await page.fill("#doc-editor", text.replace(/"title": "[^"]*"/, '"title": 7'));
    await page.click("#doc-save");
    await page.waitForFunction(() => document.querySelector("#doc-error").textContent.length > 0, null, { timeout: T });
    out.schemaError = await page.textContent("#doc-error");
    await shot(page, "editor");
    await page.fill("#doc-editor", text.replace(/"title": "[^"]*"/, '"title": "Edited in the dashboard"'));
    await page.click("#doc-save");
    const started = Date.now();
    await second.waitForSelector(`tr[data-id="${id}"] td:text("Edited in the dashboard")`, { timeout: T });
    out.secondPageSawEditMs = Date.now() - started;
    // The id link opens the referenced document.
    await page.click("tr[data-id] a.id >> nth=1");
    await page.waitForSelector("#doc-json", { timeout: T });
    out.linkedDocument = await page.textContent("#doc-json");
    // A book's own page links its author, coauthor and editor (nested ids too).
    await page.evaluate((i) => { location.hash = `#/doc/${encodeURIComponent(i)}`; }, id);
    await page.waitForFunction(() => document.querySelectorAll("#doc-json a.id").length > 0, null, { timeout: T });
    out.bookDocumentLinks = await page.$$eval("#doc-json a.id", (as) => as.map((a) => a.getAttribute("href")));
    await shot(page, "document");
    // More books than a page holds: a sort without an index sorts this page only, and says so.
    for (let i = 0; i < 30; i++) {
      await fetch(`${URL}/api/mutation`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Convex ${KEY}` },
        body: JSON.stringify({ path: "library:add_book", args: { title: `Filler ${i}`, year: 2000 + i }, format: "json" }),
      });
    }
    await second.evaluate(() => { location.hash = "#/data/authors"; });
    await second.evaluate(() => { location.hash = "#/data/books"; });
    await second.waitForSelector("tr[data-id]", { timeout: T });
    await second.click('thead th[data-field="title"]');
    await second.waitForFunction(() => document.querySelector("#sort-note").textContent.includes("only this page"), null, { timeout: T });
    out.bigTableSortNote = await second.textContent("#sort-note");
    await second.close();
    await page.close();
  }

  if (STEPS.has("functions")) {
    const page = await open("#/functions");
    await page.click('a[data-fn="library:add_book"]', { timeout: T });
    await page.fill('[data-arg="title"]', "Run from the form");
    await page.fill('[data-arg="year"]', "2001");
    await page.click("#run");
    await page.waitForSelector("#run-logs", { timeout: T });
    out.runResult = await page.textContent("#run-result");
    out.runLogs = await page.textContent("#run-logs");
    await shot(page, "functions");
    // A query as a live subscription: a write elsewhere shows up in it.
    await page.click('a[data-fn="library:books"]');
    await page.click("#subscribe");
    await page.waitForSelector('#live-output pre:has-text("Run from the form")', { timeout: T });
    await fetch(`${URL}/api/mutation`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Convex ${KEY}` },
      body: JSON.stringify({ path: "library:add_book", args: { title: "Arrived live", year: 2002 }, format: "json" }),
    });
    await page.waitForSelector('#live-output pre:has-text("Arrived live")', { timeout: T });
    out.liveQuery = await page.textContent("#live-output pre");
    await page.close();
  }

  if (STEPS.has("scheduled")) {
    const page = await open("#/scheduled");
    const row = 'tr[data-fn="library:remind"]';
    await page.waitForSelector(`${row} button:text("Cancel")`, { timeout: T });
    await page.waitForSelector('tr[data-cron="new year tidy"]', { timeout: T });
    out.cron = await page.textContent('tr[data-cron="new year tidy"]');
    await shot(page, "scheduled");
    await page.click(`${row} button:text("Cancel")`);
    await page.waitForSelector(`${row} .pill.canceled`, { timeout: T });
    out.cancelled = await page.textContent(`${row} .pill`);
    await page.close();
  }

  if (STEPS.has("files")) {
    const page = await open("#/files");
    await page.waitForSelector("#upload", { timeout: T });
    const image = await page.screenshot({ clip: { x: 0, y: 0, width: 320, height: 200 } });
    await page.setInputFiles("#upload", { name: "nav.png", mimeType: "image/png", buffer: image });
    await page.waitForFunction(() => {
      const img = document.querySelector("img.preview");
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: T });
    out.previewWidth = await page.$eval("img.preview", (i) => i.naturalWidth);
    out.fileType = await page.textContent("tr[data-id] td:nth-child(3)");
    await shot(page, "files");
    await page.close();
  }

  if (STEPS.has("schema")) {
    const page = await open("#/schema");
    await page.waitForSelector(".card h3", { timeout: T });
    out.schemaText = await page.textContent("#view");
    await shot(page, "schema");
    await page.close();
  }

  if (STEPS.has("health")) {
    const page = await open("#/health");
    await page.waitForFunction(() => {
      const el = document.querySelector("#m-rate b");
      return el && el.textContent !== "…";
    }, null, { timeout: T });
    out.health = await page.textContent("#health-cards");
    await shot(page, "health");
    await page.close();
  }

  if (STEPS.has("logs")) {
    const page = await open("#/logs");
    await page.waitForSelector("#log-rows", { state: "attached", timeout: T });
    await page.waitForTimeout(500);
    // A call made now (by another client) arrives in the open stream.
    await fetch(`${URL}/api/mutation`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Convex ${KEY}` },
      body: JSON.stringify({ path: "library:add_book", args: { title: "Streamed", year: 1999 }, format: "json" }),
    });
    await page.waitForSelector('#log-rows tr[data-fn="library:add_book"] .loglines:has-text("added book Streamed")', { timeout: T });
    out.logRow = await page.textContent('#log-rows tr[data-fn="library:add_book"]');
    await shot(page, "logs");
    // A burst of calls: the table keeps the newest rows only, and says so.
    const ping = () => fetch(`${URL}/api/action`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path: "library:ping", args: {}, format: "json" }),
    });
    const received = () => page.$eval("#log-status", (s) => parseInt(s.textContent, 10));
    out.logReceivedBeforeBurst = await received();
    for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 60 }, ping));
    await page.waitForFunction((n) => parseInt(document.querySelector("#log-status").textContent, 10) >= n,
      out.logReceivedBeforeBurst + 300, { timeout: T });
    out.logRowsAfterBurst = await page.$$eval("#log-rows tr", (rs) => rs.length);
    out.logStatus = await page.textContent("#log-status");
    await page.fill("#log-text", "added book Streamed");
    await page.waitForFunction(() => document.querySelectorAll("#log-rows tr").length === 1, null, { timeout: T });
    out.logRowsFiltered = await page.$$eval("#log-rows tr", (rs) => rs.map((r) => r.dataset.fn));
    await page.fill("#log-text", "");
    await page.waitForFunction(() => document.querySelectorAll("#log-rows tr").length > 1, null, { timeout: T });
    await page.close();
  }

  if (STEPS.has("env")) {
    const page = await open("#/env");
    await page.fill("#env-name", "GREETING");
    await page.fill("#env-value", "hello from the dashboard");
    await page.click("#env-save");
    const row = 'tr[data-name="GREETING"]';
    await page.waitForSelector(row, { timeout: T });
    out.envHidden = await page.textContent(`${row} td:nth-child(2)`);
    await page.click(`${row} button:text("Show")`);
    out.envShown = await page.textContent(`${row} td:nth-child(2)`);
    await shot(page, "env");
    await page.close();
  }
} finally {
  out.external = external;
  out.pageErrors = errors;
  await browser.close();
}
console.log(JSON.stringify(out));
