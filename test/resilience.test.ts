import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FakeEndpoint, startFakeEndpoint } from "./helpers/fake-endpoint.js";
import { collect, runCli, startCli } from "./helpers/run-cli.js";
import {
  expectOneRowEach,
  makeDistinctImages,
  makeWorkspace,
  readCsv,
} from "./helpers/workspace.js";

let dir: string;
let cleanup: () => Promise<void>;
let fake: FakeEndpoint | null = null;
beforeEach(async () => {
  ({ dir, cleanup } = await makeWorkspace());
});
afterEach(async () => {
  await fake?.close();
  fake = null;
  await cleanup();
});

describe("under faults", () => {
  it("captions every image exactly once when 30 % of requests fail in every way the fake knows", async () => {
    const images = await makeDistinctImages(dir, 60);
    fake = await startFakeEndpoint({
      faultRate: 0.3,
      faults: ["429", "500", "503", "reset", "hang", "malformed", "html502", "empty-choices"],
      seed: 7,
      latencyMs: 5,
    });
    const result = await runCli(
      ["photos", "-o", "out.csv", "-c", "8", "--retries", "12", "--timeout", "1"],
      {
        cwd: dir,
        baseUrl: fake.baseUrl,
      },
    );
    expect(result.stderr).toMatch(/60 captioned, 0 failed/);
    expect(result.code).toBe(0);
    expectOneRowEach(await readCsv(path.join(dir, "out.csv")), images);
    const faults = fake.requests.filter((r) => r.behavior !== "ok");
    expect(new Set(faults.map((r) => r.behavior)).size).toBeGreaterThanOrEqual(6);
    expect(fake.requests.length).toBe(60 + faults.length);
  }, 60_000);

  it("honours Retry-After on a 429 before trying again", async () => {
    const [image] = await makeDistinctImages(dir, 1);
    fake = await startFakeEndpoint({ script: [{ kind: "rate-limit", retryAfter: "1" }] });
    const started = Date.now();
    const result = await runCli(["photos", "-o", "out.csv"], { cwd: dir, baseUrl: fake.baseUrl });
    expect(result.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const [row] = await readCsv(path.join(dir, "out.csv"));
    expect(row).toMatchObject({ path: image, attempts: "2" });
  });

  it("never has more requests in flight than -c", async () => {
    await makeDistinctImages(dir, 40);
    fake = await startFakeEndpoint({ latencyMs: 60 });
    const result = await runCli(["photos", "-o", "out.csv", "-c", "5"], {
      cwd: dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(0);
    expect(fake.maxInFlight).toBe(5);
    fake.resetStats();
    const one = await runCli(["photos", "-o", "two.csv", "-c", "1"], {
      cwd: dir,
      baseUrl: fake.baseUrl,
    });
    expect(one.code).toBe(0);
    expect(fake.maxInFlight).toBe(1);
  }, 30_000);
});

describe("crash safety", () => {
  it("after kill -9 mid-run, a rerun leaves exactly one row per image", async () => {
    const images = await makeDistinctImages(dir, 40);
    fake = await startFakeEndpoint({ latencyMs: 40 });
    const out = path.join(dir, "out.csv");
    for (const killAfterRows of [3, 15]) {
      const child = startCli(["photos", "-o", "out.csv", "-c", "4"], {
        cwd: dir,
        baseUrl: fake.baseUrl,
      });
      const done = collect(child);
      // Kill once the run has written some rows (and has more requests in flight).
      for (let waited = 0; waited < 20_000; waited += 10) {
        const text = await readFile(out, "utf8").catch(() => "");
        if (text.split("\n").length > killAfterRows + 1) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      child.kill("SIGKILL");
      const killed = await done;
      expect(killed.signal).toBe("SIGKILL");
      const partial = await readCsv(out);
      expect(partial.length).toBeGreaterThan(0);
      expect(partial.length).toBeLessThan(images.length);
    }
    fake.resetStats();
    const rerun = await runCli(["photos", "-o", "out.csv", "-c", "4"], {
      cwd: dir,
      baseUrl: fake.baseUrl,
    });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/already done/);
    expectOneRowEach(await readCsv(out), images);
    expect(fake.requests.length).toBeLessThan(images.length);
  }, 60_000);

  it("repairs a row torn by a crash and captions that image again", async () => {
    const images = await makeDistinctImages(dir, 3);
    fake = await startFakeEndpoint();
    const out = path.join(dir, "out.csv");
    expect(
      (await runCli(["photos", "-o", "out.csv"], { cwd: dir, baseUrl: fake.baseUrl })).code,
    ).toBe(0);
    const whole = await readFile(out, "utf8");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(out, whole.slice(0, whole.length - 20));
    fake.resetStats();
    const rerun = await runCli(["photos", "-o", "out.csv"], { cwd: dir, baseUrl: fake.baseUrl });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/repaired the output/);
    expect(fake.requests).toHaveLength(1);
    expectOneRowEach(await readCsv(out), images);
  });

  it("on SIGINT finishes the requests in flight, flushes OUT and exits 130; a rerun completes", async () => {
    const images = await makeDistinctImages(dir, 30);
    fake = await startFakeEndpoint({ latencyMs: 300 });
    const out = path.join(dir, "out.csv");
    const child = startCli(["photos", "-o", "out.csv", "-c", "3"], {
      cwd: dir,
      baseUrl: fake.baseUrl,
    });
    const done = collect(child);
    while (fake.inFlight < 3) await new Promise((resolve) => setTimeout(resolve, 10));
    child.kill("SIGINT");
    const result = await done;
    expect(result.code).toBe(130);
    expect(result.stderr).toMatch(/SIGINT: finishing requests in flight/);
    const rows = await readCsv(out);
    // The three requests in flight when Ctrl-C came were finished and written, and nothing new was started.
    expect(rows.length).toBeGreaterThanOrEqual(3);
    expect(rows.length).toBe(fake.requests.length);
    expect(result.stderr).toMatch(/left for the next run/);
    const rerun = await runCli(["photos", "-o", "out.csv", "-c", "8"], {
      cwd: dir,
      baseUrl: fake.baseUrl,
    });
    expect(rerun.code).toBe(0);
    expectOneRowEach(await readCsv(out), images);
    await expect(stat(path.join(dir, "out.errors.jsonl"))).rejects.toThrow();
  }, 30_000);
});
