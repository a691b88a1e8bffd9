/**
 * `caption report` through the real CLI, over a real run's OUT, and the page it writes opened in
 * a real browser (Debian's Chromium driven by playwright-core): every image shown, the search
 * filtering, the failures listed, and a hostile caption shown as text without running.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import {
  countFailure,
  countRow,
  emptyReportSummary,
  reportFailureOf,
  reportRowOf,
  scriptSafeJson,
} from "../../src/report/report-data.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli } from "../helpers/run-cli.js";
import { makeDistinctImages, useWorkspace } from "../helpers/workspace.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((file) =>
  existsSync(file),
);
if (!CHROMIUM && process.env.CI) {
  throw new Error("CI: no Chromium at /usr/bin/chromium; .ci/run should have installed it");
}
if (!CHROMIUM) console.warn("skipping the browser test of caption report: no /usr/bin/chromium");

const HOSTILE = `<img src=x onerror="alert(1);window.__pwned='img'"><script>alert(2);window.__pwned='script'</script><!-- \u2028`;
/** Where the browser test leaves its screenshot for a person to look at (not in git). */
const SCREENSHOT = fileURLToPath(new URL("../../test-results/report.png", import.meta.url));

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

describe("the data a page is built from", () => {
  it("reads CSV cells and JSON values alike, and counts flags, copies, tokens and bins", () => {
    const csvRow = reportRowOf({
      path: "a.jpg",
      caption: "A dog.",
      width: "640",
      height: "480",
      prompt_tokens: "100",
      completion_tokens: "",
      latency_ms: "812",
      truncated: "true",
      flags: "repetition",
      endpoint: "gpu:8000",
      attempts: "1",
    });
    expect(csvRow).toMatchObject({
      width: 640,
      completionTokens: null,
      latencyMs: 812,
      flags: ["repetition", "truncated"],
      copy: false,
    });
    const copy = reportRowOf({
      path: "b.jpg",
      caption: "A dog.",
      endpoint: "",
      attempts: 0,
      latency_ms: 0,
      flags: [],
    });
    expect(copy?.copy).toBe(true);
    const summary = emptyReportSummary();
    if (csvRow) countRow(summary, { ...csvRow, thumb: null });
    if (copy) countRow(summary, { ...copy, thumb: null });
    expect(summary).toMatchObject({ captioned: 2, copies: 1, flaggedRows: 1, promptTokens: 100 });
    expect(summary.flagged).toEqual({ repetition: 1, truncated: 1 });
    // 812 ms falls in [750, 1000); the copy's latency is not a caption's.
    expect(summary.latency.counts.reduce((a, b) => a + b, 0)).toBe(1);
    expect(summary.latency.counts[summary.latency.edges.indexOf(750)]).toBe(1);
    expect(reportRowOf({ caption: "no path" })).toBeNull();
  });

  it("reads failures, and counts codes named like Object's own keys as any other", () => {
    const summary = emptyReportSummary();
    for (const code of ["__proto__", "constructor", "timeout", "timeout"]) {
      const failure = reportFailureOf({ path: "x.jpg", code, message: "m" });
      if (failure) countFailure(summary, failure);
    }
    expect(Object.entries(summary.failedByCode).sort()).toEqual([
      ["__proto__", 1],
      ["constructor", 1],
      ["timeout", 2],
    ]);
    expect(summary.failed).toBe(4);
    expect(reportFailureOf({ code: "x" })).toBeNull();
  });

  it("writes JSON no caption can break out of a script element with", () => {
    const text = scriptSafeJson({ c: "</script><script>alert(1)</script><!-- \u2028" });
    expect(text).not.toMatch(/<|>|\u2028/);
    expect(JSON.parse(text).c).toBe("</script><script>alert(1)</script><!-- \u2028");
  });
});

