import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { discoverImages } from "../../src/discover/discover.js";
import { byOptionName, RunAbortedError } from "../../src/errors.js";
import { WebDatasetSink } from "../../src/sinks/webdataset-out.js";
import type { CaptionRecord } from "../../src/types.js";
import { img2datasetMembers, writeShard } from "../helpers/shards.js";

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "wds-out-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const row = (imagePath: string): CaptionRecord => ({
  path: imagePath,
  caption: "a caption",
  model: "m",
  endpoint: "",
  width: 1,
  height: 1,
  prompt_tokens: null,
  completion_tokens: null,
  reasoning_tokens: null,
  attempts: 1,
  latency_ms: 0,
  truncated: false,
  flags: [],
  created_at: new Date(0).toISOString(),
  sha256: "",
  prompt_hash: "",
});

describe("WebDatasetSink", () => {
  it("a shard it cannot write once its samples are in ends the run with a RunAbortedError that says so", async () => {
    await writeShard(path.join(dir, "in", "00000.tar"), await img2datasetMembers(0, 2));
    const { tasks } = await discoverImages(["in/00000.tar"], dir);
    const out = path.join(dir, "out");
    const sink = new WebDatasetSink(
      { out, member: "caption.txt" },
      async () => undefined,
      false,
      byOptionName,
    );
    await sink.open(tasks);
    // Something takes the shard's place during the run: the rename cannot go over a folder.
    await mkdir(path.join(out, "00000.tar", "inside"), { recursive: true });
    await sink.write(row(tasks[0]?.path ?? ""));
    const last = sink.write(row(tasks[1]?.path ?? ""));
    await expect(last).rejects.toBeInstanceOf(RunAbortedError);
    await expect(last).rejects.toThrow(/cannot write .*00000\.tar: .*a rerun writes the shard/);
    await sink.close();
  });
});
