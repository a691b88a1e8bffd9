import { readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeEndpoint, startFakeEndpoint } from "../helpers/fake-endpoint.js";
import { type HostileCorpus, makeHostileCorpus } from "../helpers/hostile-files.js";
import { type CliResult, runCli } from "../helpers/run-cli.js";
import { makeWorkspace, type Row, readCsv, readJsonl } from "../helpers/workspace.js";

// Built while the file is collected, so that every kind is listed as a test of its own.
const { dir, cleanup } = await makeWorkspace();
const corpus: HostileCorpus = await makeHostileCorpus(dir);
let fake: FakeEndpoint;
let result: CliResult;
let rows: Row[];
let failures: Record<string, unknown>[];

beforeAll(async () => {
  let vanished = false;
  fake = await startFakeEndpoint({
    respond: () => {
      if (!vanished) {
        vanished = true;
        // Gone after discovery listed it, before the run reaches it.
        void rm(corpus.vanishing, { force: true });
      }
      return undefined;
    },
  });
  result = await runCli([...corpus.inputs, "-o", "out.csv", "-c", "1", "--timeout", "10"], {
    cwd: dir,
    baseUrl: fake.baseUrl,
  });
  rows = await readCsv(path.join(dir, "out.csv"));
  failures = await readJsonl(path.join(dir, "out.errors.jsonl"));
}, 120_000);

afterAll(async () => {
  await fake.close();
  await cleanup();
});

describe("a folder of hostile inputs", () => {
  it("covers at least 20 kinds of bad or odd input", () => {
    expect(corpus.cases.length + corpus.noRowKinds.length).toBeGreaterThanOrEqual(20);
  });

  it("ends with exit 3, no crash, no stack trace", () => {
    expect(result.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code).toBe(3);
  });

  it("gives every input exactly one row, in OUT or in the errors file, and nothing else", () => {
    const seen = [...rows.map((r) => r.path), ...failures.map((f) => String(f.path))];
    expect(seen.length).toBe(new Set(seen).size);
    expect(seen.sort()).toEqual(corpus.cases.map((c) => c.path).sort());
  });

  it("sends copies of identical bytes once, giving each path the same caption", () => {
    const original = rows.find((r) => r.path === "hostile/UPPER.JPG");
    const copy = rows.find((r) => r.path === "hostile/copy-a.jpg");
    expect(copy?.caption).toBe(original?.caption);
    expect([original?.attempts, copy?.attempts].sort()).toEqual(["0", "1"]);
    expect(fake.requests).toHaveLength(rows.length - 1);
  });

  it("walks a symlink loop without hanging and lists each image once", async () => {
    expect([...rows, ...failures].some((r) => String(r.path).includes("loop/"))).toBe(false);
    expect((await stat(path.join(dir, "hostile", "loop", "up"))).isDirectory()).toBe(true);
  });

  it.each([
    ["zero-byte file", "empty (0 bytes)"],
    ["truncated JPEG", "cannot be decoded"],
    ["decompression bomb (20000×20000 PNG of 50 KB)", "decompression bomb"],
    ["HEIC (HEVC) photo", "convert it to JPEG"],
    ["broken symlink", "symbolic link"],
    ["text file named .jpg", "not an image"],
    ["unreadable file (no read permission)", "permission denied"],
  ])("explains the %s in words a user understands", (kind, words) => {
    const testCase = corpus.cases.find((c) => c.kind === kind);
    const failure = failures.find((f) => f.path === testCase?.path);
    expect(String(failure?.message)).toContain(words);
  });
});

describe("each kind ends as it should", () => {
  it.each(corpus.cases.map((c) => [c.kind, c] as const))("%s", (_kind, testCase) => {
    const row = rows.find((r) => r.path === testCase.path);
    const failure = failures.find((f) => f.path === testCase.path);
    if ("caption" in testCase.expect) {
      expect(failure).toBeUndefined();
      expect(row?.caption).toMatch(/^A test caption for/);
      return;
    }
    expect(row).toBeUndefined();
    expect(failure?.code).toBe(testCase.expect.error);
    expect(String(failure?.message).length).toBeGreaterThan(20);
  });
});

describe("the hostile folder", () => {
  it("is left as it was (nothing written into it)", async () => {
    const entries = await readdir(path.join(dir, "hostile"));
    expect(entries.filter((e) => /\.(csv|jsonl|lock)$/.test(e))).toEqual([]);
  });
});
