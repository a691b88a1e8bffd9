import { availableParallelism } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { RunControl } from "../../src/run/control.js";
import type { RunEvent } from "../../src/run/events.js";
import { captionImages } from "../../src/run/pipeline.js";
import { DEFAULT_MAX_PIXELS } from "../../src/settings/defaults.js";
import type { RunOptions } from "../../src/settings/run-options.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { makeDistinctImages, readCsv, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint({ latencyMs: 20 });

function options(overrides: Partial<RunOptions> = {}): RunOptions {
  return {
    inputs: ["photos"],
    cwd: ws.dir,
    output: path.join(ws.dir, "out.csv"),
    format: "csv",
    errorsPath: path.join(ws.dir, "out.errors.jsonl"),
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
  it("holds at most -c prepared images plus one per decoder, however many files there are", async () => {
    // docs/speed.md's promise: memory is about `-c` prepared images plus one per decoder, and there
    // is one decoder per core plus one.
    const concurrency = 4;
    const bound = concurrency + availableParallelism() + 1;
    // Four times as many files as that, so a pool that read ahead freely would break it.
    const files = Math.max(80, 4 * bound);
    await makeDistinctImages(ws.dir, files);
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
    const summary = await captionImages(options({ concurrency }), { onEvent });
    expect(summary).toMatchObject({ found: files, captioned: files, failed: 0, unfinished: 0 });
    expect(maxHeld).toBeLessThanOrEqual(bound);
    expect(preparedBeforeFirstResult).toBeLessThanOrEqual(bound);
    expect(prepared).toBe(files);
    expect(fake.maxInFlight).toBe(concurrency);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(files);
  });

  it("stop() lets in-flight requests finish and starts nothing new", async () => {
    await makeDistinctImages(ws.dir, 20);
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
    await makeDistinctImages(ws.dir, 1);
    const output = path.join(ws.dir, "results", "nightly", "out.csv");
    const summary = await captionImages(options({ output }));
    expect(summary.captioned).toBe(1);
    expect(await readCsv(output)).toHaveLength(1);
  });
});
