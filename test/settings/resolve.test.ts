import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import type { CaptionConfig } from "../../src/settings/caption-config.js";
import { EXAMPLE_CONFIG_DIR, exampleConfigNames } from "../../src/settings/config-file.js";
import { captionOptionsOf, endpointOptionsOf } from "../../src/settings/config-options.js";
import {
  DEFAULT_BASE_URL,
  DEFAULT_MAX_PIXELS,
  DEFAULT_MODEL,
  DEFAULT_PROMPT,
  defaultConcurrency,
} from "../../src/settings/defaults.js";
import { withDefaults } from "../../src/settings/library-options.js";
import { resolveConfig } from "../../src/settings/resolve.js";
import { useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace({ prefix: "caption-config-" });

/** What a run is given from a config: the options the CLI passes, with the library's defaults. */
function asRun(config: CaptionConfig) {
  const keys = { apiKey: config.apiKey, endpoints: undefined };
  return {
    ...withDefaults({ ...endpointOptionsOf(config, keys), ...captionOptionsOf(config) }),
    ...config,
  };
}

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
    const config = asRun(resolveConfig({ flags: {}, env: {}, cwd: ws.dir }));
    expect(config).toMatchObject({
      baseUrl: DEFAULT_BASE_URL,
      model: DEFAULT_MODEL,
      prompt: DEFAULT_PROMPT,
      retries: 5,
      timeoutMs: 120_000,
      maxTokens: 512,
      prepare: { maxPixels: DEFAULT_MAX_PIXELS, imageFormat: "jpeg", quality: 90 },
    });
    expect(DEFAULT_MAX_PIXELS).toBe(1_806_336);
    // A family, not an id: which id it is depends on what the server lists (issue 21).
    expect(config.model).toBe("instruct");
    // No -c: each endpoint's own default, measured for a server the user names, 8 for the hosted API.
    expect(config.concurrency).toBeUndefined();
    expect(defaultConcurrency(DEFAULT_BASE_URL)).toBe(8);
    expect(defaultConcurrency("HTTPS://API.MODELBEST.CN:443/v1")).toBe(8);
    expect(defaultConcurrency("http://127.0.0.1:8000/v1")).toBe("auto");
  });

  it("layers defaults < config file < env < flags", async () => {
    const file = path.join(ws.dir, "c.json");
    await writeFile(
      file,
      JSON.stringify({
        baseUrl: "http://file/v1",
        model: "file-model",
        concurrency: 3,
        retries: 1,
      }),
    );
    const config = asRun(
      resolveConfig({
        flags: { concurrency: 5 },
        env: { MINICPM_BASE_URL: "http://env/v1/", MINICPM_API_KEY: "sk-env" },
        cwd: ws.dir,
        configFile: "c.json",
      }),
    );
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
      cwd: ws.dir,
    });
    expect(flagged.baseUrl).toBe("http://flag/v1");
  });

  it("reports every problem at once, naming the key, flag or variable", async () => {
    await writeFile(
      path.join(ws.dir, "bad.json"),
      JSON.stringify({ concurency: 4, maxTokens: "lots", format: "xml", temperature: 9 }),
    );
    const problems = problemsOf(() =>
      resolveConfig({
        flags: { concurrency: 0, timeout: -1 },
        env: { MINICPM_BASE_URL: "ftp://nope" },
        cwd: ws.dir,
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
        expect.stringMatching(
          /--concurrency: expected a whole number from 1 to 1024 or auto, got 0/,
        ),
        expect.stringMatching(/--timeout: expected a number greater than 0/),
      ]),
    );
    expect(problems).toHaveLength(7);
  });

  it("reports a missing or malformed config file", async () => {
    expect(
      problemsOf(() => resolveConfig({ flags: {}, env: {}, cwd: ws.dir, configFile: "nope.json" })),
    ).toEqual(["--config: cannot read nope.json (no such file)"]);
    await writeFile(path.join(ws.dir, "broken.json"), "{ model: x }");
    expect(
      problemsOf(() =>
        resolveConfig({ flags: {}, env: {}, cwd: ws.dir, configFile: "broken.json" }),
      )[0],
    ).toMatch(/broken\.json: not valid JSON/);
  });

  it("never echoes an API key back in a problem", () => {
    const problems = problemsOf(() =>
      resolveConfig({ flags: { apiKey: "", concurrency: "x" }, env: {}, cwd: ws.dir }),
    );
    expect(problems.join("\n")).not.toContain("sk-");
  });

  it("reads the prompt from a file relative to the config file, and a flag prompt wins", async () => {
    await writeFile(path.join(ws.dir, "prompt.txt"), "Name the bird.\n");
    await writeFile(path.join(ws.dir, "c.json"), JSON.stringify({ promptFile: "prompt.txt" }));
    const fromFile = resolveConfig({
      flags: {},
      env: {},
      cwd: "/",
      configFile: path.join(ws.dir, "c.json"),
    });
    expect(fromFile.prompt).toBe("Name the bird.");
    const fromFlag = resolveConfig({
      flags: { prompt: "Count the cats." },
      env: {},
      cwd: "/",
      configFile: path.join(ws.dir, "c.json"),
    });
    expect(fromFlag.prompt).toBe("Count the cats.");
    expect(
      problemsOf(() =>
        resolveConfig({ flags: { promptFile: "missing.txt" }, env: {}, cwd: ws.dir }),
      )[0],
    ).toMatch(/--prompt-file: cannot read .*missing\.txt \(ENOENT\)/);
  });

  it("gives Thinking models a bigger token budget", () => {
    const maxTokensOf = (flags: Record<string, unknown>) =>
      asRun(resolveConfig({ flags, env: {}, cwd: ws.dir })).maxTokens;
    expect(maxTokensOf({ model: "thinking" })).toBe(2048);
    expect(maxTokensOf({ model: "MiniCPM-V-4.6-1.3B-think-0506_tau2_rl" })).toBe(2048);
    expect(maxTokensOf({ model: "omni" })).toBe(512);
    expect(maxTokensOf({ model: "MiniCPM-V-4.6-Thinking" })).toBe(2048);
    expect(maxTokensOf({ model: "MiniCPM-V-4.6-Thinking", maxTokens: 99 })).toBe(99);
  });

  it("reads OPENAI_BASE_URL and OPENAI_API_KEY when the MINICPM_ variables are unset", () => {
    const config = resolveConfig({
      flags: {},
      env: { OPENAI_BASE_URL: "http://openai-env/v1/", OPENAI_API_KEY: "sk-openai" },
      cwd: ws.dir,
    });
    expect(config).toMatchObject({ baseUrl: "http://openai-env/v1", apiKey: "sk-openai" });
    // An empty variable counts as unset.
    expect(
      resolveConfig({
        flags: {},
        env: { MINICPM_BASE_URL: "", OPENAI_BASE_URL: "http://openai-env/v1" },
        cwd: ws.dir,
      }).baseUrl,
    ).toBe("http://openai-env/v1");
  });

  it("gives the hosted API a config file's key, not an exported OPENAI_API_KEY that outranks it", async () => {
    await writeFile(path.join(ws.dir, "key.json"), JSON.stringify({ apiKey: "sk-file" }));
    const env = { OPENAI_API_KEY: "sk-openai" };
    const hosted = resolveConfig({ flags: {}, env, cwd: ws.dir, configFile: "key.json" });
    expect(hosted).toMatchObject({ baseUrl: DEFAULT_BASE_URL, apiKey: "sk-file" });
    expect(hosted.settingFrom.apiKey).toBe("apiKey in key.json");
    // A server of the user's own still gets the variable, which outranks the file.
    const own = resolveConfig({
      flags: { baseUrl: "http://own/v1" },
      env,
      cwd: ws.dir,
      configFile: "key.json",
    });
    expect(own.apiKey).toBe("sk-openai");
    // With no key in the file, the hosted API gets none: the trial key, never OpenAI's.
    expect(resolveConfig({ flags: {}, env, cwd: ws.dir }).apiKey).toBeUndefined();
  });

  it("prefers MINICPM_ over OPENAI_ variables, each setting on its own, and a flag over both", async () => {
    const both = {
      MINICPM_BASE_URL: "http://minicpm-env/v1",
      MINICPM_API_KEY: "sk-minicpm",
      OPENAI_BASE_URL: "http://openai-env/v1",
      OPENAI_API_KEY: "sk-openai",
    };
    expect(resolveConfig({ flags: {}, env: both, cwd: ws.dir })).toMatchObject({
      baseUrl: "http://minicpm-env/v1",
      apiKey: "sk-minicpm",
    });
    expect(
      resolveConfig({
        flags: {},
        env: { MINICPM_API_KEY: "sk-minicpm", OPENAI_BASE_URL: "http://openai-env/v1" },
        cwd: ws.dir,
      }),
    ).toMatchObject({ baseUrl: "http://openai-env/v1", apiKey: "sk-minicpm" });
    expect(
      resolveConfig({
        flags: { baseUrl: "http://flag/v1", apiKey: "sk-flag" },
        env: both,
        cwd: ws.dir,
      }),
    ).toMatchObject({ baseUrl: "http://flag/v1", apiKey: "sk-flag" });
    // Still above the config file.
    await writeFile(path.join(ws.dir, "c.json"), JSON.stringify({ baseUrl: "http://file/v1" }));
    expect(
      resolveConfig({
        flags: {},
        env: { OPENAI_BASE_URL: "http://openai-env/v1" },
        cwd: ws.dir,
        configFile: "c.json",
      }).baseUrl,
    ).toBe("http://openai-env/v1");
  });

  it("names the variable a bad value came from", () => {
    const problems = problemsOf(() =>
      resolveConfig({ flags: {}, env: { OPENAI_BASE_URL: "localhost:8000" }, cwd: ws.dir }),
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^OPENAI_BASE_URL: expected an http:\/\/ or https:\/\/ URL .*"localhost:8000"/,
      ),
    ]);
    // A MINICPM_ value shadows the OPENAI_ one entirely: it is never read, so never reported.
    expect(
      resolveConfig({
        flags: {},
        env: { MINICPM_BASE_URL: "http://ok/v1", OPENAI_BASE_URL: "localhost:8000" },
        cwd: ws.dir,
      }).baseUrl,
    ).toBe("http://ok/v1");
    expect(
      problemsOf(() =>
        resolveConfig({
          flags: {},
          env: { MINICPM_BASE_URL: "ftp://nope", OPENAI_BASE_URL: "http://ok/v1" },
          cwd: ws.dir,
        }),
      ),
    ).toEqual([expect.stringMatching(/^MINICPM_BASE_URL: /)]);
  });
});

