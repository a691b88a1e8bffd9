import { mkdir } from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_MAX_PIXELS } from "../src/config.js";
import { captionImages, RunControl, type RunEvent, type RunOptions } from "../src/pipeline.js";
import { type FakeEndpoint, startFakeEndpoint } from "./helpers/fake-endpoint.js";
import { makeWorkspace, readCsv } from "./helpers/workspace.js";

let dir: string;
let cleanup: () => Promise<void>;
let fake: FakeEndpoint;
beforeEach(async () => {
  ({ dir, cleanup } = await makeWorkspace());
  fake = await startFakeEndpoint({ latencyMs: 20 });
});
afterEach(async () => {
  await fake.close();
  await cleanup();
});

async function makeImages(count: number): Promise<void> {
  await mkdir(path.join(dir, "photos"));
  for (let i = 0; i < count; i += 1) {
    await sharp({
      create: { width: 40, height: 30, channels: 3, background: { r: i, g: 40, b: 200 - i } },
    })
      .png()
      .toFile(path.join(dir, "photos", `p${i}.png`));
  }
}

function options(overrides: Partial<RunOptions> = {}): RunOptions {
  return {
    inputs: ["photos"],
    cwd: dir,
    output: path.join(dir, "out.csv"),
    format: "csv",
    errorsPath: path.join(dir, "out.errors.jsonl"),
    baseUrl: fake.baseUrl,
    model: "m",
    prompt: "Describe.",
    maxTokens: 64,
    concurrency: 4,
    retries: 2,
    timeoutMs: 5000,
    prepare: { maxPixels: DEFAULT_MAX_PIXELS, imageFormat: "jpeg" },
    ...overrides,
  };
}

describe("captionImages", () => {
  it("holds no more than `concurrency` plus a small prefetch of prepared images, however many files there are", async () => {
    await makeImages(80);
    let held = 0;
    let maxHeld = 0;
    let preparedBeforeFirstResult = -1;
    let prepared = 0;
    const onEvent = (event: RunEvent) => {
      if (event.type === "prepared") {
        prepared += 1;
        held += 1;
        maxHeld = Math.max(maxHeld, held);
      }
      if (event.type === "captioned" || event.type === "failed" || event.type === "unfinished") {
        if (preparedBeforeFirstResult === -1) preparedBeforeFirstResult = prepared;
        held -= 1;
      }
    };
    const summary = await captionImages(options({ concurrency: 4 }), { onEvent });
    expect(summary).toMatchObject({ found: 80, captioned: 80, failed: 0, unfinished: 0 });
    // Four being sent, and as many prepared ahead as there are cores (at most four).
    const bound = 4 + Math.min(4, availableParallelism() + 1);
    expect(maxHeld).toBeLessThanOrEqual(bound);
    expect(preparedBeforeFirstResult).toBeLessThanOrEqual(bound);
    expect(fake.maxInFlight).toBe(4);
    expect(await readCsv(path.join(dir, "out.csv"))).toHaveLength(80);
  });

  it("stop() lets in-flight requests finish and starts nothing new", async () => {
    await makeImages(20);
    const control = new RunControl();
    const summary = await captionImages(options({ concurrency: 2 }), {
      control,
      onEvent: (event) => {
        if (event.type === "captioned") control.stop();
      },
    });
    expect(summary.stopped).toBe(true);
    expect(summary.captioned).toBeGreaterThanOrEqual(1);
    expect(summary.captioned).toBeLessThanOrEqual(2);
    expect(summary.captioned + summary.unfinished).toBe(20);
    expect(fake.requests).toHaveLength(summary.captioned);
  });

  it("creates OUT's folder when it does not exist yet", async () => {
    await makeImages(1);
    const output = path.join(dir, "results", "nightly", "out.csv");
    const summary = await captionImages(options({ output }));
    expect(summary.captioned).toBe(1);
    expect(await readCsv(output)).toHaveLength(1);
  });
});
