/**
 * A run killed with -9 whose process lingers as a zombie (its parent has not reaped it yet, as a
 * container's PID 1 without --init is slow to): the rerun right after takes its lock over, for a
 * plain run, a --sidecar run and an --hf-metadata run, through the real CLI.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { CLI, runCli, TEST_KEY } from "../helpers/run-cli.js";
import {
  expectOneRowEach,
  makeDistinctImages,
  readCsv,
  readJsonl,
  useWorkspace,
  waitFor,
} from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint({ latencyMs: 100 });
/** The parent that never reaps: killed at the end, so its zombie goes to PID 1. */
let parent: ChildProcess | null = null;
// Runs before the fake is closed and the workspace removed (after-hooks run in reverse).
afterEach(() => {
  parent?.kill("SIGKILL");
  parent = null;
});

/**
 * Starts the CLI under a parent that never waits for it: `sh` backgrounds it, then becomes
 * `sleep`, which reaps nobody. Killed, the run stays a zombie for as long as that parent lives.
 */
function startUnreaped(args: string[]): ChildProcess {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(MINICPM|OPENAI)_/.test(key)) env[key] = value;
  }
  env.MINICPM_API_KEY = TEST_KEY;
  env.MINICPM_BASE_URL = fake.baseUrl;
  return spawn(
    "sh",
    ["-c", '"$0" "$@" >/dev/null 2>&1 & exec sleep 600', process.execPath, CLI, ...args],
    { cwd: ws.dir, env, stdio: "ignore" },
  );
}

/** The state letter of /proc/PID/stat, or null once the process is gone altogether. */
async function stateOf(pid: number): Promise<string | null> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  return stat === null ? null : stat.slice(stat.lastIndexOf(")") + 2).charAt(0);
}

async function lockOwner(lockDir: string): Promise<number | null> {
  const text = await readFile(path.join(lockDir, "owner.json"), "utf8").catch(() => null);
  if (text === null) return null;
  try {
    return (JSON.parse(text) as { pid: number }).pid;
  } catch {
    return null;
  }
}

/** Runs `args` unreaped until `started` holds, kills it with -9 and checks it is a zombie. */
async function killToZombie(
  args: string[],
  lockDir: string,
  started: () => Promise<boolean>,
): Promise<void> {
  parent = startUnreaped(args);
  let pid: number | null = null;
  await waitFor(async () => {
    pid = await lockOwner(lockDir);
    return pid !== null && (await started());
  });
  if (pid === null) throw new Error("no lock owner");
  process.kill(pid, "SIGKILL");
  const owner: number = pid;
  await waitFor(async () => (await stateOf(owner)) === "Z");
}

async function linesIn(file: string): Promise<number> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").filter((line) => line.trim() !== "").length;
}

describe.skipIf(process.platform !== "linux")("a lock held by a zombie", () => {
  it("a plain run: the rerun right after kill -9 takes the lock over", async () => {
    const images = await makeDistinctImages(ws.dir, 30);
    const out = path.join(ws.dir, "out.csv");
    await killToZombie(
      ["photos", "-o", "out.csv", "-c", "2"],
      `${out}.lock`,
      async () => (await linesIn(out)) > 3,
    );
    const rerun = await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(rerun.stderr).not.toMatch(/another caption run/);
    expect(rerun.code, rerun.stderr).toBe(0);
    expectOneRowEach(await readCsv(out), images);
  }, 60_000);

  it("a --sidecar run: its record's lock is taken over", async () => {
    const images = await makeDistinctImages(ws.dir, 30);
    const record = path.join(ws.dir, "photos", ".caption", "captions.jsonl");
    await killToZombie(
      ["photos", "--sidecar", "-c", "2"],
      `${record}.lock`,
      async () => (await linesIn(record)) > 3,
    );
    const rerun = await runCli(["photos", "--sidecar"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(rerun.stderr).not.toMatch(/another caption run/);
    expect(rerun.code, rerun.stderr).toBe(0);
    for (const image of images) {
      const sidecar = path.join(ws.dir, image.replace(/\.jpg$/, ".txt"));
      expect((await readFile(sidecar, "utf8")).length).toBeGreaterThan(10);
    }
    expect(await readJsonl(record)).toHaveLength(images.length);
  }, 60_000);

  it("an --hf-metadata run: its record's lock is taken over, one metadata row per image", async () => {
    const images = await makeDistinctImages(ws.dir, 30, "data");
    const record = path.join(ws.dir, "data", ".caption", "captions.jsonl");
    const metadata = path.join(ws.dir, "data", "metadata.jsonl");
    await killToZombie(
      ["data", "--hf-metadata", "-c", "2"],
      `${record}.lock`,
      async () => (await linesIn(metadata)) > 3,
    );
    const rerun = await runCli(["data", "--hf-metadata"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(rerun.stderr).not.toMatch(/another caption run/);
    expect(rerun.code, rerun.stderr).toBe(0);
    const rows = await readJsonl(metadata);
    expect(rows.map((row) => `data/${String(row.file_name)}`).sort()).toEqual([...images].sort());
  }, 60_000);
});
