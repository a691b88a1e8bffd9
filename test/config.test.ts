import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  DEFAULT_BASE_URL,
  DEFAULT_MAX_PIXELS,
  DEFAULT_MODEL,
  DEFAULT_PROMPT,
  resolveConfig,
} from "../src/config.js";
import { UsageError } from "../src/errors.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "caption-config-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof UsageError) return error.problems;
    throw error;
  }
  throw new Error("expected a UsageError");
}

describe("resolveConfig", () => {
  it("has the documented defaults", () => {
    const config = resolveConfig({ flags: {}, env: {}, cwd: dir });
    expect(config).toMatchObject({
      baseUrl: DEFAULT_BASE_URL,
      model: DEFAULT_MODEL,
      prompt: DEFAULT_PROMPT,
      concurrency: 8,
      retries: 5,
      timeoutMs: 120_000,
      maxTokens: 512,
      prepare: { maxPixels: DEFAULT_MAX_PIXELS, imageFormat: "jpeg" },
    });
    expect(DEFAULT_MAX_PIXELS).toBe(1_806_336);
  });

  it("layers defaults < config file < env < flags", async () => {
    const file = path.join(dir, "c.json");
    await writeFile(
      file,
      JSON.stringify({
        baseUrl: "http://file/v1",
        model: "file-model",
        concurrency: 3,
        retries: 1,
      }),
    );
    const config = resolveConfig({
      flags: { concurrency: 5 },
      env: { MINICPM_BASE_URL: "http://env/v1/", MINICPM_API_KEY: "sk-env" },
      cwd: dir,
      configFile: "c.json",
    });
    expect(config).toMatchObject({
      baseUrl: "http://env/v1",
      apiKey: "sk-env",
      model: "file-model",
      concurrency: 5,
      retries: 1,
    });
    const flagged = resolveConfig({
      flags: { baseUrl: "http://flag/v1/chat/completions" },
      env: { MINICPM_BASE_URL: "http://env/v1" },
      cwd: dir,
    });
    expect(flagged.baseUrl).toBe("http://flag/v1");
  });

  it("reports every problem at once, naming the key, flag or variable", async () => {
    await writeFile(
      path.join(dir, "bad.json"),
      JSON.stringify({ concurency: 4, maxTokens: "lots", format: "xml", temperature: 9 }),
    );
    const problems = problemsOf(() =>
      resolveConfig({
        flags: { concurrency: 0, timeout: -1 },
        env: { MINICPM_BASE_URL: "ftp://nope" },
        cwd: dir,
        configFile: "bad.json",
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /bad\.json: unknown key "concurency" \(did you mean "concurrency"\?\)/,
        ),
        expect.stringMatching(/bad\.json: maxTokens: expected a whole number/),
        expect.stringMatching(/bad\.json: format: expected one of csv, jsonl/),
        expect.stringMatching(/bad\.json: temperature: expected a number from 0 to 2/),
        expect.stringMatching(/MINICPM_BASE_URL: expected an http/),
        expect.stringMatching(/--concurrency: expected a whole number from 1 to 1024, got 0/),
        expect.stringMatching(/--timeout: expected a number greater than 0/),
      ]),
    );
    expect(problems).toHaveLength(7);
  });

  it("reports a missing or malformed config file", async () => {
    expect(
      problemsOf(() => resolveConfig({ flags: {}, env: {}, cwd: dir, configFile: "nope.json" })),
    ).toEqual(["--config: cannot read nope.json (no such file)"]);
    await writeFile(path.join(dir, "broken.json"), "{ model: x }");
    expect(
      problemsOf(() =>
        resolveConfig({ flags: {}, env: {}, cwd: dir, configFile: "broken.json" }),
      )[0],
    ).toMatch(/broken\.json: not valid JSON/);
  });

  it("never echoes an API key back in a problem", () => {
    const problems = problemsOf(() =>
      resolveConfig({ flags: { apiKey: "", concurrency: "x" }, env: {}, cwd: dir }),
    );
    expect(problems.join("\n")).not.toContain("sk-");
  });

  it("reads the prompt from a file relative to the config file, and a flag prompt wins", async () => {
    await writeFile(path.join(dir, "prompt.txt"), "Name the bird.\n");
    await writeFile(path.join(dir, "c.json"), JSON.stringify({ promptFile: "prompt.txt" }));
    const fromFile = resolveConfig({
      flags: {},
      env: {},
      cwd: "/",
      configFile: path.join(dir, "c.json"),
    });
    expect(fromFile.prompt).toBe("Name the bird.");
    const fromFlag = resolveConfig({
      flags: { prompt: "Count the cats." },
      env: {},
      cwd: "/",
      configFile: path.join(dir, "c.json"),
    });
    expect(fromFlag.prompt).toBe("Count the cats.");
    expect(
      problemsOf(() =>
        resolveConfig({ flags: { promptFile: "missing.txt" }, env: {}, cwd: dir }),
      )[0],
    ).toMatch(/--prompt-file: cannot read .*missing\.txt \(ENOENT\)/);
  });

  it("gives Thinking models a bigger token budget", () => {
    expect(
      resolveConfig({ flags: { model: "MiniCPM-V-4.6-Thinking" }, env: {}, cwd: dir }).maxTokens,
    ).toBe(2048);
    expect(
      resolveConfig({
        flags: { model: "MiniCPM-V-4.6-Thinking", maxTokens: 99 },
        env: {},
        cwd: dir,
      }).maxTokens,
    ).toBe(99);
  });
});