describe("caption report", () => {
  it("says what to do when OUT does not exist", async () => {
    const result = await runCli(["report", "nothing.csv"], { cwd: ws.dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /nothing\.csv: no such file; name the OUT \(-o\) of a caption run/,
    );
  });

  it.skipIf(!CHROMIUM)(
    "a page a browser shows: every image, search, failures, and a hostile caption as inert text",
    async () => {
      const images = await makeDistinctImages(ws.dir, 14);
      // One file that is no image: a failure of the run, listed on the page.
      await writeFile(path.join(ws.dir, "photos", "broken.jpg"), "not a jpeg at all");
      let n = 0;
      await fake.start({
        caption: () => {
          n += 1;
          if (n === 3) return HOSTILE;
          if (n === 5) return "A lighthouse on a rocky shore at dusk.";
          return `A plain test image, number ${n}.`;
        },
      });
      const run = await runCli(["photos", "-o", "out.csv", "-c", "1"], {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      });
      expect(run.code, run.stderr).toBe(3);
      // A page in another folder, with a name a URL must encode: its links still lead home.
      await mkdir(path.join(ws.dir, "pages"));
      const report = await runCli(["report", "out.csv", "-o", "pages/review #1.html"], {
        cwd: ws.dir,
      });
      expect(report.code, report.stderr).toBe(0);
      expect(report.stderr).toMatch(
        /report: 14 captioned, 1 failed, 0 flagged → pages\/review #1\.html/,
      );
      expect((await readdir(path.join(ws.dir, "pages", "review #1_files"))).length).toBe(14);
      const html = await readFile(path.join(ws.dir, "pages", "review #1.html"), "utf8");
      expect(html).not.toContain("<script>window.__pwned");

      const { chromium } = await import("playwright-core");
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--no-sandbox", "--allow-file-access-from-files"],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const dialogs: string[] = [];
        page.on("dialog", (dialog) => {
          dialogs.push(dialog.message());
          void dialog.dismiss();
        });
        const requests: string[] = [];
        page.on("request", (request) => requests.push(request.url()));
        await page.goto(pathToFileURL(path.join(ws.dir, "pages", "review #1.html")).href);
        await page.waitForSelector("#grid .card");
        expect(await page.locator("#grid .card").count()).toBe(14);
        const shownPaths = await page.locator("#grid .card .path").allTextContents();
        expect(shownPaths.sort()).toEqual([...images].sort());
        // The hostile caption is there, as text, and nothing of it ran.
        await expect
          .poll(() => page.locator("#grid .caption", { hasText: "onerror=" }).count())
          .toBe(1);
        expect(await page.evaluate("typeof window.__pwned")).toBe("undefined");
        // Nothing was injected anywhere: no handler attribute, no script but the page's own four.
        expect(await page.locator("[onerror]").count()).toBe(0);
        expect(await page.locator("script").count()).toBe(4);
        expect(dialogs).toEqual([]);
        // Every image is lazily loaded from the folder beside the page, and nothing else is asked.
        await page.waitForFunction(
          "[...document.querySelectorAll('#grid img')].every((img) => img.complete)",
        );
        expect(requests.every((url) => url.startsWith("file://"))).toBe(true);
        const loaded = await page.evaluate(
          "[...document.querySelectorAll('#grid img')].filter((img) => img.naturalWidth > 0).length",
        );
        expect(loaded).toBe(14);

        await page.fill("#search", "lighthouse");
        await expect.poll(() => page.locator("#grid .card").count()).toBe(1);
        expect(await page.locator("#grid .caption").textContent()).toMatch(/lighthouse/);
        await page.fill("#search", "");
        await expect.poll(() => page.locator("#grid .card").count()).toBe(14);

        // The failures section lists the broken file with its code.
        const failureRows = page.locator("#failures-table tbody tr");
        expect(await failureRows.count()).toBe(1);
        expect(await failureRows.first().textContent()).toMatch(/photos\/broken\.jpg/);
        await page.selectOption("#filter", "failed");
        await expect.poll(() => page.locator("#grid .card.failed").count()).toBe(1);
        await page.selectOption("#filter", "all");

        await mkdir(path.dirname(SCREENSHOT), { recursive: true });
        await page.screenshot({ path: SCREENSHOT, fullPage: false });
        expect((await readFile(SCREENSHOT)).subarray(1, 4).toString()).toBe("PNG");
        // CAPTION_SCREENSHOT=path copies it elsewhere too (the README's is docs/report.png).
        if (process.env.CAPTION_SCREENSHOT)
          await copyFile(SCREENSHOT, process.env.CAPTION_SCREENSHOT);
      } finally {
        await browser.close();
      }
    },
    90_000,
  );
});
