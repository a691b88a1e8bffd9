/**
 * Every setting of a run in a config file (issue 23: a cron job keeps its trigger word and its
 * outputs there), and `caption config`, which shows what a command line resolves to and where
 * each value came from. Through the real CLI against the fake endpoint.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli, TEST_KEY } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint();

const run = (args: string[], env: Record<string, string | undefined> = {}) =>
  runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl, env });
const writeConfig = (settings: object) =>
  writeFile(path.join(ws.dir, "run.json"), JSON.stringify(settings));

describe("a config file", () => {
  it("holds the outputs and switches too: prefix, sidecar and its policy, XMP, strict", async () => {
    await makeDistinctImages(ws.dir, 2);
    await writeFile(path.join(ws.dir, "photos", "img-0000.txt"), "old text\n");
    await writeConfig({
      prefix: "ohwx, ",
      sidecar: true,
      sidecarPolicy: "overwrite",
      xmp: true,
      xmpNaming: "stem",
      strict: true,
    });
    const result = await run(["photos", "-o", "out.csv", "--config", "run.json"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    for (const row of rows) expect(row.caption).toMatch(/^ohwx, A test caption/);
    const sidecar = await readFile(path.join(ws.dir, "photos", "img-0000.txt"), "utf8");
    expect(sidecar).toMatch(/^ohwx, A test caption/);
    expect(await readFile(path.join(ws.dir, "photos", "img-0001.xmp"), "utf8")).toContain("ohwx, ");
    // strict from the file: a folder with no image is an error, as --strict makes it.
    const strict = await run(["photos", "empty-*.png", "-o", "out.csv", "--config", "run.json"]);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(/empty-\*\.png matches no image file/);
  });

  it("a flag outranks the file, --no-sidecar included", async () => {
    await makeDistinctImages(ws.dir, 1);
    await writeConfig({ sidecar: ".caption", prefix: "file: " });
    const result = await run([
      "photos",
      "-o",
      "out.csv",
      "--config",
      "run.json",
      "--prefix",
      "flag: ",
      "--no-sidecar",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect((await readCsv(path.join(ws.dir, "out.csv")))[0]?.caption).toMatch(/^flag: /);
    await expect(
      readFile(path.join(ws.dir, "photos", "img-0000.caption"), "utf8"),
    ).rejects.toThrow();
  });

  it("names a bad value or combination where it lives, exit 2, before anything is sent", async () => {
    await makeDistinctImages(ws.dir, 1);
    await writeConfig({ tags: "yes", hfMetadata: "parquet" });
    const bad = await run(["photos", "-o", "out.csv", "--config", "run.json"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/run\.json: tags: expected true or false, got "yes"/);
    expect(bad.stderr).toMatch(/run\.json: hfMetadata: expected jsonl or csv, got "parquet"/);
    await writeConfig({ sidecarPolicy: "append" });
    const alone = await run(["photos", "-o", "out.csv", "--config", "run.json"]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/sidecarPolicy in run\.json needs --sidecar/);
    expect(fake.requests).toHaveLength(0);
  });
});

describe("caption config", () => {
  it("shows each setting's value and where it came from: flag, variable, file or default", async () => {
    await writeConfig({ concurrency: 4, prefix: "ohwx, ", sidecar: true, quality: 80 });
    const result = await run(["config", "--config", "run.json", "--max-tokens", "300"], {
      MINICPM_API_KEY: TEST_KEY,
    });
    expect(result.code, result.stderr).toBe(0);
    const rows = new Map(
      result.stdout
        .trim()
        .split("\n")
        .slice(1)
        .map((line) => {
          const [flag = "", ...rest] = line.split(/\s{2,}/);
          return [flag, rest] as const;
        }),
    );
    expect(rows.get("--concurrency")).toEqual(["4", "run.json: concurrency"]);
    expect(rows.get("--prefix")).toEqual(['"ohwx, "', "run.json: prefix"]);
    expect(rows.get("--max-tokens")).toEqual(["300", "--max-tokens"]);
    expect(rows.get("--base-url")?.[1]).toBe("MINICPM_BASE_URL");
    expect(rows.get("--api-key")).toEqual(["(set)", "MINICPM_API_KEY"]);
    expect(rows.get("--retries")).toEqual(["5", "default"]);
    expect(rows.get("--timeout")).toEqual(["120", "default"]);
    expect(rows.get("--quality")).toEqual(["80", "run.json: quality"]);
    expect(rows.get("--tags")).toEqual(["false", "default"]);
    expect(result.stdout).not.toContain(TEST_KEY);
    expect(fake.requests).toHaveLength(0);
  });

  it("refuses what a run would refuse, exit 2", async () => {
    const result = await run(["config", "--sidecar-policy", "append"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--sidecar-policy needs --sidecar/);
  });

  it("reports every problem at once: bad values and settings that do not go together", async () => {
    const result = await run([
      "config",
      "photos",
      "--sidecar-join",
      ";",
      "--xmp-naming",
      "stem",
      "--max-tokens",
      "0",
      "--hf-metadata",
      "parquet",
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--max-tokens: expected a whole number from 1 to 1000000, got 0/);
    expect(result.stderr).toMatch(/--hf-metadata: expected jsonl or csv, got "parquet"/);
    expect(result.stderr).toMatch(/--sidecar-join needs --sidecar/);
    expect(result.stderr).toMatch(/--xmp-naming needs --xmp/);
  });
});

describe("the settings of many machines beside a run's", () => {
  it("never stop a run or a check that does not use them, and caption config shows them masked", async () => {
    await makeDistinctImages(ws.dir, 1);
    // A worker's settings in a shared file and the shell: a run has no use for them.
    await writeConfig({ queue: "not a name", shardSize: 0 });
    const env = { CAPTION_REDIS_URL: "redis://:hunter2secret@queue-host:6379" };
    const ran = await run(["photos", "-o", "out.csv", "--config", "run.json"], env);
    expect(ran.code, ran.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(1);
    const checked = await run(["check", "--config", "run.json"], env);
    expect(checked.code, checked.stderr).toBe(0);
    // caption config shows everything it is given, and so names what is wrong with them.
    const shownBad = await run(["config", "--config", "run.json"], env);
    expect(shownBad.code).toBe(2);
    expect(shownBad.stderr).toMatch(/run\.json: queue: expected a name of letters/);
    expect(shownBad.stderr).toMatch(/run\.json: shardSize: expected a whole number/);
    await writeConfig({ queue: "photos-2026", shardSize: 50 });
    const shown = await run(["config", "--config", "run.json"], env);
    expect(shown.code, shown.stderr).toBe(0);
    const line = (flag: string) => shown.stdout.split("\n").find((row) => row.startsWith(flag));
    expect(line("--queue")).toMatch(/"photos-2026"\s+run\.json: queue$/);
    expect(line("--shard-size")).toMatch(/50\s+run\.json: shardSize$/);
    expect(line("--redis")).toMatch(/CAPTION_REDIS_URL$/);
    expect(shown.stdout).not.toContain("hunter2secret");
  });
});