describe("--config NAME", () => {
  it("loads an example config from the package's config/ by name, from any folder", async () => {
    expect(exampleConfigNames()).toEqual(
      expect.arrayContaining(["hosted-minicpm", "vllm", "llama-server", "ollama"]),
    );
    const byName = resolveConfig({ flags: {}, env: {}, cwd: ws.dir, configFile: "vllm" });
    const byPath = resolveConfig({
      flags: {},
      env: {},
      cwd: ws.dir,
      configFile: path.join(EXAMPLE_CONFIG_DIR, "vllm.json"),
    });
    // The same settings; only a file the user named is where messages send them to change one.
    expect({ ...byName, settingFrom: {} }).toEqual({ ...byPath, settingFrom: {} });
    expect(byName.settingFrom).toEqual({});
    expect(byPath.settingFrom.model).toBe(`model in ${path.join(EXAMPLE_CONFIG_DIR, "vllm.json")}`);
    expect(asRun(byName)).toMatchObject({
      baseUrl: "http://localhost:8000/v1",
      model: "openbmb/MiniCPM-V-4.6",
      concurrency: "auto",
    });
    expect(
      asRun(
        resolveConfig({ flags: {}, env: {}, cwd: ws.dir, configFile: "hosted-minicpm-thinking" }),
      ),
    ).toMatchObject({ model: "thinking", maxTokens: 2048, timeoutMs: 300_000 });
    // Env and flags still sit above it.
    expect(
      asRun(
        resolveConfig({
          flags: { concurrency: 2 },
          env: { MINICPM_BASE_URL: "http://env/v1" },
          cwd: ws.dir,
          configFile: "ollama",
        }),
      ),
    ).toMatchObject({ baseUrl: "http://env/v1", model: "openbmb/minicpm-v4.6", concurrency: 2 });
  });

  it("takes a file that exists over an example config of the same name", async () => {
    await writeFile(path.join(ws.dir, "vllm"), JSON.stringify({ model: "my-own-model" }));
    expect(resolveConfig({ flags: {}, env: {}, cwd: ws.dir, configFile: "vllm" }).model).toBe(
      "my-own-model",
    );
    // A .json name or a path is always a path, never looked up by name.
    expect(
      problemsOf(() =>
        resolveConfig({ flags: {}, env: {}, cwd: ws.dir, configFile: "ollama.json" }),
      ),
    ).toEqual([
      "--config: cannot read ollama.json (no such file); the example config of that name is --config ollama",
    ]);
    expect(
      problemsOf(() =>
        resolveConfig({ flags: {}, env: {}, cwd: ws.dir, configFile: "sub/ollama" }),
      ),
    ).toEqual([
      "--config: cannot read sub/ollama (no such file); the example config of that name is --config ollama",
    ]);
    expect(
      problemsOf(() => resolveConfig({ flags: {}, env: {}, cwd: ws.dir, configFile: "sub/fish" })),
    ).toEqual(["--config: cannot read sub/fish (no such file)"]);
  });

  it("lists the example configs when the name is unknown", () => {
    const problems = problemsOf(() =>
      resolveConfig({ flags: {}, env: {}, cwd: ws.dir, configFile: "vlm" }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^--config: no file "vlm" here and no example config of that name/);
    for (const name of exampleConfigNames()) expect(problems[0]).toContain(name);
    expect(problems[0]).toContain(
      "hosted-minicpm, hosted-minicpm-thinking, llama-server, ollama, vllm",
    );
  });

  it("resolves an example config's paths beside it, and names its file in problems", async () => {
    const examples = path.join(ws.dir, "examples");
    await mkdir(examples);
    await writeFile(path.join(examples, "prompt.txt"), "Name the bird.\n");
    await writeFile(
      path.join(examples, "birds.json"),
      JSON.stringify({ promptFile: "prompt.txt", errors: "birds.errors.jsonl" }),
    );
    await writeFile(path.join(examples, "bad.json"), JSON.stringify({ concurrency: 0 }));
    const cwd = path.join(ws.dir, "elsewhere");
    await mkdir(cwd);
    const config = resolveConfig({
      flags: {},
      env: {},
      cwd,
      configFile: "birds",
      exampleConfigDir: examples,
    });
    expect(config.prompt).toBe("Name the bird.");
    expect(config.errors).toBe(path.join(examples, "birds.errors.jsonl"));
    expect(
      problemsOf(() =>
        resolveConfig({ flags: {}, env: {}, cwd, configFile: "bad", exampleConfigDir: examples }),
      ),
    ).toEqual([
      `${path.join(examples, "bad.json")}: concurrency: expected a whole number from 1 to 1024 or auto, got 0`,
    ]);
    expect(
      problemsOf(() =>
        resolveConfig({ flags: {}, env: {}, cwd, configFile: "fish", exampleConfigDir: examples }),
      )[0],
    ).toMatch(/one of: bad, birds$/);
  });
});
